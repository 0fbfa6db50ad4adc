"""The search core: an index directory opened for searching at any feature budget.

`SearchIndex.open(path)` verifies and maps the index; `search(queries, plan)` answers, and
`describe()` and `memory()` say what is served and what it holds. The service, every cluster
shard, `indexer duplicates`, the benchmarks and the evaluations all search through it.
"""

import bisect
import threading
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import Self

import faiss
import numpy as np

from models.vectors import unit_rows
from search.four_bit import FourBitCodes
from search.index_dir import LoadedIndex, load_index
from search.plan import FolderEmpty, Found, Hits, ItemNotFound, SearchPlan
from search.scan import check_budget, flat_at_budget, ladder_budgets, one_thread_per_query, rescore

FOLDERS_CACHED = 256
DEFAULT_CACHE_BYTES = 256 << 20
FOUR_BIT_NOTE = (
    "budgets listed here are 4-bit codes: a shortlist of this length, re-scored exactly, "
    "serves a top 10 (not guaranteed exact); every other budget is float32"
)


class SearchIndex:
    """Answers "nearest gallery items to q on the first k dimensions" for every 1 <= k <= keep.

    Cosine at budget k needs rows normalised over their first k entries, which differ per k,
    and a scan costs time in proportion to the bytes it reads. So each budget of the ladder
    (powers of two up to keep) gets its own contiguous array of normalised first-k columns, a
    FAISS flat inner-product index, made from the mapped vectors on its first search (or by
    `warm_up`) and kept: under twice the memory of the full-budget array, no training. Other
    budgets are made on first use and kept in a least-recently-used cache bounded by
    `cache_bytes`. Where the index directory holds 4-bit codes for a budget (large galleries,
    built by the indexer), that budget is served by them: a shortlist re-scored exactly, not
    guaranteed exact.
    """

    def __init__(self, index: LoadedIndex, *, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.index = index
        self.keep = index.keep
        self.count = len(index.ids)
        self.version = index.version
        self.cache_bytes = cache_bytes
        shortlists = {budget.features: budget.shortlist for budget in index.manifest.four_bit}
        # budget -> its 4-bit codes, or the float flat index made on its first search
        self._ladder: dict[int, faiss.Index | FourBitCodes] = {
            features: FourBitCodes(codes, features, shortlists[features])
            for features, codes in index.codes.items()
        }
        self._ladder_budgets = set(ladder_budgets(self.keep))
        self.rows = {item: row for row, item in enumerate(index.ids)}
        self._cache: OrderedDict[int, faiss.Index] = OrderedDict()
        self._lock = threading.Lock()  # guards the ladder, the cache and the folders
        self._making = threading.Lock()  # one budget made from the vectors at a time
        self._ids_sorted: list[int] | None = None  # row numbers in id order, made on first use
        self._folders: OrderedDict[str, np.ndarray] = OrderedDict()

    @classmethod
    def open(cls, path: Path, *, cache_bytes: int = DEFAULT_CACHE_BYTES) -> Self:
        """The index directory at `path`, verified against its checksums; ValueError naming
        what is wrong."""
        return cls(load_index(Path(path)), cache_bytes=cache_bytes)

    @property
    def ids(self) -> list[str]:
        return self.index.ids

    @property
    def vectors(self) -> np.ndarray:
        """N x keep float32, importance order, not normalised (mapped from vectors.npy)."""
        return self.index.vectors

    @property
    def index_type(self) -> str:
        """What serves the budgets, in words: "flat", or "flat + 4-bit shortlists"."""
        return "flat + 4-bit shortlists" if self.index.codes else "flat"

    def is_exact(self, k_features: int) -> bool:
        """Whether a search at this budget is exact: it is, unless 4-bit codes serve it."""
        return k_features not in self.index.codes

    def search(self, queries: np.ndarray, plan: SearchPlan) -> Found:
        """Each query's hits under `plan` (queries: Q x at least the plan's budgets, importance
        order, not normalised); FolderEmpty when `plan.under` holds no item."""
        rows = None
        if plan.under is not None:
            rows = self.rows_under(plan.under)
            if len(rows) == 0:
                raise FolderEmpty(f"no gallery item has an id under {plan.under!r}")
        # A shortlist may miss items the larger budget alone would rank high.
        exact = plan.rerank_features is None and (
            rows is not None or self.is_exact(plan.k_features)
        )
        if len(queries) == 0:
            return Found([], exact, self.version)
        if plan.rerank_features is None:
            D, I = self.nearest(queries, plan.k_features, plan.top_k, rows)
        else:
            check_budget(plan.rerank_features, self.keep, top_k=plan.top_k)
            if plan.shortlist < plan.top_k:
                raise ValueError(f"shortlist ({plan.shortlist}) must hold top_k ({plan.top_k})")
            _, candidates = self.nearest(queries, plan.k_features, plan.shortlist, rows)
            wide = unit_rows(np.atleast_2d(queries)[:, : plan.rerank_features])
            D, I = rescore(self.vectors, wide, candidates, plan.top_k)
        return Found(self.hits(D, I, plan.min_score), exact, self.version)

    def nearest(
        self, xq: np.ndarray, k_features: int, top_k: int, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row numbers of the `top_k` best items for each query row, FAISS-shaped.

        Args:
            xq: Q x keep (or wider) query embeddings in importance order, not normalised.
            k_features: budget, 1 <= k_features <= keep.
            top_k: neighbours per query; at most the gallery size are returned.
            rows: search only these rows (ascending, e.g. from `rows_under`); exact at every
                budget, and the scan reads only their part of the gallery.

        Returns:
            D (Q x n cosine scores, descending) and I (Q x n row numbers), n = min(top_k, N).
        """
        check_budget(k_features, self.keep, top_k=top_k)
        one_thread_per_query()
        queries = unit_rows(np.atleast_2d(xq)[:, :k_features])
        if rows is not None:
            return self._search_rows(queries, k_features, top_k, rows)
        held = self._budget_index(k_features)
        if isinstance(held, FourBitCodes):
            return held.search(self.vectors, queries, top_k)
        return held.search(queries, min(top_k, self.count))

    def hits(self, D: np.ndarray, I: np.ndarray, floor: float | None = None) -> list[Hits]:
        """FAISS-shaped scores and rows -> each query's (id, score) list; rows of -1 (none
        found) and scores below `floor` left out."""
        lowest = -np.inf if floor is None else floor
        ids = self.ids
        return [
            [
                (ids[row], float(score))
                for score, row in zip(scores, found, strict=True)
                if row >= 0 and score >= lowest
            ]
            for scores, found in zip(D, I, strict=True)
        ]

    def rescore_candidates(
        self, queries: np.ndarray, candidates: list[list[str]], features: int
    ) -> list[Hits]:
        """Exact cosine at `features` of each query's candidates that this index holds (others
        are skipped), best first: the second step of a re-ranking spread over shards."""
        held = [[self.rows[item] for item in items if item in self.rows] for items in candidates]
        width = max([1, *(len(rows) for rows in held)])
        padded = np.full((len(held), width), -1, np.int64)
        for position, rows in enumerate(held):
            padded[position, : len(rows)] = rows
        D, I = rescore(self.vectors, unit_rows(queries[:, :features]), padded, width)
        return self.hits(D, I)

    def holds(self, item_id: str) -> bool:
        return item_id in self.rows

    def vector_of(self, item_id: str) -> np.ndarray:
        """A gallery item's stored vector; ItemNotFound if there is none."""
        if item_id not in self.rows:
            raise ItemNotFound(f"no gallery item with id {item_id!r}")
        return np.asarray(self.vectors[self.rows[item_id]])

    def gallery_vectors(self) -> tuple[np.ndarray, list[str]]:
        """Every item's stored vector (N x keep, in index order) and its id."""
        return self.vectors, self.ids

    def feature_extremes(self, feature: int, n: int) -> tuple[Hits, Hits]:
        """The `n` items with the highest and the `n` with the lowest values on ordered
        dimension `feature` (0-based), each most extreme first, as (id, value)."""
        column = self.vectors[:, feature]
        n = min(n, self.count)
        highest = np.argpartition(-column, n - 1)[:n]
        lowest = np.argpartition(column, n - 1)[:n]
        return tuple(
            [(self.ids[row], float(column[row])) for row in rows]
            for rows in (highest[np.argsort(-column[highest])], lowest[np.argsort(column[lowest])])
        )

    def describe(self) -> dict:
        """What is served: the model, D, keep, count, the ordered importance, the index
        version, the 4-bit budgets and the memory held."""
        manifest = self.index.manifest
        memory = self.memory()
        return {
            "model": asdict(manifest.model),
            "D": manifest.model.embedding_dim,
            "keep": manifest.keep,
            "count": manifest.count,
            "importance": list(manifest.importance),
            "index_version": self.version,
            "index_type": self.index_type,
            "exact": not manifest.four_bit,
            "four_bit": {
                "shortlists": {budget.features: budget.shortlist for budget in manifest.four_bit},
                "note": FOUR_BIT_NOTE,
            },
            "memory": {"total_bytes": sum(held["bytes"] for held in memory), "structures": memory},
            "metric": manifest.metric,
            "created": manifest.created,
            "skipped": len(manifest.skipped),
        }

    def memory(self) -> list[dict]:
        """Bytes held by each search structure, largest budgets last."""
        held = [
            {"structure": "vectors.npy (lazy budgets, re-ranking)", "features": self.keep}
            | {"bytes": int(self.vectors.nbytes)}
        ]
        with self._lock:
            ladder = sorted(self._ladder.items())
        for budget, index in ladder:
            if isinstance(index, FourBitCodes):
                kind, size = "4-bit ladder", index.nbytes
            else:
                kind, size = "exact ladder", _bytes(index)
            held.append({"structure": kind, "features": budget, "bytes": size})
        with self._lock:
            cached = list(self._cache.items())
        for budget, index in cached:
            held.append({"structure": "exact, cached", "features": budget, "bytes": _bytes(index)})
        return held

    def warm_up(self, query: np.ndarray) -> None:
        """One search per ladder budget: its pages are touched before the first user's."""
        for budget in ladder_budgets(self.keep):
            self.nearest(query, budget, 10)

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

    def _search_rows(
        self, queries: np.ndarray, k_features: int, top_k: int, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over a subset: only its rows are read, from the budget's unit rows
        where the ladder holds them as float32, else normalised from vectors.npy."""
        n = min(top_k, len(rows))
        if n == 0:
            empty = (len(queries), 0)
            return np.zeros(empty, np.float32), np.zeros(empty, np.int64)
        held = self._held(k_features)  # a whole budget is not made for a few rows
        if isinstance(held, faiss.IndexFlat):
            stored = faiss.rev_swig_ptr(held.get_xb(), held.ntotal * held.d)
            block = _take(stored.reshape(held.ntotal, held.d), rows)
        else:  # none held, or 4-bit codes (not exact): normalise just these rows
            block = unit_rows(_take(self.vectors, rows)[:, :k_features])
        D, found = faiss.knn(queries, block, n, metric=faiss.METRIC_INNER_PRODUCT)
        return D, rows[found]

    def _budget_index(self, k_features: int) -> faiss.Index | FourBitCodes:
        """What serves budget `k_features`, made from the vectors if nothing holds it yet: one
        such copy of the gallery is made at a time, and never twice for one budget."""
        held = self._held(k_features)
        if held is not None:
            return held
        with self._making:
            held = self._held(k_features)
            if held is not None:
                return held
            made = flat_at_budget(self.vectors, k_features)
            with self._lock:
                if k_features in self._ladder_budgets:
                    self._ladder[k_features] = made
                    return made
                self._cache[k_features] = made
                while self._cache and 4 * self.count * sum(self._cache) > self.cache_bytes:
                    self._cache.popitem(last=False)
            return made

    def _held(self, k_features: int) -> faiss.Index | FourBitCodes | None:
        """What already serves budget `k_features` (the ladder or the cache), if anything."""
        held = self._ladder.get(k_features)  # budgets are only added: no lock on this path
        if held is not None:
            return held
        with self._lock:
            cached = self._cache.get(k_features)
            if cached is not None:
                self._cache.move_to_end(k_features)
            return cached


def _take(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """array[rows] for ascending rows: a view without a copy when they are one run."""
    if rows[-1] - rows[0] + 1 == len(rows):
        return array[rows[0] : rows[-1] + 1]
    return array[rows]


def _bytes(flat: faiss.Index) -> int:
    return 4 * flat.ntotal * flat.d
