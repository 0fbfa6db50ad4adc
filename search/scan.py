"""Exact cosine search at a feature budget: flat scans of unit rows, and exact re-scoring.

The search core (search/core.py) scans a budget through `flat_at_budget` and re-scores a
shortlist through `rescore` (the 4-bit codes of search/four_bit.py only choose which rows it
reads), and checks every budget asked for with `check_budget`.
"""

import threading

import faiss
import numpy as np

from models.vectors import unit_rows


def ladder_budgets(keep: int) -> list[int]:
    """Budgets held ready from the start: the powers of two up to `keep`, and `keep`."""
    budgets = [2**j for j in range(keep.bit_length()) if 2**j <= keep]
    return sorted(set(budgets) | {keep})


def check_budget(k_features: int, keep: int, *, top_k: int = 1) -> None:
    """Refuse a budget outside 1..keep or a top_k below 1, in words an API caller sees."""
    if not 1 <= k_features <= keep:
        raise ValueError(f"k_features must be between 1 and {keep}, got {k_features}")
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")


def one_thread_per_query() -> None:
    """Let FAISS scan on the calling thread alone, without an OpenMP team.

    Call it on the thread that searches: OpenMP keeps the setting per thread, so setting it
    once at start-up leaves every request thread with a team of one thread per core. A
    service searches one query per request and requests already run side by side; with teams,
    32 concurrent requests on 2 cores ran 64 scanning threads. For one query alone a team of 2
    halved a 60k x 16 scan (0.6 -> 0.3 ms) but made 60k x 128 slower (2.2 -> 3.7 ms, p99 3.1 ->
    7.8), and it needs every core at once, which a busy machine does not give.
    """
    omp_threads(1)


def omp_threads(count: int) -> None:
    """Set the calling thread's OpenMP team for FAISS. Every caller goes through here, which
    remembers each thread's setting: calling FAISS for it on every search cost 3% of a busy
    service's samples."""
    if getattr(_this_thread, "omp_threads", None) != count:
        faiss.omp_set_num_threads(count)
        _this_thread.omp_threads = count


_this_thread = threading.local()


def flat_at_budget(vectors: np.ndarray, budget: int) -> faiss.IndexFlatIP:
    """Exact cosine search at `budget`: inner product over rows normalised on their first
    `budget` columns (vectors: N x keep, importance order, not normalised)."""
    return _flat(unit_rows(vectors[:, :budget]))


def rescore(
    vectors: np.ndarray, unit_queries: np.ndarray, candidates: np.ndarray, top_k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Order each query's candidate rows (-1 = none) by exact cosine on the first
    unit_queries.shape[1] columns of `vectors` (N x keep, not normalised); keep the best top_k.

    Returns D and I shaped like a FAISS search: Q x n, n = min(top_k, candidates per query),
    padded with -inf and -1.
    """
    features = unit_queries.shape[1]
    n = min(top_k, candidates.shape[1])
    D = np.full((len(unit_queries), n), -np.inf, dtype=np.float32)
    I = np.full((len(unit_queries), n), -1, dtype=np.int64)
    for row, (query, rows) in enumerate(zip(unit_queries, candidates, strict=True)):
        rows = np.sort(rows[rows >= 0])  # in file order: fewer pages touched, ties by row
        block = vectors[rows, :features]
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        scores = (block @ query) / np.maximum(norms, np.float32(1e-12))
        best = _best(scores, n)
        D[row, : len(best)], I[row, : len(best)] = scores[best], rows[best]
    return D, I


def _best(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the `n` highest scores, highest first, ties by position."""
    if n < len(scores):
        picked = np.argpartition(-scores, n - 1)[:n]
        return picked[np.lexsort((picked, -scores[picked]))]
    return np.argsort(-scores, kind="stable")


def _flat(unit_vectors: np.ndarray) -> faiss.IndexFlatIP:
    flat = faiss.IndexFlatIP(unit_vectors.shape[1])
    flat.add(unit_vectors)
    return flat
