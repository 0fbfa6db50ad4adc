"""`python -m bench.startup`: how long `python -m service` takes to answer /health on a large
index, and how long the index took to write (the 4-bit codes are trained then, not at start).

The index holds `--count` synthetic rows (around 60,000 centres with decaying scales, like
importance-ordered features), written by the indexer's own writer with the small CNN as its
model; the service is started `--starts` times, each timed from launch to the first 200 from
/health. Prints the figures and saves <out>/startup.json.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.http import running_service
from bench.machine import describe_run


def clustered_vectors(count: int, keep: int, seed: int = 0) -> np.ndarray:
    """Rows around 60,000 centres, column j scaled by 0.97^j, noise half the centres' spread."""
    rng = np.random.default_rng(seed)
    scale = (0.97 ** np.arange(keep)).astype(np.float32)
    centres = rng.standard_normal((60_000, keep), np.float32) * scale
    vectors = np.empty((count, keep), np.float32)
    for start in range(0, count, 100_000):
        stop = min(count, start + 100_000)
        noise = rng.standard_normal((stop - start, keep), np.float32)
        vectors[start:stop] = centres[rng.integers(0, len(centres), stop - start)]
        vectors[start:stop] += 0.5 * scale * noise
    return vectors


def bench_startup(work: Path, count: int, keep: int, starts: int) -> dict:
    from bench.memory import write_vector_index  # loads FAISS, which --help should not wait for

    index = work / "index"
    started = time.perf_counter()
    write_vector_index(index, clustered_vectors(count, keep), "auto")
    written = time.perf_counter() - started
    seconds = []
    for _ in range(starts):
        started = time.perf_counter()
        with running_service(index, {"TRICL_WORKERS": "1"}):
            seconds.append(round(time.perf_counter() - started, 1))
    return {
        "count": count,
        "keep": keep,
        "index_written_s": round(written, 1),
        "startup_s": seconds,
        "startup_median_s": statistics.median(seconds),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--keep", type=int, default=128)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    results = describe_run("python -m bench.startup", argv)
    with tempfile.TemporaryDirectory(prefix="startup-") as work:
        results |= bench_startup(Path(work), args.count, args.keep, args.starts)
    print(
        f"N = {results['count']:,} x {results['keep']}: index written in "
        f"{results['index_written_s']} s; service up in {results['startup_s']} s"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "startup.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"saved {args.out / 'startup.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
