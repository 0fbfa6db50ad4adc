"""`python -m bench.duplicates`: the duplicate finder's speed.

The funnel (candidates at a short prefix, confirmed at the full budget) against every pair
compared at the full budget, on one index of Fashion-MNIST training images, in alternating
rounds; and how many of the exact pairs the funnel finds. `python -m evaluation.duplicates`
measures its precision and recall.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.build import bench_build, gallery_or_demo
from bench.machine import describe_run

# FAISS and torch are imported by the functions that use them: --help answers at once.
if TYPE_CHECKING:
    from indexer.duplicates import DuplicateGroups


def bench_speed(work: Path, count: int, rounds: int) -> dict:
    from indexer.duplicates import (
        DEFAULT_FEATURES,
        DEFAULT_THRESHOLD,
        all_pairs_duplicates,
        find_duplicates,
    )
    from search.core import SearchIndex

    gallery = gallery_or_demo(None, work, count)
    index_dir = work / "index"
    bench_build(gallery, index_dir, keep=_keep(), workers=2)
    vectors = np.asarray(SearchIndex.open(index_dir).vectors)
    timings: dict[str, list[float]] = {"funnel": [], "all pairs": []}
    for round_number in range(rounds):
        order = ("funnel", "all pairs") if round_number % 2 == 0 else ("all pairs", "funnel")
        for name in order:
            started = time.perf_counter()
            if name == "funnel":
                funnel = find_duplicates(vectors, DEFAULT_THRESHOLD)
            else:
                exact = all_pairs_duplicates(vectors, DEFAULT_THRESHOLD)
            timings[name].append(time.perf_counter() - started)
        print(f"  round {round_number + 1}: { {k: round(v[-1], 2) for k, v in timings.items()} }")
    funnel_pairs = _pairs(funnel)
    exact_pairs = _pairs(exact)
    funnel_s = statistics.median(timings["funnel"])
    exact_s = statistics.median(timings["all pairs"])
    return {
        "items": len(vectors),
        "keep": vectors.shape[1],
        "threshold": DEFAULT_THRESHOLD,
        "k_features": DEFAULT_FEATURES,
        "candidate_threshold": round(funnel.candidate_threshold, 4),
        "cells_probed": funnel.cells_probed,
        "candidate_pairs": funnel.candidate_pairs,
        "exact_pairs": len(exact_pairs),
        "funnel_pairs": len(funnel_pairs),
        "exact_pairs_found": round(len(funnel_pairs & exact_pairs) / max(1, len(exact_pairs)), 4),
        "funnel_seconds": [round(value, 3) for value in timings["funnel"]],
        "all_pairs_seconds": [round(value, 3) for value in timings["all pairs"]],
        "speedup": round(exact_s / funnel_s, 2),
    }


def _keep(model: Path | None = None) -> int:
    """Every dimension of the model: the budget a user's full search runs at."""
    from models.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint

    return load_checkpoint(model or DEFAULT_CHECKPOINT)[0].config.embedding_dim


def _pairs(groups: DuplicateGroups) -> set[tuple[int, int]]:
    return {
        (a, b) for group in groups.groups for (a, _), (b, _) in itertools.combinations(group, 2)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.duplicates", description=__doc__)
    parser.add_argument("--count", type=int, default=60_000, help="training images indexed")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    results = describe_run("python -m bench.duplicates", argv)
    with tempfile.TemporaryDirectory(prefix="bench-duplicates-") as work:
        results["speed"] = bench_speed(Path(work), args.count, args.rounds)
    print(json.dumps(results["speed"], indent=1))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "duplicates-speed.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
