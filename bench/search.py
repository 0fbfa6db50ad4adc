"""Search-only benchmarks: latency per budget, approximate structures, shortlist re-ranking."""

import os
import time
from pathlib import Path

import faiss
import numpy as np

from bench.timing import time_each, time_side_by_side
from evaluation.metrics import precision_at_10
from indexer.index_dir import LoadedIndex
from indexer.manifest import Manifest, ModelRecord, StructureInfo
from indexer.retrieval import (
    build_structure,
    flat_at_budget,
    omp_threads,
    recall_at_10,
    structure_bytes,
)
from models.vectors import unit_rows
from service.engine import SearchEngine, ladder_budgets

BUDGETS = (4, 8, 16, 32, 64)
BATCH = 64


def synthetic_vectors(real: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` vectors shaped like `real`: a random real row plus noise of half each column's
    spread, so the importance profile and the clustering of the gallery carry over."""
    rng = np.random.default_rng(seed)
    spread = real.std(axis=0) * 0.5
    out = np.empty((count, real.shape[1]), dtype=np.float32)
    for start in range(0, count, 100_000):
        stop = min(count, start + 100_000)
        picked = real[rng.integers(0, len(real), stop - start)]
        out[start:stop] = picked + rng.standard_normal(picked.shape, np.float32) * spread
    return out


def in_memory_index(vectors: np.ndarray) -> LoadedIndex:
    """A flat index over `vectors` without a directory or a model, for the engine under test:
    no files, so no content hashes."""
    count, keep = vectors.shape
    manifest = Manifest(
        model=ModelRecord(
            id="none", weights_sha256="", config_sha256="", loss=None, embedding_dim=keep
        ),
        keep=keep,
        count=count,
        importance=(1.0,) * keep,
        index=StructureInfo("flat", keep, exact=True, params={}, recall_at_10=1.0),
    )
    ids = [str(i) for i in range(count)]
    return LoadedIndex(Path("."), manifest, vectors, ids, flat_at_budget(vectors, keep), [])


def bench_budgets(
    vectors: np.ndarray, queries: np.ndarray, bandwidth_gbs: float, repeats: int
) -> dict:
    """Single-query and 64-query latency at each budget, next to the bandwidth floor."""
    count, keep = vectors.shape
    engine = SearchEngine(in_memory_index(vectors), cache_bytes=0, ladder="float")
    budgets = sorted({b for b in BUDGETS if b < keep} | {keep})
    rows = []
    for budget in budgets:
        single = time_each(lambda i, b=budget: engine.search(queries[i], b, 10), repeats)
        batch = time_each(
            lambda i, b=budget: engine.search(queries[i * BATCH : (i + 1) * BATCH], b, 10),
            max(3, repeats // 10),
            warmup=1,
        )
        scanned = count * budget * 4
        floor_ms = scanned / (bandwidth_gbs * 1e9) * 1000
        rows.append(
            {
                "k": budget,
                "bytes_scanned": scanned,
                "floor_ms": round(floor_ms, 3),
                "single": single,
                "single_over_floor": round(single["median_ms"] / floor_ms, 2),
                "batch64": batch,
                "batch64_per_query_ms": round(batch["median_ms"] / BATCH, 3),
            }
        )
    full = rows[-1]
    for row in rows:
        row["full_over_this_single"] = round(
            full["single"]["median_ms"] / row["single"]["median_ms"], 2
        )
        row["full_over_this_batch64"] = round(
            full["batch64"]["median_ms"] / row["batch64"]["median_ms"], 2
        )
    memory = engine.memory()
    return {"count": count, "keep": keep, "budgets": rows, "memory": memory}


def bench_quantized(vectors: np.ndarray, queries: np.ndarray, repeats: int) -> dict:
    """The 4-bit ladder against the float ladder at each budget it covers: single-query latency
    side by side, agreement of the top 10 with exact search on every query, memory, start-up.
    Both scan one query per thread, as the engine does; "float, all cores" is the float scan
    with FAISS's default OpenMP team (a thread per core) for each query, as the service ran
    before."""
    cores = len(os.sched_getaffinity(0))
    index = in_memory_index(vectors)
    started = time.perf_counter()
    exact = SearchEngine(index, cache_bytes=0, ladder="float")
    float_seconds = time.perf_counter() - started
    started = time.perf_counter()
    four_bit = SearchEngine(index, cache_bytes=0, ladder="4bit")
    four_bit_seconds = time.perf_counter() - started
    shortlists = four_bit.quantized()
    rows = []
    for budget in shortlists:
        team = flat_at_budget(vectors, budget)
        unit_queries = unit_rows(queries[:, :budget])

        def all_cores(i: int, team: faiss.Index = team, unit: np.ndarray = unit_queries):
            omp_threads(cores)
            team.search(unit[i % len(unit) : i % len(unit) + 1], 10)

        latency = time_side_by_side(
            {
                "float": lambda i, b=budget: exact.search(queries[i % len(queries)], b, 10),
                "4bit": lambda i, b=budget: four_bit.search(queries[i % len(queries)], b, 10),
                "float, all cores": all_cores,
            },
            repeats,
        )
        del team
        truth, _ = exact.search(queries, budget, 10)
        found, _ = four_bit.search(queries, budget, 10)
        # Identical top 10 (ties aside) when every rank holds the exact score.
        differs = np.any(np.abs(found - truth) > 1e-5, axis=1)
        rows.append(
            {
                "k": budget,
                "shortlist": shortlists[budget],
                "queries": len(queries),
                "identical_top10": round(float(1 - differs.mean()), 4),
                "differing_queries": int(differs.sum()),
                "largest_score_shortfall": round(float(np.max(truth - found, initial=0.0)), 5),
                "float": latency["float"],
                "4bit": latency["4bit"],
                "speedup": round(latency["float"]["median_ms"] / latency["4bit"]["median_ms"], 2),
                "float_all_cores": latency["float, all cores"],
                "speedup_vs_all_cores": round(
                    latency["float, all cores"]["median_ms"] / latency["4bit"]["median_ms"], 2
                ),
            }
        )
    ladder_bytes = {
        name: sum(row["bytes"] for row in engine.memory() if row["structure"].endswith("ladder"))
        for name, engine in (("float", exact), ("4bit", four_bit))
    }
    return {
        "count": len(vectors),
        "keep": vectors.shape[1],
        "ladder": ladder_budgets(vectors.shape[1]),
        "budgets": rows,
        "ladder_bytes": ladder_bytes,
        "ladder_bytes_ratio": round(ladder_bytes["float"] / ladder_bytes["4bit"], 2),
        "startup_s": {"float": round(float_seconds, 1), "4bit": round(four_bit_seconds, 1)},
    }


def bench_structures(
    vectors: np.ndarray, queries: np.ndarray, features: int, target_recall: float, repeats: int
) -> dict:
    """Flat against IVF, HNSW and IVF-PQ at one budget: build time, memory, speed, recall."""
    gallery = unit_rows(vectors[:, :features])
    held_out = unit_rows(queries[:, :features])
    flat = flat_at_budget(vectors, features)
    _, truth = flat.search(held_out, 10)
    rows = []
    for index_type in ("flat", "ivf", "hnsw", "ivfpq"):
        started = time.perf_counter()
        built = build_structure(gallery, index_type, target_recall=target_recall)
        build_seconds = time.perf_counter() - started
        _, found = built.index.search(held_out, 10)
        latency = time_each(
            lambda i, index=built.index: index.search(held_out[i : i + 1], 10), repeats
        )
        rows.append(
            {
                "type": index_type,
                "params": built.params,
                "build_s": round(build_seconds, 1),
                "bytes": structure_bytes(built.index),
                "recall_at_10_build": built.recall_at_10,
                "recall_at_10_held_out": round(recall_at_10(found, truth), 4),
                "single": latency,
            }
        )
    for row in rows:
        row["speedup_vs_flat"] = round(
            rows[0]["single"]["median_ms"] / row["single"]["median_ms"], 1
        )
    return {
        "count": len(vectors),
        "features": features,
        "target_recall": target_recall,
        "types": rows,
    }


def bench_rerank(
    vectors: np.ndarray, ids: list[str], queries: int, repeats: int, seed: int = 0
) -> dict:
    """P@10 (leave-one-out, relevant = same top-level folder) and latency of single budgets and
    of shortlist-then-rerank pairs."""
    labels = np.array([item.split("/", 1)[0] if "/" in item else "" for item in ids])
    keep = vectors.shape[1]
    engine = SearchEngine(in_memory_index(vectors), cache_bytes=1 << 30)
    rng = np.random.default_rng(seed)
    rows_asked = rng.choice(len(vectors), min(queries, len(vectors)), replace=False)
    xq = vectors[rows_asked]
    configs = [
        (b, None, None) for b in sorted({b for b in (4, 8, 16, 32, 64) if b < keep} | {keep})
    ]
    for low, high in ((4, 64), (8, 64), (16, 64), (8, keep)):
        if low < high <= keep:
            configs += [(low, high, 50), (low, high, 200)]
    results = []
    for low, high, shortlist in configs:
        if high is None:
            _, I = engine.search(xq, low, 11)
            run = lambda i, low=low: engine.search(xq[i], low, 10)  # noqa: E731
        else:
            _, I = engine.search_reranked(xq, low, high, shortlist + 1, 11)
            run = lambda i, low=low, high=high, s=shortlist: engine.search_reranked(  # noqa: E731
                xq[i], low, high, s, 10
            )
        precision = _precision_at_10(I, rows_asked, labels) if labels.any() else None
        results.append(
            {
                "k_features": low,
                "rerank_features": high,
                "shortlist": shortlist,
                "p_at_10": None if precision is None else round(precision, 4),
                "single": time_each(run, min(repeats, len(xq))),
            }
        )
    return {
        "count": len(vectors),
        "queries": len(xq),
        "relevance": "same top-level folder",
        "runs": results,
    }


def _precision_at_10(found: np.ndarray, asked: np.ndarray, labels: np.ndarray) -> float:
    """P@10 of gallery rows searched for themselves: each row's own hit left out."""
    others = np.array(
        [
            [n for n in neighbours if n != row and n >= 0][:10]
            for row, neighbours in zip(asked, found, strict=True)
        ]
    )
    return precision_at_10(labels[others], labels[asked])
