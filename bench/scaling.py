"""`python -m bench.scaling`: the numbers behind docs/scaling.md.

Measures embedding throughput per worker (the local engine with 0, 1, 2 decoding processes;
the Ray engine with 1 and 2 CPU actors on a local Ray) on Fashion-MNIST PNG files, and the bytes
per gallery image of every search structure at small and full budgets. Prints tables and saves
<out>/scaling.json; the plan for 100M images in docs/scaling.md is worked from these.
"""

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.build import gallery_or_demo
from bench.http import indexed_ids, running_cluster, running_service, stage_split, wrk_load
from bench.machine import describe_run

# torch, FAISS and Ray are imported by the functions that use them: --help answers at once.


def bench_local(gallery: Path, work: Path, keep: int, workers: list[int]) -> list[dict]:
    from indexer.build import BuildConfig, build_index
    from models.checkpoint import SMALL_CNN_CHECKPOINT

    runs = []
    for count in workers:
        out = work / f"local-{count}"
        config = BuildConfig(gallery, SMALL_CNN_CHECKPOINT, out, keep=keep, workers=count)
        started = time.perf_counter()
        summary = build_index(config)
        wall = time.perf_counter() - started
        runs.append(
            {
                "engine": "local",
                "decoding_processes": count,
                "images": summary.count + summary.skipped,
                "embedding_seconds": round(summary.seconds, 2),
                "images_per_second": round(summary.images_per_second, 1),
                "wall_seconds": round(wall, 2),
            }
        )
        print(runs[-1], flush=True)
    return runs


def bench_ray(gallery: Path, work: Path, keep: int, actors: list[int]) -> list[dict]:
    import ray

    from indexer.build import BuildConfig
    from indexer.ray_engine import build_index_ray
    from models.checkpoint import SMALL_CNN_CHECKPOINT

    started = time.perf_counter()
    owned = not ray.is_initialized()  # a Ray the caller started is left running
    if owned:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    start_seconds = time.perf_counter() - started
    runs = []
    try:
        for count in actors:
            out = work / f"ray-{count}"
            config = BuildConfig(gallery, SMALL_CNN_CHECKPOINT, out, keep=keep)
            started = time.perf_counter()
            summary = build_index_ray(config, actors=count, shard_size=10_000)
            wall = time.perf_counter() - started
            runs.append(
                {
                    "engine": "ray",
                    "actors": count,
                    "images": summary.count + summary.skipped,
                    "pipeline_seconds": round(summary.seconds, 2),
                    "images_per_second": round(summary.images_per_second, 1),
                    "wall_seconds": round(wall, 2),
                    "ray_start_seconds": round(start_seconds, 2),
                }
            )
            print(runs[-1], flush=True)
    finally:
        if owned:
            ray.shutdown()
    return runs


def python_list_bytes(index) -> dict:
    """Bytes per image of the ids and content hashes a loaded index keeps as Python strings."""
    count = len(index.ids)
    return {
        "ids": round(sum(sys.getsizeof(item) + 8 for item in index.ids) / count, 1),
        "sha256": round(sum(sys.getsizeof(item) + 8 for item in index.hashes) / count, 1),
    }


def structure_bytes_per_image(vectors: np.ndarray, budgets: list[int]) -> list[dict]:
    """Bytes per row of each structure a search process holds for a budget: the float flat
    scan, and the 4-bit codes the indexer builds (with their shortlist length)."""
    from search.four_bit import four_bit_codes

    rows = []
    count = len(vectors)
    for k in budgets:
        codes = four_bit_codes(vectors, k)
        for name, size, params in (
            ("flat", 4 * count * k, {}),
            ("4-bit codes", codes.nbytes, {"shortlist": codes.shortlist}),
        ):
            rows.append(
                {
                    "structure": name,
                    "params": params,
                    "k": k,
                    "bytes_per_image": round(size / count, 1),
                }
            )
            print(rows[-1], flush=True)
    return rows


def bench_cluster(
    index_dir: Path,
    gallery: Path,
    work: Path,
    shard_counts: list[int],
    concurrencies: list[int],
    duration: float,
    k_features: int = 16,
) -> list[dict]:
    """QPS, p50 and p99 of POST /search through the Ray Serve cluster at each shard count, next
    to one `python -m service` over the whole index, with wrk on the same images; and where a
    lone request's time goes in each (Server-Timing medians: the cluster's `forward` is the
    call to the embedding deployment, its `search` the calls to every shard)."""
    from indexer.shards import split_index
    from search.index_dir import load_index

    images = [str(gallery / item) for item in indexed_ids(index_dir, 256)]
    index = load_index(index_dir)
    rows, splits = [], []

    def measure(setup: str, shards: int, url: str) -> None:
        wrk_load(url, images, 4, min(3.0, duration), k_features)  # warm-up
        (lone,) = stage_split(url, images, [k_features], requests=200)
        splits.append({"setup": setup, "shards": shards} | lone)
        print(f"  {setup}, {shards} shards, a lone request: {lone}", flush=True)
        for concurrency in concurrencies:
            result = wrk_load(url, images, concurrency, duration, k_features)
            rows.append({"setup": setup, "shards": shards, "k_features": k_features} | result)
            print(
                f"  {setup}, {shards} shards, concurrency {concurrency}: {result['qps']} QPS, "
                f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, {result['errors']} errors",
                flush=True,
            )

    with running_service(index_dir, {}) as (url, _):
        measure("one service", 1, url)
    for count in shard_counts:
        shards = work / f"shards-{count}"
        split_index(index, shards, count)
        with running_cluster(shards) as url:
            measure("Ray Serve cluster", count, url)
    return rows, splits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__)
    parser.add_argument("--gallery", type=Path, help="image folder (default: Fashion-MNIST train)")
    parser.add_argument("--count", type=int, default=20_000, help="Fashion-MNIST images to index")
    parser.add_argument("--keep", type=int, default=64)
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[0, 1, 2], help="local decoding processes"
    )
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2], help="Ray CPU actors")
    parser.add_argument("--structure-rows", type=int, default=200_000)
    parser.add_argument(
        "--shards", type=int, nargs="*", default=[1, 2, 4], help="cluster shard counts (none: skip)"
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    from bench.search import synthetic_vectors
    from search.index_dir import load_index

    logging.basicConfig(level=logging.WARNING)
    results = describe_run("python -m bench.scaling", argv)
    with tempfile.TemporaryDirectory(prefix="scaling-") as work:
        work = Path(work)
        gallery = gallery_or_demo(args.gallery, work, args.count)
        results["embedding"] = bench_local(gallery, work, args.keep, args.workers)
        results["embedding"] += bench_ray(gallery, work, args.keep, args.actors)
        index = load_index(work / f"local-{args.workers[-1]}")
        real = index.vectors
        results["service_lists_bytes_per_image"] = python_list_bytes(index)
        print(results["service_lists_bytes_per_image"], flush=True)
        results["serving"], results["lone_request_split"] = bench_cluster(
            work / f"local-{args.workers[-1]}", gallery, work, args.shards, args.concurrency,
            args.duration,
        )  # fmt: skip
    # Structures on synthetic rows spread like the real ones (the benchmark's generator).
    vectors = synthetic_vectors(real, args.structure_rows, seed=2)
    results["bytes_per_image"] = structure_bytes_per_image(vectors, [16, args.keep])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scaling.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {args.out / 'scaling.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
