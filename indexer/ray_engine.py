"""`python -m indexer build --engine ray`: the same index, embedded by a Ray cluster.

Ray Data reads and decodes the gallery in parallel tasks (each file is read once: its bytes are
hashed and decoded together), a pool of model actors embeds the decoded batches (one actor per
GPU, or CPU actors), and the driver writes each contiguous range of `shard_size` files as an
index shard — a complete index directory in the single-process format — as soon as its rows
have arrived. The shards are then merged into the index at `out`, written by the same code as
a local build; `keep_shards` leaves them beside it (`<out>.shards/`), and `merge=False` only
writes them, for a gallery served as shards that no one machine could hold merged.
"""

import dataclasses
import logging
import os
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import torch

from indexer.build import (
    BuildConfig,
    BuildSummary,
    build_manifest,
    check_build,
    gallery_files,
    model_with_onnx,
    write_built_index,
)
from indexer.gallery import read_files
from indexer.shards import SHARD_NAME, merge_shards
from indexer.writing import write_index
from models.checkpoint import load_checkpoint
from models.config import EncoderConfig
from models.inference import embed_pixels, for_inference
from search.index_dir import load_index
from search.manifest import BuildRecord, SkippedFile

logger = logging.getLogger(__name__)


def build_index_ray(
    config: BuildConfig,
    *,
    address: str | None = None,
    actors: int | None = None,
    shard_size: int = 1_000_000,
    keep_shards: bool = False,
    merge: bool = True,
) -> BuildSummary:
    """Embed the gallery on Ray, write it as shards, merge them into the index at `config.out`.

    Args:
        address: Ray cluster to join ("auto", "ray://host:10001", "host:6379"); None starts a
            local Ray on this machine's CPUs unless one is already running in this process.
        actors: model actors; default one per GPU in the cluster (CPU tasks decode for them),
            else one per CPU (each CPU actor decodes its own batches: Ray fuses the two steps).
        shard_size: files per shard (the last shard holds the rest).
        keep_shards: keep the shard directories in `<out>.shards/` after merging.
        merge: merge the shards into `config.out`; without, only `<out>.shards/` is written.
    """
    encoder, model_config = check_build(config)
    if shard_size < 1:
        raise ValueError(f"--shard-size must be at least 1, got {shard_size}")
    with model_with_onnx(config.model, encoder) as model:
        # The actors load the checkpoint the user named (a path every node sees); the index
        # gets the copy with the ONNX file.
        return _build_on_ray(
            dataclasses.replace(config, model=model), encoder, model_config,
            checkpoint=config.model, address=address, actors=actors, shard_size=shard_size,
            keep_shards=keep_shards, merge=merge,
        )  # fmt: skip


def _build_on_ray(
    config: BuildConfig,
    encoder,
    model_config: dict,
    *,
    checkpoint: Path,
    address: str | None,
    actors: int | None,
    shard_size: int,
    keep_shards: bool,
    merge: bool,
) -> BuildSummary:
    import ray

    files, relative, skipped = gallery_files(config.gallery)
    if not ray.is_initialized():
        if address not in (None, "auto"):
            _check_reachable(address)
        try:
            ray.init(address=address, num_cpus=None if address else os.cpu_count())
        except ConnectionError as error:
            raise ValueError(f"could not join the Ray cluster at {address}: {error}") from None
    gpus = int(ray.cluster_resources().get("GPU", 0)) if config.device != "cpu" else 0
    if config.device == "cuda" and gpus == 0:
        raise ValueError("--device cuda was asked for, but the Ray cluster has no GPU")
    cpus = int(ray.cluster_resources().get("CPU", 1))
    actors = actors or (gpus if gpus else cpus)

    shards_root = config.out.resolve().with_name(config.out.name + ".shards")
    shutil.rmtree(shards_root, ignore_errors=True)
    started = time.perf_counter()
    batches = _embedded_batches(files, encoder.config, config, checkpoint, actors=actors, gpus=gpus)
    # Shards only merged, not kept, need no 4-bit codes: the merged index gets its own.
    passing = merge and not keep_shards
    shard_config = dataclasses.replace(config, four_bit="never") if passing else config
    writer = _ShardWriter(shards_root, shard_config, model_config, relative, shard_size)
    for batch in batches:
        writer.add(batch)
    shard_dirs = writer.finish()
    seconds = time.perf_counter() - started
    skipped += writer.skipped
    if writer.kept == 0:
        shutil.rmtree(shards_root, ignore_errors=True)
        raise ValueError(f"none of the {len(files)} image files in {config.gallery} could be read")
    if not merge:
        shards = f"{len(shard_dirs)} shards in {shards_root}, not merged"
        return BuildSummary(writer.kept, len(skipped), seconds, shards, embedded=len(files))

    vectors, ids, hashes = merge_shards([load_index(path) for path in shard_dirs])
    summary = write_built_index(
        config,
        model_config,
        vectors=vectors,
        ids=ids,
        hashes=hashes,
        skipped=skipped,
        build=BuildRecord(
            engine="ray",
            seconds=round(seconds, 2),
            images_per_second=round(len(files) / max(seconds, 1e-9), 1),
            embedded=len(files),
            reused=0,
            device="cuda" if gpus else "cpu",
            batch_size=config.batch_size,
            actors=actors,
            shards=len(shard_dirs),
        ),
    )
    if not keep_shards:
        shutil.rmtree(shards_root, ignore_errors=True)
    return summary


def _check_reachable(address: str) -> None:
    """Fail in seconds on an address nothing listens at (Ray itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--address must be auto, HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise ValueError(
            f"no Ray cluster answers at {address}: {error.strerror or error}"
        ) from None


def _embedded_batches(
    files: list[Path],
    encoder_config: EncoderConfig,
    config: BuildConfig,
    checkpoint: Path,
    *,
    actors: int,
    gpus: int,
):
    """Stream of numpy batches {position, sha256, failure, vector}, in no particular order."""
    import ray

    items = [{"position": position, "path": str(path)} for position, path in enumerate(files)]
    # A block per batch, and at least two per actor, so a small gallery still reaches them all.
    blocks = min(len(items), max(2 * actors, -(-len(items) // config.batch_size)))
    dataset = ray.data.from_items(items, override_num_blocks=blocks)
    decoded = dataset.map_batches(
        _decode_batch,
        fn_kwargs={"encoder_config": encoder_config},
        batch_size=config.batch_size,
        batch_format="numpy",
        num_cpus=1,
    )
    embedded = decoded.map_batches(
        _EmbeddingActor,
        fn_constructor_kwargs={
            "model": str(checkpoint),
            "keep": config.keep,
            "device": "cuda" if gpus else "cpu",
        },
        batch_size=config.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_gpus=1 if gpus else 0,
        num_cpus=1,
    )
    return embedded.iter_batches(batch_size=None, batch_format="numpy")


def _decode_batch(batch: dict, encoder_config: EncoderConfig) -> dict:
    """Read each file once: SHA-256 of its bytes, and its pixels at the model's input size."""
    return {"position": batch["position"], **read_files(list(batch["path"]), encoder_config)}


class _EmbeddingActor:
    """Holds one copy of the model (on its GPU, or CPU) and embeds decoded batches."""

    def __init__(self, model: str, keep: int, device: str) -> None:
        encoder, _ = load_checkpoint(Path(model))
        self.device = torch.device(device)
        if self.device.type == "cpu":
            torch.set_num_threads(1)  # one CPU per actor, as Ray scheduled it
        self.encoder = for_inference(encoder, self.device)
        self.keep = keep

    def __call__(self, batch: dict) -> dict:
        ok = batch["decoded"]
        vectors = np.zeros((len(ok), self.keep), dtype=np.float32)
        if ok.any():
            vectors[ok] = embed_pixels(self.encoder, batch["pixels"][ok], keep=self.keep)
        return {
            "position": batch["position"],
            "sha256": batch["sha256"],
            "failure": batch["failure"],
            "vector": vectors,
        }


class _ShardWriter:
    """Collects embedded rows and writes shard k (files k*size … (k+1)*size - 1) once complete."""

    def __init__(
        self, root: Path, config: BuildConfig, model_config: dict, relative: list[str], size: int
    ) -> None:
        self.root, self.config, self.relative, self.size = root, config, relative, size
        self.model_config = model_config
        self.count = (len(relative) + size - 1) // size
        self.pending: dict[int, dict[int, tuple]] = {}
        self.written: list[Path] = []
        self.kept = 0
        self.skipped: list[SkippedFile] = []

    def add(self, batch: dict) -> None:
        for position, digest, failure, vector in zip(
            batch["position"], batch["sha256"], batch["failure"], batch["vector"], strict=True
        ):
            shard = int(position) // self.size
            self.pending.setdefault(shard, {})[int(position)] = (digest, failure, vector)
            expected = min(self.size, len(self.relative) - shard * self.size)
            if len(self.pending[shard]) == expected:
                self._write(shard, self.pending.pop(shard))

    def finish(self) -> list[Path]:
        if self.pending or len(self.written) != self.count:
            raise RuntimeError("the Ray pipeline ended before every file came back")
        return sorted(self.written)

    def _write(self, shard: int, rows: dict[int, tuple]) -> None:
        positions = sorted(rows)
        kept = [p for p in positions if not rows[p][1]]
        skipped = [SkippedFile(self.relative[p], rows[p][1]) for p in positions if rows[p][1]]
        vectors = np.array([rows[p][2] for p in kept], dtype=np.float32).reshape(
            -1, self.config.keep
        )
        out = self.root / SHARD_NAME.format(shard)
        write_index(
            out,
            vectors=vectors,
            ids=[self.relative[p] for p in kept],
            manifest=build_manifest(
                self.config,
                self.model_config,
                count=len(kept),
                skipped=skipped,
                build=BuildRecord(engine="ray", shard=shard, shards=self.count),
            ),
            model_dir=self.config.model,
            hashes=[rows[p][0] for p in kept],
            four_bit=self.config.four_bit,
        )
        self.written.append(out)
        self.kept += len(kept)
        self.skipped += skipped
        logger.info("wrote %s: %d items, %d skipped", out.name, len(kept), len(skipped))
