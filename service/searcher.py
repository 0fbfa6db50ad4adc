"""Who answers a search plan: the index held by this process, or shards elsewhere.

The search routes speak only to a `Searcher`: query vectors and a checked plan in, each
query's (id, score) list out, best first. `LocalSearcher` answers from the index and engine in
this process; `service.cluster` answers the same calls from shard deployments on Ray Serve, so
both serve one HTTP API from the same routes.
"""

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from indexer.index_dir import LoadedIndex
from indexer.retrieval import rescore
from models.vectors import unit_rows
from service.engine import SearchEngine
from service.gallery import GalleryFiles
from service.plan import SearchPlan

Hits = list[tuple[str, float]]


class FolderEmpty(LookupError):
    """No gallery item lies under the folder asked for; the message is meant for the caller."""


@dataclass
class Found:
    """Each query's results (the relevance floor applied), whether they are exact, and the
    version of the index (or indexes) that answered."""

    hits: list[Hits]
    exact: bool
    version: str


class Searcher(Protocol):
    keep: int

    def find(self, queries: np.ndarray, plan: SearchPlan) -> Found:
        """Results for Q queries (rows of at least the plan's budget, in importance order)."""
        ...

    def vector_of(self, item_id: str) -> np.ndarray:
        """A gallery item's stored vector; ItemNotFound if there is none."""
        ...

    def holds(self, item_id: str) -> bool:
        """Whether the id is a gallery item."""
        ...

    def feature_extremes(self, feature: int, n: int) -> tuple[Hits, Hits]:
        """The `n` items with the highest and the `n` with the lowest values on ordered
        dimension `feature` (0-based), each most extreme first, as (id, value)."""
        ...

    def gallery_vectors(self) -> tuple[np.ndarray, list[str]]:
        """Every item's stored vector (N x keep, in index order) and its id."""
        ...

    def describe(self) -> dict:
        """What is served: the model, D, keep, count, the ordered importance, the index
        version, and how the index is held (structures, shards)."""
        ...

    def memory(self) -> list[dict]:
        """Each search structure held in this process and its bytes."""
        ...

    def health(self) -> tuple[bool, dict]:
        """Whether every part that answers searches is up, and what was checked."""
        ...

    def reload_refusal(self) -> str | None:
        """Why this searcher cannot load its index again in place; None when it can."""
        ...


class LocalSearcher:
    """The index in this process, through its search engine."""

    def __init__(self, index: LoadedIndex, engine: SearchEngine, gallery: GalleryFiles) -> None:
        self.index = index
        self.engine = engine
        self.gallery = gallery
        self.keep = index.keep

    def find(self, queries: np.ndarray, plan: SearchPlan) -> Found:
        engine = self.engine
        rows = None
        if plan.under is not None:
            rows = engine.rows_under(plan.under)
            if len(rows) == 0:
                raise FolderEmpty(f"no gallery item has an id under {plan.under!r}")
        # A shortlist may miss items the larger budget alone would rank high.
        exact = plan.rerank_features is None and (
            rows is not None or engine.is_exact(plan.k_features)
        )
        if len(queries) == 0:
            return Found([], exact, self.index.version)
        if plan.rerank_features is None:
            D, I = engine.search(queries, plan.k_features, plan.top_k, rows)
        else:
            D, I = engine.search_reranked(
                queries, plan.k_features, plan.rerank_features, plan.shortlist, plan.top_k, rows
            )
        return Found(self._hits(D, I, plan.min_score), exact, self.index.version)

    def vector_of(self, item_id: str) -> np.ndarray:
        return np.asarray(self.index.vectors[self.gallery.row(item_id)])

    def holds(self, item_id: str) -> bool:
        return self.gallery.holds(item_id)

    def feature_extremes(self, feature: int, n: int) -> tuple[Hits, Hits]:
        column = self.index.vectors[:, feature]
        ids = self.index.ids
        return tuple(
            [(ids[row], float(column[row])) for row in rows]
            for rows in self.engine.feature_extremes(feature, n)
        )

    def gallery_vectors(self) -> tuple[np.ndarray, list[str]]:
        return self.index.vectors, self.index.ids

    def describe(self) -> dict:
        manifest = self.index.manifest
        structure = self.index.structure_info
        memory = self.memory()
        return {
            "model": asdict(manifest.model),
            "D": manifest.model.embedding_dim,
            "keep": manifest.keep,
            "count": manifest.count,
            "importance": list(manifest.importance),
            "index_version": self.index.version,
            "index_type": structure.type,
            "exact": structure.exact,
            "index": asdict(structure),
            "ladder": {
                "quantized": self.engine.quantized(),
                "note": "budgets listed here are 4-bit codes: a shortlist of this length, "
                "re-scored exactly, serves a top 10 (not guaranteed exact); every other budget "
                "is float32",
            },
            "memory": {"total_bytes": sum(held["bytes"] for held in memory), "structures": memory},
            "metric": manifest.metric,
            "created": manifest.created,
            "skipped": len(manifest.skipped),
        }

    def memory(self) -> list[dict]:
        return self.engine.memory()

    def health(self) -> tuple[bool, dict]:
        return True, {"status": "ok"}  # the app accepts no request before the index is loaded

    def reload_refusal(self) -> str | None:
        return None

    def rescore(
        self, queries: np.ndarray, candidates: list[list[str]], features: int
    ) -> list[Hits]:
        """Exact cosine at `features` of each query's candidates that this index holds (others
        are skipped), best first: the second step of a re-ranking spread over shards."""
        rows_of = self.gallery.rows
        held = [[rows_of[item] for item in items if item in rows_of] for items in candidates]
        width = max([1, *(len(rows) for rows in held)])
        padded = np.full((len(held), width), -1, np.int64)
        for position, rows in enumerate(held):
            padded[position, : len(rows)] = rows
        D, I = rescore(self.index.vectors, unit_rows(queries[:, :features]), padded, width)
        return self._hits(D, I)

    def _hits(self, D: np.ndarray, I: np.ndarray, floor: float | None = None) -> list[Hits]:
        """FAISS-shaped scores and rows -> each query's (id, score) list; rows of -1 (none
        found) and scores below `floor` left out."""
        lowest = -np.inf if floor is None else floor
        ids = self.index.ids
        return [
            [
                (ids[row], float(score))
                for score, row in zip(scores, found, strict=True)
                if row >= 0 and score >= lowest
            ]
            for scores, found in zip(D, I, strict=True)
        ]


def merge_hits(answers: list[list[Hits]], top_k: int, floor: float | None = None) -> list[Hits]:
    """Several shards' hits for the same queries -> each query's best top_k by score (those
    at or above `floor`). Each shard ranks its own rows exactly, so the merged top_k is the
    whole gallery's."""
    lowest = -np.inf if floor is None else floor
    merged = []
    for position in range(len(answers[0])):
        pooled = [hit for answer in answers for hit in answer[position] if hit[1] >= lowest]
        pooled.sort(key=lambda hit: -hit[1])
        merged.append(pooled[:top_k])
    return merged


def merge_extremes(answers: list[tuple[Hits, Hits]], n: int) -> tuple[Hits, Hits]:
    """Several shards' feature extremes -> the whole gallery's `n` highest and `n` lowest."""
    highest = sorted((hit for answer in answers for hit in answer[0]), key=lambda hit: -hit[1])
    lowest = sorted((hit for answer in answers for hit in answer[1]), key=lambda hit: hit[1])
    return highest[:n], lowest[:n]


def merge_found(answers: list[Found], top_k: int) -> Found:
    """Several shards' answers to the same queries -> one (see merge_hits)."""
    return Found(
        merge_hits([answer.hits for answer in answers], top_k),
        all(answer.exact for answer in answers),
        ",".join(answer.version for answer in answers),
    )
