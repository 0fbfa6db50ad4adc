"""Building an index: walk the gallery, embed in batches, keep the top dimensions, write."""

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from indexer.gallery import GalleryImages, collate_decoded
from indexer.index_dir import (
    LoadedIndex,
    check_replaceable,
    file_sha256,
    load_index,
    write_index,
)
from indexer.retrieval import INDEX_TYPES, BuiltStructure, build_structure, choose_index_type
from models.checkpoint import CONFIG_FILE, load_checkpoint
from models.device import resolve_device
from models.encoder import Encoder
from models.imagefiles import list_image_files
from models.inference import embed_pixels, for_inference
from models.vectors import unit_rows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildConfig:
    """What to index, with which model, how many dimensions to keep, and where to write it."""

    gallery: Path
    model: Path
    out: Path
    keep: int = 64
    batch_size: int = 256
    device: str = "auto"
    workers: int = 2
    index_type: str = "flat"
    index_features: int = 16
    target_recall: float = 0.95
    memory_budget_bytes: int = 4 << 30


@dataclass(frozen=True)
class BuildSummary:
    count: int
    skipped: int
    seconds: float
    structure: str = "flat"
    reused: int = 0  # vectors carried over bit for bit from the previous index (updates)
    embedded: int = 0
    removed: int = 0

    @property
    def images_per_second(self) -> float:
        return (self.count + self.skipped) / max(self.seconds, 1e-9)


def build_index(config: BuildConfig, *, previous: LoadedIndex | None = None) -> BuildSummary:
    """Embed every image under `config.gallery` and write the index to `config.out`.

    With `previous` (an update), files whose content hash matches an item of the previous index
    keep that item's vector unchanged and are not decoded at all; only new and changed files
    are embedded, and items whose files are gone are dropped.
    """
    encoder, model_config = check_build(config)
    files, relative, skipped = gallery_files(config.gallery)
    hashes = [file_sha256(path) for path in files]
    reusable = _reusable_rows(previous, relative, hashes)
    to_embed = [position for position in range(len(files)) if position not in reusable]
    device = resolve_device(config.device)
    started = time.perf_counter()
    fresh, fresh_positions, failures = _embed_files(
        encoder, [files[p] for p in to_embed], config, device
    )
    seconds = time.perf_counter() - started
    failures = [(to_embed[position], reason) for position, reason in failures]
    skipped += [{"path": relative[position], "reason": reason} for position, reason in failures]
    fresh_rows = {to_embed[position]: row for row, position in enumerate(fresh_positions)}
    kept_positions = sorted(set(reusable) | set(fresh_rows))
    if not kept_positions:
        raise ValueError(f"none of the {len(files)} image files in {config.gallery} could be read")
    vectors = np.empty((len(kept_positions), config.keep), dtype=np.float32)
    for row, position in enumerate(kept_positions):
        if position in reusable:
            vectors[row] = previous.vectors[reusable[position]]
        else:
            vectors[row] = fresh[fresh_rows[position]]
    summary = write_built_index(
        config,
        model_config,
        vectors=vectors,
        ids=[relative[position] for position in kept_positions],
        hashes=[hashes[position] for position in kept_positions],
        skipped=skipped,
        build={
            "seconds": round(seconds, 2),
            "images_per_second": round(len(to_embed) / max(seconds, 1e-9), 1),
            "embedded": len(to_embed),
            "reused": len(reusable),
            "device": device.type,
            "batch_size": config.batch_size,
        },
    )
    removed = 0 if previous is None else len(set(previous.ids) - set(relative))
    return dataclasses.replace(summary, reused=len(reusable), removed=removed)


def check_build(config: BuildConfig) -> tuple[Encoder, dict]:
    """Refuse a build that cannot succeed before any work; returns the loaded model."""
    if not config.gallery.is_dir():
        raise ValueError(f"gallery {config.gallery} is not a directory")
    if config.keep < 1:
        raise ValueError(f"--keep must be at least 1, got {config.keep}")
    if config.index_type not in INDEX_TYPES:
        raise ValueError(f"--index-type must be one of {', '.join(INDEX_TYPES)}")
    if not 0 < config.target_recall <= 1:
        raise ValueError(f"--target-recall must be in (0, 1], got {config.target_recall}")
    if config.index_features < 1:
        raise ValueError(f"--index-features must be at least 1, got {config.index_features}")
    if config.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {config.batch_size}")
    check_replaceable(config.out)
    encoder, model_config = load_checkpoint(config.model)
    dim = encoder.config.embedding_dim
    if config.keep > dim:
        raise ValueError(f"--keep {config.keep} is larger than the model's {dim} dimensions")
    return encoder, model_config


def gallery_files(gallery: Path) -> tuple[list[Path], list[str], list[dict]]:
    """The image files to index, their ids, and the files left out with reasons."""
    files = list_image_files(gallery)
    if not files:
        raise ValueError(
            f"no image files found in {gallery} (looked for JPEG, PNG, WebP, BMP, GIF, TIFF)"
        )
    return _listable(files, gallery)


def build_manifest(
    config: BuildConfig, model_config: dict, *, count: int, skipped: list[dict], build: dict
) -> dict:
    """The manifest of an index (or of one shard of it) embedded by `config`'s model."""
    importance = model_config["importance"]
    order = model_config["importance_order"]
    return {
        "model": {
            "id": model_config["id"],
            "weights_sha256": model_config["weights_sha256"],
            "config_sha256": hashlib.sha256((config.model / CONFIG_FILE).read_bytes()).hexdigest(),
            "loss": model_config["training"].get("loss"),
            "embedding_dim": len(importance),
        },
        "keep": config.keep,
        "count": count,
        "importance": [importance[j] for j in order[: config.keep]],
        "metric": "cosine over the first k importance-ordered dimensions",
        "gallery": str(config.gallery.resolve()),
        "target_recall": config.target_recall,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "skipped": skipped,
        "build": build,
    }


def write_built_index(
    config: BuildConfig,
    model_config: dict,
    *,
    vectors: np.ndarray,
    ids: list[str],
    hashes: list[str],
    skipped: list[dict],
    build: dict,
) -> BuildSummary:
    """Describe the embedded gallery in a manifest, add the search structure, write it all."""
    started = time.perf_counter()
    manifest = build_manifest(config, model_config, count=len(ids), skipped=skipped, build=build)
    structure = _search_structure(vectors, config)
    manifest["build"]["index_seconds"] = round(time.perf_counter() - started, 2)
    write_index(
        config.out,
        vectors=vectors,
        ids=ids,
        manifest=manifest,
        model_dir=config.model,
        structure=structure,
        hashes=hashes,
    )
    described = structure.type
    if not structure.exact:
        described += f" at {structure.features} features, recall@10 {structure.recall_at_10:.3f}"
    return BuildSummary(
        len(ids), len(skipped), build["seconds"], described, embedded=build["embedded"]
    )


def update_config(out: Path, gallery: Path, **options) -> tuple[BuildConfig, LoadedIndex]:
    """Settings for updating the index at `out`: its own model, budget and search structure."""
    previous = load_index(out)
    if previous.hashes is None:
        raise ValueError(
            "this index holds no content hashes (it predates updates); "
            "rebuild it once with python -m indexer build"
        )
    structure = previous.structure_info
    config = BuildConfig(
        gallery=gallery,
        model=previous.model_dir,
        out=out,
        keep=previous.keep,
        index_type=structure["type"],
        index_features=int(structure["features"]),
        target_recall=float(previous.manifest.get("target_recall", 0.95)),
        **options,
    )
    return config, previous


def _reusable_rows(
    previous: LoadedIndex | None, relative: list[str], hashes: list[str]
) -> dict[int, int]:
    """Position in the new file list -> row of the previous index with the same id and bytes."""
    if previous is None or previous.hashes is None:
        return {}
    before = {
        item: (digest, row)
        for row, (item, digest) in enumerate(zip(previous.ids, previous.hashes, strict=True))
    }
    reusable = {}
    for position, (item, digest) in enumerate(zip(relative, hashes, strict=True)):
        if item in before and before[item][0] == digest:
            reusable[position] = before[item][1]
    return reusable


def _search_structure(vectors: np.ndarray, config: BuildConfig) -> BuiltStructure:
    """index.faiss: exact over all kept columns, or approximate at the --index-features budget."""
    features = min(config.index_features, config.keep)
    index_type = config.index_type
    if index_type == "auto":
        index_type = choose_index_type(len(vectors), features, config.memory_budget_bytes)
    if index_type == "flat":
        return build_structure(unit_rows(vectors), "flat")
    structure = build_structure(
        unit_rows(vectors[:, :features]), index_type, target_recall=config.target_recall
    )
    if structure.recall_at_10 < config.target_recall:
        logger.warning(
            "%s at %d features reaches recall@10 %.3f, below the target %.2f",
            index_type,
            features,
            structure.recall_at_10,
            config.target_recall,
        )
    return structure


def _listable(files: list[Path], gallery: Path) -> tuple[list[Path], list[str], list[dict]]:
    """Files, their ids, and the files left out because ids.txt (one id a line) cannot hold them."""
    kept, ids, skipped = [], [], []
    for path in files:
        item = path.relative_to(gallery).as_posix()
        if "\n" in item or "\r" in item:
            skipped.append({"path": repr(item)[1:-1], "reason": "file name contains a line break"})
        else:
            kept.append(path)
            ids.append(item)
    return kept, ids, skipped


def _embed_files(
    encoder: Encoder, files: list[Path], config: BuildConfig, device: torch.device
) -> tuple[np.ndarray, list[int], list[tuple[int, str]]]:
    """Embed files in batches decoded by DataLoader workers.

    Returns the kept columns of the embeddings (rows in file order, failures left out), the
    positions in `files` of those rows, and (position, reason) for each file that failed.
    """
    encoder = for_inference(encoder, device)
    loader = DataLoader(
        GalleryImages(files, encoder.config),
        batch_size=config.batch_size,
        num_workers=config.workers,
        collate_fn=collate_decoded,
        pin_memory=device.type == "cuda",
    )
    rows: list[np.ndarray] = []
    positions: list[int] = []
    failures: list[tuple[int, str]] = []
    with tqdm(total=len(files), desc="indexing", unit="img") as progress:
        for batch in loader:
            for position, reason in batch["failures"]:
                logger.warning("skipped %s: %s", files[position].name, reason)
            failures += batch["failures"]
            if batch["pixels"] is not None:
                rows.append(embed_pixels(encoder, batch["pixels"], keep=config.keep))
                positions += batch["positions"]
            progress.update(len(batch["positions"]) + len(batch["failures"]))
            progress.set_postfix(skipped=len(failures))
    vectors = np.concatenate(rows).astype(np.float32) if rows else np.empty((0, config.keep))
    return vectors, positions, failures
