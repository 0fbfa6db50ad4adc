"""Who answers a search plan: the index held by this process, or shards elsewhere.

The routes speak only to a `Searcher`: query vectors and a checked plan in, each query's
(id, score) list out, best first, and what is served, its memory and health. The search core
(search.core.SearchIndex) is the one in this process; `service.cluster` answers the same calls
from shard deployments on Ray Serve, so both serve one HTTP API from the same routes.
"""

from typing import Protocol

import numpy as np

from search.core import SearchIndex
from search.plan import Found, Hits, SearchPlan


class Searcher(Protocol):
    keep: int

    def search(self, queries: np.ndarray, plan: SearchPlan) -> Found:
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


class LocalSearcher(SearchIndex):
    """The search core over the index in this process, as the routes' `Searcher`."""

    def health(self) -> tuple[bool, dict]:
        """Up once opened: nothing else answers for it."""
        return True, {"status": "ok"}

    def reload_refusal(self) -> str | None:
        """An index in this process can always be opened again in its place."""
        return None


def merge_hits(answers: list[list[Hits]], top_k: int, floor: float | None = None) -> list[Hits]:
    """Several shards' hits for the same queries -> each query's best top_k by score (those
    at or above `floor`). Each shard ranks its own rows, so the merged top_k is the whole
    gallery's (exactly so where every shard's answer is exact)."""
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
