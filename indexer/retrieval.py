"""Search structures at a feature budget: exact flat, or approximate IVF, HNSW or IVF-PQ.

Every search in the project, in the service, the indexer and the benchmarks, goes through
`flat_at_budget` or `build_structure` here, and checks its budget with `check_budget`.
Approximate types are tuned at build time: the search-time knob (nprobe or efSearch) is raised
until recall@10 against exact search reaches the target, and the recall is recorded so the
manifest, /info and the benchmark all report the same number.
"""

import math
import threading
from dataclasses import dataclass, field

import faiss
import numpy as np

from indexer.calibration import calibration_rows, cheapest, exact_neighbours, without_self
from models.vectors import unit_rows

INDEX_TYPES = ("flat", "ivf", "hnsw", "ivfpq", "auto")
FLAT_UP_TO = 100_000  # below this an exact scan of a small budget takes about a millisecond
HNSW_NEIGHBOURS = 32
HNSW_BUILD_DEPTH = 80


@dataclass
class BuiltStructure:
    """A FAISS index over unit rows of one budget, with what it took and what it achieves."""

    index: faiss.Index
    type: str
    features: int
    params: dict = field(default_factory=dict)
    recall_at_10: float = 1.0

    @property
    def exact(self) -> bool:
        return self.type == "flat"


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


def choose_index_type(count: int, features: int, memory_budget_bytes: int) -> str:
    """The `auto` rule: exact while a scan is cheap, IVF while full vectors fit, else IVF-PQ.

    Like autofaiss, it trades exactness for speed only when the gallery is large, and
    compression for accuracy only when the uncompressed vectors would not fit the budget.
    """
    if count <= FLAT_UP_TO:
        return "flat"
    if count * features * 4 <= memory_budget_bytes:
        return "ivf"
    return "ivfpq"


def build_structure(
    unit_vectors: np.ndarray,
    index_type: str,
    *,
    target_recall: float = 0.95,
    memory_budget_bytes: int = 4 << 30,
    seed: int = 0,
) -> BuiltStructure:
    """Index `unit_vectors` (N x k, rows of unit norm) for inner-product search."""
    count, features = unit_vectors.shape
    if index_type == "auto":
        index_type = choose_index_type(count, features, memory_budget_bytes)
    if index_type not in INDEX_TYPES:
        raise ValueError(f"unknown index type {index_type!r}; choose one of {INDEX_TYPES}")
    if index_type == "flat":
        return BuiltStructure(_flat(unit_vectors), "flat", features)
    index, params = filled_structure(unit_vectors, index_type, seed=seed)
    if index_type == "hnsw":
        knob, values = "efSearch", [16, 32, 64, 128, 256, 512, 1024]
    else:
        knob = "nprobe"
        values = [p for p in (1, 2, 4, 8, 16, 32, 64, 128, 256) if p <= params["nlist"]]
    queries = calibration_rows(count, seed=seed + 1)
    truth = exact_neighbours(unit_vectors, queries)[1]
    recalls = {}

    def meets(value: int) -> bool:
        _set_knob(index, knob, value)
        scores, found = index.search(unit_vectors[queries], 11)
        recalls[value] = recall_at_10(without_self(scores, found, queries, 10)[1], truth)
        return recalls[value] >= target_recall

    value = cheapest(values, meets)
    _set_knob(index, knob, value)
    params = {**params, knob: value}
    return BuiltStructure(index, index_type, features, params, round(recalls[value], 4))


def filled_structure(
    unit_vectors: np.ndarray, index_type: str, *, seed: int = 0
) -> tuple[faiss.Index, dict]:
    """An approximate structure ("ivf", "hnsw", "ivfpq") trained on and holding the rows, with
    its build parameters; its search-time knob is left at FAISS's default."""
    count, features = unit_vectors.shape
    if index_type == "hnsw":
        index = faiss.IndexHNSWFlat(features, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_BUILD_DEPTH
        index.add(unit_vectors)
        return index, {"M": HNSW_NEIGHBOURS, "efConstruction": HNSW_BUILD_DEPTH}
    nlist = list_count(count)
    quantizer = faiss.IndexFlatIP(features)
    if index_type == "ivf":
        index = faiss.IndexIVFFlat(quantizer, features, nlist, faiss.METRIC_INNER_PRODUCT)
        params = {"nlist": nlist}
    elif index_type == "ivfpq":
        subquantizers = _subquantizers(features)
        # 8-bit codes need 39 x 256 training points; small galleries get shorter codes.
        nbits = min(8, max(1, int(math.log2(max(2, count // 39)))))
        index = faiss.IndexIVFPQ(
            quantizer, features, nlist, subquantizers, nbits, faiss.METRIC_INNER_PRODUCT
        )
        params = {"nlist": nlist, "m": subquantizers, "nbits": nbits}
    else:
        raise ValueError(f"{index_type!r} is not an approximate structure")
    rng = np.random.default_rng(seed)
    sample = min(count, 64 * nlist)
    index.train(unit_vectors[np.sort(rng.choice(count, sample, replace=False))])
    index.add(unit_vectors)
    return index, params


def apply_search_params(index: faiss.Index, params: dict) -> None:
    """Restore the tuned search-time knob after reading an index from disk."""
    if "efSearch" in params:
        _set_knob(index, "efSearch", params["efSearch"])
    if "nprobe" in params:
        _set_knob(index, "nprobe", params["nprobe"])


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of `truth` (Q x 10 ids) that appears in the same row of `found`."""
    hits = [
        len(set(f[:10].tolist()) & set(t[:10].tolist())) for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits)) / 10


def structure_bytes(index: faiss.Index) -> int:
    """Memory the structure holds, as the size of its serialised form."""
    return int(faiss.serialize_index(index).nbytes)


def _set_knob(index: faiss.Index, knob: str, value: int) -> None:
    if knob == "efSearch":
        faiss.downcast_index(index).hnsw.efSearch = value
    else:
        faiss.extract_index_ivf(index).nprobe = value


def list_count(count: int) -> int:
    """About 4 sqrt(N) inverted lists, a power of two, with at least 39 training points each."""
    wanted = 2 ** round(math.log2(max(1.0, 4 * math.sqrt(count))))
    most = 2 ** int(math.log2(max(1, count // 39)))
    return max(1, min(wanted, most))


def _subquantizers(features: int) -> int:
    """Two dimensions per PQ code byte where the budget divides evenly, else one."""
    return features // 2 if features % 2 == 0 and features >= 2 else features
