"""`python -m bench.versus --baseline REV`: this service against an earlier commit's, in one run.

Both services serve an index of the same images (Fashion-MNIST training images, or --gallery)
from the same Python environment; the earlier one runs from a detached git worktree and serves
an index built by its own indexer, since an earlier commit may read another index format. They
are loaded in alternating rounds, the order flipped each round, so that drift in the machine's
load falls on both: a lone request (concurrency 1) and 32 concurrent clients at one budget.
Medians over rounds go to the terminal and to <out>/versus.json.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.build import bench_build, gallery_or_demo, run_indexer
from bench.http import indexed_ids, running_service, wrk_load
from bench.machine import describe_run

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.versus", description=__doc__)
    parser.add_argument("--baseline", required=True, help="commit of the earlier service")
    parser.add_argument("--gallery", type=Path, help="image folder (default: Fashion-MNIST train)")
    parser.add_argument("--count", type=int, default=60_000, help="Fashion-MNIST images to write")
    parser.add_argument("--k-features", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10, help="seconds per load level")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    results = describe_run("python -m bench.versus", argv)
    with tempfile.TemporaryDirectory(prefix="versus-") as work:
        work = Path(work)
        baseline = work / "baseline"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline), args.baseline],
            check=True, capture_output=True,
        )  # fmt: skip
        try:
            gallery = gallery_or_demo(args.gallery, work, args.count)
            index = work / "index"
            results["build"] = bench_build(gallery, index, keep=128, workers=2)
            earlier_index = work / "baseline-index"
            run_indexer(gallery, earlier_index, keep=128, workers=2, code=baseline)
            results["versus"] = compare((earlier_index, index), gallery, baseline, args)
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)],
                check=False, capture_output=True,
            )  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "versus.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results["versus"]))
    print(f"saved {args.out / 'versus.json'}")
    return 0


def compare(
    indexes: tuple[Path, Path], gallery: Path, baseline: Path, args: argparse.Namespace
) -> dict:
    """Load both services (`indexes`: the baseline's and this checkout's) in rounds."""
    earlier_index, index = indexes
    images = [str(gallery / item) for item in indexed_ids(index, 256)]
    runs = []
    with (
        running_service(earlier_index, {}, code=baseline) as (earlier, _),
        running_service(index, {}) as (current, _),
    ):
        services = {args.baseline: earlier, "this checkout": current}
        for url in services.values():
            wrk_load(url, images, 4, min(3, args.duration), args.k_features)  # warm-up
        for round_number in range(args.rounds):
            order = list(services.items())
            for version, url in order if round_number % 2 == 0 else order[::-1]:
                for concurrency in (1, 32):
                    result = wrk_load(url, images, concurrency, args.duration, args.k_features)
                    runs.append({"round": round_number, "version": version, **result})
                    print(
                        f"  round {round_number}, {version}, concurrency {concurrency}: "
                        f"{result['qps']} QPS, p50 {result['p50_ms']} ms, "
                        f"p99 {result['p99_ms']} ms",
                        flush=True,
                    )
    summary = {}
    for version in services:
        mine = [run for run in runs if run["version"] == version]
        row = {}
        for concurrency in (1, 32):
            level = [run for run in mine if run["concurrency"] == concurrency]
            row[f"c{concurrency}"] = {
                key: statistics.median(run[key] for run in level)
                for key in ("qps", "p50_ms", "p99_ms")
            } | {"errors": sum(run["errors"] for run in level)}
        row["c32_over_c1_qps"] = round(row["c32"]["qps"] / row["c1"]["qps"], 2)
        summary[version] = row
    earlier, current = summary[args.baseline], summary["this checkout"]
    return {
        "k_features": args.k_features,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "runs": runs,
        "summary": summary,
        "lone_p50_earlier_over_now": round(earlier["c1"]["p50_ms"] / current["c1"]["p50_ms"], 2),
    }


def table(part: dict) -> str:
    lines = [
        f"k = {part['k_features']}, medians of {part['rounds']} alternating rounds",
        "| service | lone p50 (ms) | lone p99 (ms) | lone QPS | 32 clients QPS | p99 (ms) | "
        "QPS 32 / 1 | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for version, row in part["summary"].items():
        lone, many = row["c1"], row["c32"]
        lines.append(
            f"| {version} | {lone['p50_ms']} | {lone['p99_ms']} | {lone['qps']} | {many['qps']} | "
            f"{many['p99_ms']} | {row['c32_over_c1_qps']} | {lone['errors'] + many['errors']} |"
        )
    lines.append(f"lone p50, earlier / now: {part['lone_p50_earlier_over_now']}x")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
