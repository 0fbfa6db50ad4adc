"""`python -m bench.batching`: whether embedding concurrent queries together pays, per model.

POST /search through wrk against one real service, with each query embedded alone
(TRICL_EMBED_MAX_BATCH=1) and with concurrent queries embedded together (the default), at each
concurrency, in alternating rounds on the same machine; a fresh service per mode and round.
Medians over rounds, and the batched/alone ratios, go to the terminal and <out>/batching.json.
"""

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from bench.build import bench_build, gallery_or_demo
from bench.http import MODES, indexed_ids, running_service, wrk_load
from bench.machine import describe_run
from bench.report import markdown_table

COMPARED = ("batched", "one at a time")


def bench_batching(
    index: Path,
    gallery: Path,
    *,
    concurrencies: list[int],
    duration: float,
    rounds: int,
    k_features: int,
) -> list[dict]:
    """One wrk run per mode, concurrency and round; modes alternate first from round to round."""
    images = [str(gallery / item) for item in indexed_ids(index, 256)]
    runs = []
    for round_number in range(rounds):
        order = COMPARED if round_number % 2 == 0 else COMPARED[::-1]
        for mode in order:
            with running_service(index, MODES[mode]) as (url, _):
                wrk_load(url, images, 4, min(3.0, duration), k_features)  # warm-up
                for concurrency in concurrencies:
                    run = wrk_load(url, images, concurrency, duration, k_features)
                    runs.append({"mode": mode, "round": round_number} | run)
                    print(f"  {mode}, round {round_number}: {run}", flush=True)
    return runs


def summarise(runs: list[dict]) -> list[dict]:
    """Per concurrency: each mode's median QPS, p50 and p99 over rounds, and batched / alone."""
    rows = []
    for concurrency in sorted({run["concurrency"] for run in runs}):
        row = {"concurrency": concurrency}
        for mode in COMPARED:
            mine = [r for r in runs if r["mode"] == mode and r["concurrency"] == concurrency]
            row[mode] = {
                name: statistics.median(r[name] for r in mine)
                for name in ("qps", "p50_ms", "p99_ms")
            }
        batched, alone = row["batched"], row["one at a time"]
        row["qps_ratio"] = round(batched["qps"] / alone["qps"], 2)
        row["p99_ratio"] = round(batched["p99_ms"] / alone["p99_ms"], 2)
        rows.append(row)
    return rows


def batching_table(rows: list[dict], model: str) -> str:
    header = ["concurrency", "batched QPS", "alone QPS", "QPS ratio", "batched p50 / p99 (ms)"]
    header += ["alone p50 / p99 (ms)", "p99 ratio"]
    table = [
        [
            row["concurrency"], row["batched"]["qps"], row["one at a time"]["qps"],
            row["qps_ratio"], f"{row['batched']['p50_ms']} / {row['batched']['p99_ms']}",
            f"{row['one at a time']['p50_ms']} / {row['one at a time']['p99_ms']}",
            row["p99_ratio"],
        ]
        for row in rows
    ]  # fmt: skip
    return markdown_table(header, table, f"POST /search with {model}, batched against alone")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batching", description=__doc__)
    parser.add_argument("--model", type=Path, help="checkpoint (default: the default model)")
    parser.add_argument("--gallery", type=Path, help="image folder (default: Fashion-MNIST)")
    parser.add_argument("--count", type=int, default=2000, help="Fashion-MNIST images indexed")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--k-features", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    from models.checkpoint import DEFAULT_CHECKPOINT

    model = args.model or DEFAULT_CHECKPOINT
    results = describe_run("python -m bench.batching", argv)
    with tempfile.TemporaryDirectory(prefix="batching-") as work:
        work = Path(work)
        gallery = gallery_or_demo(args.gallery, work, args.count)
        results["build"] = bench_build(gallery, work / "index", 64, 2, model)
        results["model"] = str(model)
        results["runs"] = bench_batching(
            work / "index",
            gallery,
            concurrencies=args.concurrency,
            duration=args.duration,
            rounds=args.rounds,
            k_features=args.k_features,
        )
    results["summary"] = summarise(results["runs"])
    print(batching_table(results["summary"], model.name))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "batching.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"saved {args.out / 'batching.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
