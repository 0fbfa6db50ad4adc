"""Building an index: walk the gallery, embed in batches, keep the top dimensions, write."""

import contextlib
import dataclasses
import functools
import hashlib
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader
from tqdm import tqdm

from indexer.gallery import GalleryFiles, ReadBatch
from indexer.writing import check_replaceable, write_index
from models.checkpoint import load_checkpoint
from models.config import CONFIG_FILE, MODEL_FILES, ONNX_FILE
from models.device import resolve_device
from models.encoder import Encoder
from models.imagefiles import list_image_files
from models.inference import embed_pixels, for_inference
from models.onnx_encoder import OnnxEncoder
from models.onnx_export import export_onnx
from search.four_bit import FOUR_BIT_MODES
from search.index_dir import LoadedIndex, load_index
from search.manifest import BuildRecord, Manifest, ModelRecord, SkippedFile

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
    # 4-bit codes for the fast budgets: auto (above 100,000 items), always, never
    four_bit: str = "auto"


@dataclass(frozen=True)
class BuildSummary:
    count: int
    skipped: int
    seconds: float
    structure: str = "flat"  # what serves the budgets, in words
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
    with model_with_onnx(config.model, encoder) as model:
        return _build(dataclasses.replace(config, model=model), encoder, model_config, previous)


def _build(
    config: BuildConfig, encoder: Encoder, model_config: dict, previous: LoadedIndex | None
) -> BuildSummary:
    files, relative, skipped = gallery_files(config.gallery)
    before = _previous_rows(previous)
    unchanged = [before.get(item, ("", -1))[0] for item in relative]
    device = resolve_device(config.device)
    started = time.perf_counter()
    read = _embed_files(encoder, files, unchanged, config, device)
    seconds = time.perf_counter() - started
    failed = read["failure"] != ""
    skipped += [
        SkippedFile(relative[position], read["failure"][position])
        for position in np.flatnonzero(failed)
    ]
    kept = np.flatnonzero(~failed)
    if len(kept) == 0:
        raise ValueError(f"none of the {len(files)} image files in {config.gallery} could be read")
    vectors = read["vectors"][kept]
    is_reused = ~read["decoded"][kept]
    reused = kept[is_reused]
    if len(reused):
        vectors[is_reused] = previous.vectors[[before[relative[p]][1] for p in reused]]
    embedded = int(read["decoded"].sum())
    summary = write_built_index(
        config,
        model_config,
        vectors=vectors,
        ids=[relative[position] for position in kept],
        hashes=[str(read["sha256"][position]) for position in kept],
        skipped=skipped,
        build=BuildRecord(
            seconds=round(seconds, 2),
            images_per_second=round(embedded / max(seconds, 1e-9), 1),
            embedded=embedded,
            reused=len(reused),
            device=device.type,
            runtime="onnxruntime" if device.type == "cpu" else "torch",
            batch_size=config.batch_size,
        ),
    )
    removed = 0 if previous is None else len(set(previous.ids) - set(relative))
    return dataclasses.replace(summary, reused=len(reused), removed=removed)


def check_build(config: BuildConfig) -> tuple[Encoder, dict]:
    """Refuse a build that cannot succeed before any work; returns the loaded model."""
    if not config.gallery.is_dir():
        raise ValueError(f"gallery {config.gallery} is not a directory")
    if config.keep < 1:
        raise ValueError(f"--keep must be at least 1, got {config.keep}")
    if config.four_bit not in FOUR_BIT_MODES:
        raise ValueError(f"--four-bit must be one of {', '.join(FOUR_BIT_MODES)}")
    if config.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {config.batch_size}")
    check_replaceable(config.out)
    encoder, model_config = load_checkpoint(config.model)
    dim = encoder.config.embedding_dim
    if config.keep > dim:
        raise ValueError(f"--keep {config.keep} is larger than the model's {dim} dimensions")
    return encoder, model_config


@contextlib.contextmanager
def model_with_onnx(model: Path, encoder: Encoder) -> Iterator[Path]:
    """The checkpoint directory with the ONNX file the service embeds queries with: `model`
    itself when it has one, else a temporary copy with one exported (a few seconds)."""
    if (model / ONNX_FILE).is_file():
        yield model
        return
    with tempfile.TemporaryDirectory(prefix="tricl-model-") as work:
        copy = Path(work) / "model"
        copy.mkdir()
        for name in MODEL_FILES:
            if (model / name).is_file():
                shutil.copyfile(model / name, copy / name)
        logger.info("%s has no %s: exporting the encoder to ONNX", model, ONNX_FILE)
        export_onnx(encoder, copy / ONNX_FILE)
        yield copy


def gallery_files(gallery: Path) -> tuple[list[Path], list[str], list[SkippedFile]]:
    """The image files to index, their ids, and the files left out with reasons."""
    files = list_image_files(gallery)
    if not files:
        raise ValueError(
            f"no image files found in {gallery} (looked for JPEG, PNG, WebP, BMP, GIF, TIFF)"
        )
    return _listable(files, gallery)


def model_record(model: Path, model_config: dict) -> ModelRecord:
    """What the manifest says of the checkpoint at `model` (`model_config`: its config.json)."""
    return ModelRecord(
        id=model_config["id"],
        weights_sha256=model_config["weights_sha256"],
        config_sha256=hashlib.sha256((model / CONFIG_FILE).read_bytes()).hexdigest(),
        loss=model_config["training"].get("loss"),
        embedding_dim=len(model_config["importance"]),
    )


def build_manifest(
    config: BuildConfig,
    model_config: dict,
    *,
    count: int,
    skipped: list[SkippedFile],
    build: BuildRecord,
) -> Manifest:
    """The manifest of an index (or of one shard of it) embedded by `config`'s model."""
    importance = model_config["importance"]
    order = model_config["importance_order"]
    return Manifest(
        model=model_record(config.model, model_config),
        keep=config.keep,
        count=count,
        importance=tuple(importance[j] for j in order[: config.keep]),
        gallery=str(config.gallery.resolve()),
        skipped=tuple(skipped),
        build=build,
    )


def write_built_index(
    config: BuildConfig,
    model_config: dict,
    *,
    vectors: np.ndarray,
    ids: list[str],
    hashes: list[str],
    skipped: list[SkippedFile],
    build: BuildRecord,
) -> BuildSummary:
    """Describe the embedded gallery in a manifest and write it with its 4-bit codes."""
    manifest = build_manifest(config, model_config, count=len(ids), skipped=skipped, build=build)
    written = write_index(
        config.out,
        vectors=vectors,
        ids=ids,
        manifest=manifest,
        model_dir=config.model,
        four_bit=config.four_bit,
        hashes=hashes,
    )
    described = "flat"
    if written.four_bit:
        budgets = ", ".join(str(budget.features) for budget in written.four_bit)
        described += f", 4-bit codes at {budgets} features"
    return BuildSummary(len(ids), len(skipped), build.seconds, described, embedded=build.embedded)


def update_config(out: Path, gallery: Path, **options) -> tuple[BuildConfig, LoadedIndex]:
    """Settings for updating the index at `out`: its own model, budget and choice of 4-bit
    codes (trained again on the updated vectors where that choice asks for them)."""
    previous = load_index(out)
    config = BuildConfig(
        gallery=gallery,
        model=previous.model_dir,
        out=out,
        keep=previous.keep,
        four_bit=previous.manifest.build.four_bit or "auto",
        **options,
    )
    return config, previous


def _previous_rows(previous: LoadedIndex | None) -> dict[str, tuple[str, int]]:
    """id -> (content hash, row) in the index being updated; a file whose bytes still hash the
    same keeps that row's vector bit for bit and is not decoded again."""
    if previous is None:
        return {}
    return {
        item: (digest, row)
        for row, (item, digest) in enumerate(zip(previous.ids, previous.hashes, strict=True))
    }


def _listable(files: list[Path], gallery: Path) -> tuple[list[Path], list[str], list[SkippedFile]]:
    """Files, their ids, and the files left out because ids.txt (one id a line) cannot hold them."""
    kept, ids, skipped = [], [], []
    for path in files:
        item = path.relative_to(gallery).as_posix()
        if "\n" in item or "\r" in item:
            skipped.append(SkippedFile(repr(item)[1:-1], "file name contains a line break"))
        elif not _is_utf8(item):
            shown = item.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            skipped.append(SkippedFile(shown, "file name is not valid UTF-8"))
        else:
            kept.append(path)
            ids.append(item)
    return kept, ids, skipped


def _is_utf8(name: str) -> bool:
    """False for a name with bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _embed_files(
    encoder: Encoder, files: list[Path], unchanged: list[str], config: BuildConfig, device
) -> dict:
    """Read, hash, decode and embed every file in batches, decoding in DataLoader workers.

    Returns numpy arrays by file position: sha256, failure ("" if fine), decoded (embedded
    now; False for unchanged files and failures) and vectors (N x keep, zero where not decoded).
    """
    # On the CPU the exported graph under ONNX Runtime embeds a batch 1.5-1.9x faster than torch.
    if device.type == "cpu":
        embed = OnnxEncoder(config.model / ONNX_FILE, encoder.config).embed
    else:
        embed = functools.partial(embed_pixels, for_inference(encoder, device))
    loader = DataLoader(
        GalleryFiles(files, unchanged),
        batch_size=config.batch_size,
        num_workers=config.workers,
        collate_fn=ReadBatch(encoder.config),
    )
    read = {
        "sha256": np.full(len(files), "", dtype=object),
        "failure": np.full(len(files), "", dtype=object),
        "decoded": np.zeros(len(files), dtype=bool),
        "vectors": np.zeros((len(files), config.keep), dtype=np.float32),
    }
    failures = 0
    with tqdm(total=len(files), desc="indexing", unit="img") as progress:
        for batch in loader:
            positions, decoded = batch["position"], batch["decoded"]
            for position, reason in zip(positions, batch["failure"], strict=True):
                if reason:
                    logger.warning("skipped %s: %s", files[position].name, reason)
                    failures += 1
            for name in ("sha256", "failure", "decoded"):
                read[name][positions] = batch[name]
            if decoded.any():
                vectors = embed(batch["pixels"][decoded], keep=config.keep)
                read["vectors"][positions[decoded]] = vectors
            progress.update(len(positions))
            progress.set_postfix(skipped=failures)
    return read
