"""Index build: images/s and peak resident memory of `python -m indexer build`."""

import resource
import subprocess
import sys
import time
from pathlib import Path

from indexer.demo import write_demo_gallery
from search.manifest import read_manifest


def gallery_or_demo(gallery: Path | None, work: Path, count: int) -> Path:
    """The gallery given, or `count` Fashion-MNIST training images written as PNGs into `work`."""
    if gallery is not None:
        return gallery
    gallery = work / "gallery"
    write_demo_gallery(gallery, split="train", count=count)
    return gallery


def run_indexer(
    gallery: Path,
    out: Path,
    keep: int,
    workers: int,
    model: Path | None = None,
    *,
    code: Path | None = None,
) -> float:
    """`python -m indexer build` in a child process, so its peak memory is its own; returns
    its wall time in seconds. `code`: a checkout whose `indexer` package runs instead."""
    command = [sys.executable, "-m", "indexer", "build", "--gallery", str(gallery)]
    command += ["--out", str(out), "--keep", str(keep), "--workers", str(workers)]
    command += ["--model", str(model)] if model is not None else []
    started = time.perf_counter()
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=code
    )
    return time.perf_counter() - started


def bench_build(
    gallery: Path, out: Path, keep: int, workers: int, model: Path | None = None
) -> dict:
    """Build the index with this checkout's indexer; its speed and peak memory."""
    wall = run_indexer(gallery, out, keep, workers, model)
    manifest = read_manifest(out)
    # ru_maxrss of children: the largest single process (the indexer or one decoding worker).
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "images": manifest.count + len(manifest.skipped),
        "keep": keep,
        "workers": workers,
        "embedding_seconds": manifest.build.seconds,
        "images_per_second": manifest.build.images_per_second,
        "wall_seconds_with_start_and_write": round(wall, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "device": manifest.build.device,
    }
