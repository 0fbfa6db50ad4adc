"""What the service holds in memory once started: the search core over its index, and the
index's model."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.config import ONNX_FILE, EncoderConfig, read_config
from models.onnx_encoder import OnnxEncoder
from search.index_dir import IndexModel
from search.manifest import MANIFEST_FILE
from service.duplicates import DuplicateGroupsCache
from service.embedding import PixelEncoder, QueryEmbedder
from service.gallery import GalleryFiles
from service.searcher import LocalSearcher
from service.settings import Settings

# A query's forward pass runs on one thread, as its FAISS scan does: requests already run side
# by side (and worker processes use further cores), while a pass split over two threads waited
# for a second core beside other work (docs/performance.md, "One thread per forward pass").
QUERY_THREADS = 1


@dataclass(frozen=True)
class ServiceState:
    searcher: LocalSearcher
    embedder: QueryEmbedder
    model_config: dict
    gallery: GalleryFiles
    duplicates: DuplicateGroupsCache
    version: str  # the index's, as every answer names it
    importance: tuple[float, ...]  # of each kept dimension, largest first


def load_state(
    settings: Settings, on_batch: Callable[[int], None] = lambda size: None
) -> ServiceState:
    """Load and cross-check the index and the model stored inside it."""
    searcher, model_config = open_index(settings)
    embedder = query_embedder(searcher.index, model_config, settings, on_batch)
    searcher.warm_up(warm_up_model(embedder))
    indexed_gallery = searcher.index.manifest.gallery
    gallery_root = settings.gallery or (Path(indexed_gallery) if indexed_gallery else None)
    gallery = GalleryFiles(gallery_root, searcher.rows)
    duplicates = DuplicateGroupsCache(searcher.gallery_vectors)
    manifest = searcher.index.manifest
    return ServiceState(
        searcher, embedder, model_config, gallery, duplicates, manifest.version, manifest.importance
    )


def open_index(settings: Settings) -> tuple[LocalSearcher, dict]:
    """The index (verified against its checksums) and its model's config, checked to match."""
    if not (Path(settings.index) / MANIFEST_FILE).is_file():
        raise ValueError(
            "it is not an index directory (no manifest.json); "
            "build one with python -m indexer build"
        )
    searcher = LocalSearcher.open(Path(settings.index), cache_bytes=settings.budget_cache_bytes)
    manifest = searcher.index.manifest
    model_config = read_config(searcher.index.model_dir)
    if model_config["id"] != manifest.model.id:
        raise ValueError(
            f"the index was built with model {manifest.model.id} "
            f"but holds {model_config['id']}: rebuild the index"
        )
    return searcher, model_config


def index_problem(settings: Settings) -> str | None:
    """Why the index at settings.index cannot be served, in one line; None when it can."""
    try:
        open_index(settings)
    except (ValueError, OSError) as error:
        return f"cannot serve {settings.index}: {error}"
    return None


def query_embedder(
    index: IndexModel,
    model_config: dict,
    settings: Settings,
    on_batch: Callable[[int], None] = lambda size: None,
) -> QueryEmbedder:
    """The index's model, embedding queries as settings ask."""
    return QueryEmbedder(
        load_query_encoder(index, model_config, threads=QUERY_THREADS),
        index.keep,
        max_batch=settings.embed_max_batch,
        on_batch=on_batch,
    )


def load_query_encoder(
    index: IndexModel, model_config: dict, *, threads: int | None = None
) -> PixelEncoder:
    """ONNX Runtime over the index's model/model.onnx (every index holds it, verified against
    the manifest when loaded): the service needs no torch.
    `threads`: intra-op threads of one forward pass (default: a thread per core, at most 4)."""
    config = EncoderConfig.from_dict(model_config["encoder"])
    return OnnxEncoder(index.model_dir / ONNX_FILE, config, threads=threads)


def warm_up_model(embedder: QueryEmbedder) -> np.ndarray:
    """One forward pass at each batch size queries will use, before /health answers (the first
    allocates ONNX Runtime's memory arena, which would otherwise land on the first users'
    requests); returns a query vector."""
    config = embedder.encoder.config
    for batch in sorted({1, embedder.max_batch}):
        pixels = np.zeros(
            (batch, config.image_size, config.image_size, config.in_channels), np.uint8
        )
        query = embedder.encoder.embed(pixels, keep=embedder.keep)[0]
    return query
