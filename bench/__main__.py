"""`python -m bench`: build, search, fast-budget, re-ranking and HTTP benchmarks.

With no options it indexes the 60,000 Fashion-MNIST training images as PNG files with the small
CNN (models/fashion-mnist-small-cnn), benchmarks
search on them and on 1,000,000 synthetic vectors, and loads a real service for 30 s per
concurrency level. Tables go to the terminal; numbers (with the machine) to
<out>/performance.json and the latency plot to <out>/performance-latency-vs-k.png.
"""

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from bench import report
from bench.build import bench_build, gallery_or_demo
from bench.http import bench_http
from bench.machine import describe_run, read_bandwidth_gbs
from bench.soak import bench_soak

# The index build always runs (the rest needs it); the soak, an hour long, only when asked.
PARTS = ("search", "quantized", "memory", "fast-budgets", "rerank", "http", "soak")
DEFAULT_PARTS = PARTS[:-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--gallery", type=Path, help="image folder (default: Fashion-MNIST train)")
    parser.add_argument("--count", type=int, default=60_000, help="Fashion-MNIST images to write")
    parser.add_argument("--keep", type=int, default=None, help="dims to index (default: all)")
    parser.add_argument(
        "--synthetic", type=int, nargs="*", default=[1_000_000], help="synthetic gallery sizes"
    )
    parser.add_argument("--repeats", type=int, default=50, help="timed single queries per row")
    parser.add_argument(
        "--fast-features", type=int, default=16, help="budget the fast-budget part compares at"
    )
    parser.add_argument("--rerank-queries", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=10, help="seconds per HTTP load level")
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating quiet/hog rounds per HTTP load level"
    )
    parser.add_argument(
        "--no-hog", action="store_true", help="HTTP on a quiet machine only, not beside a CPU hog"
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--soak-minutes", type=float, default=30, help="length of each soak (quiet, beside a hog)"
    )
    parser.add_argument("--workers", type=int, default=2, help="indexer decoding processes")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(DEFAULT_PARTS))
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    # Imported once the arguments are read: they load torch and FAISS, --help does not wait.
    from bench.memory import bench_memory
    from bench.search import (
        bench_budgets,
        bench_fast_budgets,
        bench_quantized,
        bench_rerank,
        synthetic_vectors,
    )
    from models.checkpoint import SMALL_CNN_CHECKPOINT, load_checkpoint
    from search.index_dir import load_index
    from search.scan import ladder_budgets

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("faiss").setLevel(logging.WARNING)

    args.out.mkdir(parents=True, exist_ok=True)
    results = describe_run("python -m bench", argv)
    save = _saver(args.out / "performance.json", results)
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        work = Path(work)
        gallery = gallery_or_demo(args.gallery, work, args.count)
        keep = args.keep or load_checkpoint(SMALL_CNN_CHECKPOINT)[0].config.embedding_dim
        index_dir = work / "index"
        results["build"] = bench_build(gallery, index_dir, keep, args.workers, SMALL_CNN_CHECKPOINT)
        print(f"build: {results['build']}", flush=True)
        save()
        index = load_index(index_dir)
        real = index.vectors
        results["bandwidth_gbs"] = read_bandwidth_gbs()
        print(f"memory read bandwidth: {results['bandwidth_gbs']} GB/s", flush=True)

        if "search" in args.parts:
            queries = synthetic_vectors(real, max(1000, 64 * 5), seed=1)
            parts = [bench_budgets(real, queries, results["bandwidth_gbs"], args.repeats)]
            for size in args.synthetic:
                vectors = synthetic_vectors(real, size, seed=2)
                parts.append(
                    bench_budgets(vectors, queries, results["bandwidth_gbs"], args.repeats)
                )
                del vectors
            results["search"] = parts
            for part in parts:
                print(report.budget_table(part) + "\n\n" + report.memory_table(part) + "\n")
            report.plot_latency(parts, args.out / "performance-latency-vs-k.png")
            save()

        if "quantized" in args.parts or "memory" in args.parts:
            size = max(args.synthetic, default=len(real))
            vectors = synthetic_vectors(real, size, seed=2) if args.synthetic else real
            queries = synthetic_vectors(real, 1000, seed=1)
            if "quantized" in args.parts:
                results["quantized"] = bench_quantized(vectors, queries, args.repeats * 4)
                print(report.quantized_table(results["quantized"]) + "\n", flush=True)
                save()
            if "memory" in args.parts:
                features = min(args.fast_features, keep)
                results["memory"] = bench_memory(vectors, queries[:100], work, features)
                print(report.rss_table(results["memory"]) + "\n", flush=True)
                save()
            del vectors

        if "fast-budgets" in args.parts:
            queries = synthetic_vectors(real, 1000, seed=3)
            features = min(args.fast_features, keep)
            results["fast_budgets"] = []
            for size in [len(real), *args.synthetic]:
                vectors = synthetic_vectors(real, size, seed=2) if size != len(real) else real
                part = bench_fast_budgets(vectors, queries, features, args.repeats * 4)
                results["fast_budgets"].append(part)
                del vectors
                print(report.fast_budget_table(part) + "\n", flush=True)
                save()

        if "rerank" in args.parts:
            results["rerank"] = bench_rerank(real, index.ids, args.rerank_queries, args.repeats * 4)
            print(report.rerank_table(results["rerank"]) + "\n", flush=True)
            save()

        if "http" in args.parts:
            results["http"] = bench_http(
                index_dir, gallery, args.concurrency, args.duration, ladder_budgets(keep),
                hog=not args.no_hog, rounds=args.rounds,
            )  # fmt: skip
            print(report.http_table(results["http"]) + "\n", flush=True)
            print(report.lone_request_table(results["http"]) + "\n", flush=True)
            print(report.concurrency_gain_table(results["http"]) + "\n", flush=True)
            print(report.stage_table(results["http"]) + "\n", flush=True)
            save()
        if "soak" in args.parts:
            results["soak"] = bench_soak(index_dir, gallery, args.soak_minutes)
            print(report.soak_table(results["soak"]) + "\n", flush=True)
            save()
    print(f"saved {args.out / 'performance.json'}")
    return 0


def _saver(path: Path, results: dict):
    def save() -> None:
        results["saved"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        path.write_text(json.dumps(results, indent=2) + "\n")

    return save


if __name__ == "__main__":
    sys.exit(main())
