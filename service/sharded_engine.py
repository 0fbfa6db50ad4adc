"""Search over an index kept as shards, answering as the merged index does."""

import threading

import faiss
import numpy as np

from indexer.index_dir import LoadedIndex
from models.vectors import unit_rows


class ShardedSearchEngine:
    """Cosine at any budget k over shards, through one FAISS IndexShards per budget.

    Each shard gets a flat inner-product index over its rows' unit-normalised first k columns;
    IndexShards searches the shards in parallel threads and merges their top results by score,
    numbering rows successively, so row r is row r of the merged index. A fan-out over machines
    that each serve one shard merges their answers the same way. Budgets are built on first use.
    """

    def __init__(self, shards: list[LoadedIndex]) -> None:
        if not shards:
            raise ValueError("no shards to search")
        self.shards = shards
        self.keep = shards[0].keep
        self.count = sum(len(shard.ids) for shard in shards)
        self._budgets: dict[int, tuple[faiss.IndexShards, list[faiss.Index]]] = {}
        self._lock = threading.Lock()

    def search(self, xq: np.ndarray, k_features: int, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and merged-index row numbers of the `top_k` best items per query row, as
        `SearchEngine.search` over the merged index returns them (ties may order differently)."""
        if not 1 <= k_features <= self.keep:
            raise ValueError(f"k_features must be between 1 and {self.keep}, got {k_features}")
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        queries = unit_rows(np.atleast_2d(xq)[:, :k_features])
        return self._budget_index(k_features).search(queries, min(top_k, self.count))

    def _budget_index(self, k_features: int) -> faiss.IndexShards:
        with self._lock:
            if k_features not in self._budgets:
                # threaded, successive ids: shard s's row i is row offset(s) + i of the merge
                sharded = faiss.IndexShards(k_features, True, True)
                parts = []
                for shard in self.shards:
                    flat = faiss.IndexFlatIP(k_features)
                    flat.add(unit_rows(shard.vectors[:, :k_features]))
                    sharded.add_shard(flat)
                    parts.append(flat)  # IndexShards does not own its shards: keep them alive
                self._budgets[k_features] = (sharded, parts)
            return self._budgets[k_features][0]
