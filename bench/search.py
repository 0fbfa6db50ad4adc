"""Search-only benchmarks: latency per budget, the fast budgets against the alternatives,
shortlist re-ranking. Every search goes through the search core (search.core.SearchIndex)."""

import os
import time
from pathlib import Path

import faiss
import numpy as np

from bench.timing import time_each, time_side_by_side
from evaluation.metrics import precision_at_10, recall_of_found
from indexer.duplicates import list_count
from models.vectors import unit_rows
from search.calibration import calibration_rows, cheapest, exact_neighbours, without_self
from search.core import SearchIndex
from search.four_bit import four_bit_budgets, four_bit_codes
from search.index_dir import LoadedIndex
from search.manifest import FourBitBudget, Manifest, ModelRecord
from search.plan import SearchPlan
from search.scan import flat_at_budget, ladder_budgets, omp_threads

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


def in_memory_index(vectors: np.ndarray, four_bit: str = "never") -> SearchIndex:
    """The search core over `vectors` without a directory or a model, with the 4-bit codes
    the indexer would write for `four_bit`: no files, so no content hashes."""
    count, keep = vectors.shape
    budgets = four_bit_budgets(vectors, four_bit)
    manifest = Manifest(
        model=ModelRecord(
            id="none", weights_sha256="", config_sha256="", loss=None, embedding_dim=keep
        ),
        keep=keep,
        count=count,
        importance=(1.0,) * keep,
        four_bit=tuple(FourBitBudget(b.features, b.shortlist) for b in budgets),
    )
    ids = [str(i) for i in range(count)]
    codes = {budget.features: budget.codes for budget in budgets}
    return SearchIndex(LoadedIndex(Path("."), manifest, vectors, ids, [], codes), cache_bytes=0)


def bench_budgets(
    vectors: np.ndarray, queries: np.ndarray, bandwidth_gbs: float, repeats: int
) -> dict:
    """Single-query and 64-query latency at each budget, next to the bandwidth floor."""
    count, keep = vectors.shape
    searcher = in_memory_index(vectors)
    searcher.warm_up(queries[0])  # the ladder, made as the service makes it before serving
    budgets = sorted({b for b in BUDGETS if b < keep} | {keep})
    rows = []
    for budget in budgets:
        single = time_each(lambda i, b=budget: searcher.nearest(queries[i], b, 10), repeats)
        batch = time_each(
            lambda i, b=budget: searcher.nearest(queries[i * BATCH : (i + 1) * BATCH], b, 10),
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
    memory = searcher.memory()
    return {"count": count, "keep": keep, "budgets": rows, "memory": memory}


def bench_quantized(vectors: np.ndarray, queries: np.ndarray, repeats: int) -> dict:
    """The 4-bit codes against the float ladder at each budget they cover: single-query latency
    side by side, agreement of the top 10 with exact search on every query, memory, and the
    time to make each (the float ladder at start-up, the codes at index time). Both scan one
    query per thread, as the search core does; "float, all cores" is the float scan with
    FAISS's default OpenMP team (a thread per core) for each query."""
    cores = len(os.sched_getaffinity(0))
    started = time.perf_counter()
    exact = in_memory_index(vectors)
    exact.warm_up(queries[0])
    float_seconds = time.perf_counter() - started
    started = time.perf_counter()
    four_bit = in_memory_index(vectors, "always")
    four_bit_seconds = time.perf_counter() - started
    four_bit.warm_up(queries[0])
    shortlists = four_bit.describe()["four_bit"]["shortlists"]
    rows = []
    for budget in shortlists:
        team = flat_at_budget(vectors, budget)
        unit_queries = unit_rows(queries[:, :budget])

        def all_cores(i: int, team: faiss.Index = team, unit: np.ndarray = unit_queries):
            omp_threads(cores)
            team.search(unit[i % len(unit) : i % len(unit) + 1], 10)

        latency = time_side_by_side(
            {
                "float": lambda i, b=budget: exact.nearest(queries[i % len(queries)], b, 10),
                "4bit": lambda i, b=budget: four_bit.nearest(queries[i % len(queries)], b, 10),
                "float, all cores": all_cores,
            },
            repeats,
        )
        del team
        truth, _ = exact.nearest(queries, budget, 10)
        found, _ = four_bit.nearest(queries, budget, 10)
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
        name: sum(row["bytes"] for row in searcher.memory() if row["structure"].endswith("ladder"))
        for name, searcher in (("float", exact), ("4bit", four_bit))
    }
    return {
        "count": len(vectors),
        "keep": vectors.shape[1],
        "ladder": ladder_budgets(vectors.shape[1]),
        "budgets": rows,
        "ladder_bytes": ladder_bytes,
        "ladder_bytes_ratio": round(ladder_bytes["float"] / ladder_bytes["4bit"], 2),
        "made_in_s": {"float": round(float_seconds, 1), "4bit": round(four_bit_seconds, 1)},
    }


def bench_fast_budgets(
    vectors: np.ndarray, queries: np.ndarray, features: int, repeats: int
) -> dict:
    """The ways to make budget `features` fast, side by side on held-out queries: the exact
    float scan, the 4-bit codes with their re-scored shortlist (what the indexer builds), and
    an inverted file (IVF-flat, nprobe raised until recall@10 on gallery rows reaches 0.95).
    Time to make, bytes held, single-query latency, recall@10 and identical top 10s."""
    gallery = unit_rows(vectors[:, :features])
    held_out = unit_rows(queries[:, :features])
    truth_scores, truth = flat_at_budget(vectors, features).search(held_out, 10)
    started = time.perf_counter()
    flat = flat_at_budget(vectors, features)
    made = {"float scan": time.perf_counter() - started}
    started = time.perf_counter()
    codes = four_bit_codes(vectors, features)
    made["4-bit shortlist"] = time.perf_counter() - started
    started = time.perf_counter()
    ivf = _tuned_ivf(gallery)
    made["ivf"] = time.perf_counter() - started
    searches = {
        "float scan": lambda q: flat.search(q, 10),
        "4-bit shortlist": lambda q: codes.search(vectors, q, 10),
        "ivf": lambda q: ivf.search(q, 10),
    }
    held = {
        "float scan": 4 * gallery.size,
        "4-bit shortlist": codes.nbytes,
        "ivf": int(faiss.serialize_index(ivf).nbytes),
    }
    latency = time_side_by_side(
        {
            name: lambda i, run=run: run(held_out[i % len(held_out)][None])
            for name, run in searches.items()
        },
        repeats,
    )
    rows = []
    for name, run in searches.items():
        scores, found = run(held_out)
        differs = np.any(np.abs(scores - truth_scores) > 1e-5, axis=1)
        rows.append(
            {
                "way": name,
                "made_in_s": round(made[name], 1),
                "bytes": held[name],
                "single": latency[name],
                "recall_at_10": round(recall_of_found(found, list(truth), 10), 4),
                "identical_top10": round(float(1 - differs.mean()), 4),
                "speedup_vs_float": round(
                    latency["float scan"]["median_ms"] / latency[name]["median_ms"], 2
                ),
            }
        )
    extra = {"shortlist": codes.shortlist, "nprobe": faiss.extract_index_ivf(ivf).nprobe}
    return {"count": len(vectors), "features": features, "ways": rows, **extra}


def _tuned_ivf(gallery: np.ndarray, target: float = 0.95) -> faiss.Index:
    """IVF-flat over unit rows, nprobe the cheapest reaching `target` recall@10 on gallery rows."""
    count, features = gallery.shape
    nlist = list_count(count)
    ivf = faiss.IndexIVFFlat(
        faiss.IndexFlatIP(features), features, nlist, faiss.METRIC_INNER_PRODUCT
    )
    ivf.train(gallery[calibration_rows(count, size=64 * nlist)])
    ivf.add(gallery)
    rows = calibration_rows(count, seed=1)
    truth = exact_neighbours(gallery, rows)[1]

    def meets(nprobe: int) -> bool:
        ivf.nprobe = nprobe
        scores, found = ivf.search(gallery[rows], 11)
        return recall_of_found(without_self(scores, found, rows, 10)[1], list(truth), 10) >= target

    ivf.nprobe = cheapest([p for p in (1, 2, 4, 8, 16, 32, 64, 128, 256) if p <= nlist], meets)
    return ivf


def bench_rerank(
    vectors: np.ndarray, ids: list[str], queries: int, repeats: int, seed: int = 0
) -> dict:
    """P@10 (leave-one-out, relevant = same top-level folder) and latency of single budgets and
    of shortlist-then-rerank pairs."""
    labels = np.array([item.split("/", 1)[0] if "/" in item else "" for item in ids])
    keep = vectors.shape[1]
    searcher = in_memory_index(vectors)
    searcher.cache_bytes = 1 << 30
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
        plan = SearchPlan(low, 11, high, (shortlist or 0) + 1)
        found = searcher.search(xq, plan).hits
        I = np.array([[searcher.rows[item] for item, _ in hits] for hits in found])
        single = SearchPlan(low, 10, high, shortlist or 0)
        run = lambda i, plan=single: searcher.search(xq[i : i + 1], plan)  # noqa: E731
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
