"""What the service holds in memory once started: the index, its engine and its model."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from indexer.index_dir import LoadedIndex, load_index
from models.checkpoint import load_checkpoint
from service.embedding import QueryEmbedder
from service.engine import SearchEngine
from service.gallery import GalleryFiles
from service.settings import Settings


@dataclass(frozen=True)
class ServiceState:
    index: LoadedIndex
    engine: SearchEngine
    embedder: QueryEmbedder
    model_config: dict
    gallery: GalleryFiles


def load_state(
    settings: Settings, on_batch: Callable[[int], None] = lambda size: None
) -> ServiceState:
    """Load and cross-check the index and the model stored inside it."""
    index = load_index(Path(settings.index))
    encoder, model_config = load_checkpoint(index.model_dir)
    if model_config["id"] != index.manifest["model"]["id"]:
        raise ValueError(
            f"the index was built with model {index.manifest['model']['id']} "
            f"but holds {model_config['id']}: rebuild the index"
        )
    engine = SearchEngine(index, cache_bytes=settings.budget_cache_bytes)
    embedder = QueryEmbedder(
        encoder,
        index.keep,
        max_batch=settings.embed_max_batch,
        max_wait_ms=settings.embed_max_wait_ms,
        on_batch=on_batch,
    )
    indexed_gallery = index.manifest.get("gallery")
    gallery_root = settings.gallery or (Path(indexed_gallery) if indexed_gallery else None)
    gallery = GalleryFiles(gallery_root, index.ids)
    return ServiceState(index, engine, embedder, model_config, gallery)
