"""Exact cosine search at any feature budget k over an index directory."""

import threading
from collections import OrderedDict

import faiss
import numpy as np

from indexer.index_dir import LoadedIndex
from models.vectors import unit_rows


class SearchEngine:
    """Answers "nearest gallery items to q on the first k dimensions" for every 1 <= k <= keep.

    Cosine at budget k needs rows normalised over their first k entries, which differ per k.
    The full budget comes from the index's FAISS file; any other budget gets a flat
    inner-product index over normalised, contiguous first-k columns, built on first use and
    kept in a least-recently-used cache bounded by `cache_bytes`.
    """

    def __init__(self, index: LoadedIndex, *, cache_bytes: int) -> None:
        self.index = index
        self.keep = index.keep
        self.count = len(index.ids)
        self.cache_bytes = cache_bytes
        self._budgets: OrderedDict[int, faiss.Index] = OrderedDict()
        self._lock = threading.Lock()

    def search(self, xq: np.ndarray, k_features: int, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row numbers of the `top_k` best items for each query row.

        Args:
            xq: Q x keep (or wider) query embeddings in importance order, not normalised.
            k_features: budget, 1 <= k_features <= keep.
            top_k: neighbours per query; at most the gallery size are returned.

        Returns:
            D (Q x n cosine scores, descending) and I (Q x n row numbers), n = min(top_k, N).
        """
        if not 1 <= k_features <= self.keep:
            raise ValueError(f"k_features must be between 1 and {self.keep}, got {k_features}")
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        n = min(top_k, self.count)
        queries = unit_rows(np.atleast_2d(xq)[:, :k_features])
        D, I = self._budget_index(k_features).search(queries, n)
        return D, I

    def _budget_index(self, k_features: int) -> faiss.Index:
        if k_features == self.keep:
            return self.index.full_budget
        with self._lock:
            cached = self._budgets.get(k_features)
            if cached is not None:
                self._budgets.move_to_end(k_features)
                return cached
        built = faiss.IndexFlatIP(k_features)
        built.add(unit_rows(self.index.vectors[:, :k_features]))
        with self._lock:
            self._budgets[k_features] = built
            while self._budgets and self._cached_bytes() > self.cache_bytes:
                self._budgets.popitem(last=False)
        return built

    def _cached_bytes(self) -> int:
        return sum(4 * self.count * budget for budget in self._budgets)
