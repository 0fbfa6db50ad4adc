"""`python -m bench.batch`: images searched per second through POST /search/batch against the
same images sent one request at a time, by one client, on one service, in alternating rounds.

Both ways go through service.client, so the client's own cost is the same on each side; the
difference is the requests saved and the queries embedded and searched together.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.build import bench_build, gallery_or_demo
from bench.http import indexed_ids, running_service
from bench.machine import describe_run
from service.client import Client


def bench_batch(
    index: Path, gallery: Path, *, images: int, batch_size: int, k_features: int, rounds: int
) -> dict:
    uploads = [(gallery / item).read_bytes() for item in indexed_ids(index, images)]
    per_second: dict[str, list[float]] = {"one at a time": [], "batch": []}
    with running_service(index, {}) as (url, _), Client(url) as client:
        client.search(uploads[0], k_features=k_features)  # a connection, warm
        for round_number in range(rounds):
            order = list(per_second) if round_number % 2 == 0 else list(per_second)[::-1]
            for way in order:
                started = time.perf_counter()
                if way == "batch":
                    for start in range(0, len(uploads), batch_size):
                        answer = client.batch(
                            uploads[start : start + batch_size], k_features=k_features
                        )
                        assert all(entry.error is None for entry in answer.results)
                else:
                    for data in uploads:
                        client.search(data, k_features=k_features)
                per_second[way].append(len(uploads) / (time.perf_counter() - started))
            print(
                f"  round {round_number + 1}: "
                + ", ".join(
                    f"{way} {values[-1]:.0f} images/s" for way, values in per_second.items()
                ),
                flush=True,
            )
    medians = {way: statistics.median(values) for way, values in per_second.items()}
    return {
        "images": len(uploads),
        "batch_size": batch_size,
        "k_features": k_features,
        "rounds": rounds,
        "images_per_second": {
            way: [round(v, 1) for v in values] for way, values in per_second.items()
        },
        "median_images_per_second": {way: round(value, 1) for way, value in medians.items()},
        "batch_over_one_at_a_time": round(medians["batch"] / medians["one at a time"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__)
    parser.add_argument("--gallery", type=Path, help="image folder (default: Fashion-MNIST)")
    parser.add_argument("--count", type=int, default=10_000, help="Fashion-MNIST images indexed")
    parser.add_argument("--images", type=int, default=2048, help="queries per round and way")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--k-features", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    results = describe_run("python -m bench.batch", argv)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as work:
        gallery = gallery_or_demo(args.gallery, Path(work), args.count)
        index = Path(work) / "index"
        bench_build(gallery, index, keep=64, workers=2)
        results["batch"] = bench_batch(
            index, gallery, images=args.images, batch_size=args.batch_size,
            k_features=args.k_features, rounds=args.rounds,
        )  # fmt: skip
    print(json.dumps(results["batch"], indent=1))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "batch.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
