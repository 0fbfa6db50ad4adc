"""Cosine search at any feature budget k over an index directory, with optional re-ranking."""

import bisect
import threading
from collections import OrderedDict

import faiss
import numpy as np

from indexer.index_dir import LoadedIndex
from indexer.quantized import QuantizedBudget, quantized_budget
from indexer.retrieval import (
    FLAT_UP_TO,
    check_budget,
    flat_at_budget,
    one_thread_per_query,
    rescore,
    structure_bytes,
)
from models.vectors import unit_rows

LADDERS = ("auto", "float", "4bit")
QUANTIZED_FROM = 16  # below this a 4-bit shortlist must be so long it is slower than a scan
FOLDERS_CACHED = 256


def ladder_budgets(keep: int) -> list[int]:
    """Budgets held ready from the start: the powers of two up to `keep`, and `keep`."""
    budgets = [2**j for j in range(keep.bit_length()) if 2**j <= keep]
    return sorted(set(budgets) | {keep})


class SearchEngine:
    """Answers "nearest gallery items to q on the first k dimensions" for every 1 <= k <= keep.

    Cosine at budget k needs rows normalised over their first k entries, which differ per k,
    and a scan costs time in proportion to the bytes it reads. So each budget gets its own
    contiguous array of normalised first-k columns (a FAISS flat inner-product index): a scan
    at k = 16 reads a quarter of the bytes of one at k = 64. The ladder of powers of two is
    built at start-up (under twice the memory of the full-budget array); other budgets are built
    on first use and kept in a least-recently-used cache bounded by `cache_bytes`. If the index
    directory holds an approximate structure, its budget is served from it.

    With `ladder="4bit"` the ladder's budgets from 16 up hold 4-bit codes instead (an eighth
    of the bytes, see indexer/quantized.py): a shortlist re-scored exactly, not guaranteed
    exact. `"auto"` does so above FLAT_UP_TO items, where a float scan stops being cheap.
    Every other budget is exact.
    """

    def __init__(self, index: LoadedIndex, *, cache_bytes: int, ladder: str = "auto") -> None:
        if ladder not in LADDERS:
            raise ValueError(f"unknown ladder {ladder!r}; choose one of {LADDERS}")
        self.index = index
        self.keep = index.keep
        self.count = len(index.ids)
        self.cache_bytes = cache_bytes
        info = index.structure_info
        self.approximate_features = None if info.exact else info.features
        # Measured once: serialising an approximate structure to size it costs as much as it holds.
        self._approximate_bytes = 0 if info.exact else structure_bytes(index.structure)
        quantize = ladder == "4bit" or (ladder == "auto" and self.count > FLAT_UP_TO)
        self._ladder: dict[int, faiss.Index | QuantizedBudget] = {}
        for budget in ladder_budgets(self.keep):
            if budget == self.approximate_features:
                continue  # served by the approximate structure
            if quantize and budget >= QUANTIZED_FROM:
                self._ladder[budget] = quantized_budget(index.vectors, budget)
            elif info.exact and budget == info.features:
                self._ladder[budget] = index.structure
            else:
                self._ladder[budget] = flat_at_budget(index.vectors, budget)
        self._cache: OrderedDict[int, faiss.Index] = OrderedDict()
        self._lock = threading.Lock()
        self._ids_sorted: list[int] | None = None  # row numbers in id order, made on first use
        self._folders: OrderedDict[str, np.ndarray] = OrderedDict()

    def is_exact(self, k_features: int) -> bool:
        return k_features != self.approximate_features and not isinstance(
            self._ladder.get(k_features), QuantizedBudget
        )

    def quantized(self) -> dict[int, int]:
        """Shortlist length of each 4-bit budget (empty on a float ladder)."""
        return {
            budget: held.shortlist
            for budget, held in self._ladder.items()
            if isinstance(held, QuantizedBudget)
        }

    def rows_under(self, folder: str) -> np.ndarray:
        """Row numbers, ascending, of the items whose id starts with `folder` (e.g. "shoes/").

        Ids are sorted once (on first use) so that a folder is one bisection away, however
        many folders are asked for; the last FOLDERS_CACHED answers are kept.
        """
        with self._lock:
            if folder in self._folders:
                self._folders.move_to_end(folder)
                return self._folders[folder]
        ids = self.index.ids
        if self._ids_sorted is None:
            self._ids_sorted = sorted(range(self.count), key=ids.__getitem__)
        order = self._ids_sorted
        first = bisect.bisect_left(order, folder, key=ids.__getitem__)
        # Every id starting with `folder` sorts below folder + the highest code point.
        end = bisect.bisect_left(order, folder + "\U0010ffff", lo=first, key=ids.__getitem__)
        rows = np.sort(np.asarray(order[first:end], dtype=np.int64))
        with self._lock:
            self._folders[folder] = rows
            while len(self._folders) > FOLDERS_CACHED:
                self._folders.popitem(last=False)
        return rows

    def search(
        self, xq: np.ndarray, k_features: int, top_k: int, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row numbers of the `top_k` best items for each query row.

        Args:
            xq: Q x keep (or wider) query embeddings in importance order, not normalised.
            k_features: budget, 1 <= k_features <= keep.
            top_k: neighbours per query; at most the gallery size are returned.
            rows: search only these rows (ascending, e.g. from `rows_under`); exact at every
                budget, and the scan reads only their part of the gallery.

        Returns:
            D (Q x n cosine scores, descending) and I (Q x n row numbers, -1 where an
            approximate structure found fewer), n = min(top_k, N).
        """
        check_budget(k_features, self.keep, top_k=top_k)
        one_thread_per_query()
        queries = unit_rows(np.atleast_2d(xq)[:, :k_features])
        if rows is not None:
            return self._search_rows(queries, k_features, top_k, rows)
        held = self._budget_index(k_features)
        if isinstance(held, QuantizedBudget):
            return held.search(self.index.vectors, queries, top_k)
        return held.search(queries, min(top_k, self.count))

    def search_reranked(
        self,
        xq: np.ndarray,
        k_features: int,
        rerank_features: int,
        shortlist: int,
        top_k: int,
        rows: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Shortlist with the first `k_features`, then order it by cosine on `rerank_features`.

        The cheap budget scans the whole gallery (or `rows`); the expensive one only touches
        the shortlist, gathering its rows from the full vectors. Scores are at `rerank_features`.
        """
        check_budget(rerank_features, self.keep, top_k=top_k)
        _, candidates = self.search(xq, k_features, shortlist, rows)
        queries = unit_rows(np.atleast_2d(xq)[:, :rerank_features])
        return rescore(self.index.vectors, queries, candidates, top_k)

    def _search_rows(
        self, queries: np.ndarray, k_features: int, top_k: int, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over a subset: only its rows are read, from the budget's unit rows
        where the ladder holds them as float32, else normalised from vectors.npy."""
        n = min(top_k, len(rows))
        if n == 0:
            empty = (len(queries), 0)
            return np.zeros(empty, np.float32), np.zeros(empty, np.int64)
        held = self._budget_index(k_features)
        if isinstance(held, faiss.IndexFlat):
            stored = faiss.rev_swig_ptr(held.get_xb(), held.ntotal * held.d)
            block = _take(stored.reshape(held.ntotal, held.d), rows)
        else:  # 4-bit codes or an approximate structure: not exact, so not used here
            block = unit_rows(_take(self.index.vectors, rows)[:, :k_features])
        D, found = faiss.knn(queries, block, n, metric=faiss.METRIC_INNER_PRODUCT)
        return D, rows[found]

    def feature_extremes(self, feature: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows with the `n` highest and `n` lowest values on ordered dimension `feature` (0-based),
        each most extreme first."""
        column = self.index.vectors[:, feature]
        n = min(n, self.count)
        highest = np.argpartition(-column, n - 1)[:n]
        lowest = np.argpartition(column, n - 1)[:n]
        return highest[np.argsort(-column[highest])], lowest[np.argsort(column[lowest])]

    def memory(self) -> list[dict]:
        """Bytes held by each search structure, largest budgets last."""
        held = [
            {"structure": "vectors.npy (lazy budgets, re-ranking)", "features": self.keep}
            | {"bytes": int(self.index.vectors.nbytes)}
        ]
        for budget, index in self._ladder.items():
            if isinstance(index, QuantizedBudget):
                kind, size = "4-bit ladder", index.nbytes
            else:
                kind, size = "exact ladder", _bytes(index)
            held.append({"structure": kind, "features": budget, "bytes": size})
        with self._lock:
            cached = list(self._cache.items())
        for budget, index in cached:
            held.append({"structure": "exact, cached", "features": budget, "bytes": _bytes(index)})
        if self.approximate_features is not None:
            held.append(
                {
                    "structure": self.index.structure_info.type,
                    "features": self.approximate_features,
                    "bytes": self._approximate_bytes,
                }
            )
        return held

    def _budget_index(self, k_features: int) -> faiss.Index | QuantizedBudget:
        if k_features == self.approximate_features:
            return self.index.structure
        if k_features in self._ladder:
            return self._ladder[k_features]
        with self._lock:
            cached = self._cache.get(k_features)
            if cached is not None:
                self._cache.move_to_end(k_features)
                return cached
        built = flat_at_budget(self.index.vectors, k_features)
        with self._lock:
            self._cache[k_features] = built
            while self._cache and 4 * self.count * sum(self._cache) > self.cache_bytes:
                self._cache.popitem(last=False)
        return built


def _take(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """array[rows] for ascending rows: a view without a copy when they are one run."""
    if rows[-1] - rows[0] + 1 == len(rows):
        return array[rows[0] : rows[-1] + 1]
    return array[rows]


def _bytes(flat: faiss.Index) -> int:
    return 4 * flat.ntotal * flat.d
