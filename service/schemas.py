"""What the search endpoints accept and return: the checked request plan and the responses.

Every search route (an upload, a gallery item, the fan-out over shards) answers with
`SearchResponse`, and checks its parameters through `plan_search`.
"""

from dataclasses import dataclass

import numpy as np
from fastapi import HTTPException
from pydantic import BaseModel

from service.settings import Settings
from service.state import ServiceState


class Neighbour(BaseModel):
    rank: int
    id: str
    score: float


class SearchResponse(BaseModel):
    k_features: int
    top_k: int
    rerank_features: int | None = None
    shortlist: int | None = None
    exact: bool
    index_version: str
    results: list[Neighbour]


class ShardedSearchResponse(SearchResponse):
    """A fan-out's answer: the shards' results merged; index_version lists theirs."""

    shards: int


class FeatureValue(BaseModel):
    id: str
    value: float


class FeatureExamples(BaseModel):
    feature: int
    importance: float
    highest: list[FeatureValue]
    lowest: list[FeatureValue]


@dataclass(frozen=True)
class SearchPlan:
    """A search's parameters, checked against the index and the settings."""

    k_features: int
    top_k: int
    rerank_features: int | None = None
    shortlist: int = 0


def plan_search(
    keep: int,
    settings: Settings,
    *,
    k_features: int | None,
    top_k: int,
    rerank_features: int | None = None,
    shortlist: int = 0,
) -> SearchPlan:
    """The plan to search by (budget `keep` if none given); 422 with a sentence if out of range."""
    k_features = keep if k_features is None else k_features
    if not 1 <= k_features <= keep:
        raise HTTPException(
            422, f"k_features must be an integer from 1 to {keep}, got {k_features}"
        )
    if not 1 <= top_k <= settings.max_top_k:
        raise HTTPException(
            422, f"top_k must be an integer from 1 to {settings.max_top_k}, got {top_k}"
        )
    if rerank_features is None:
        return SearchPlan(k_features, top_k)
    if not k_features < rerank_features <= keep:
        raise HTTPException(
            422,
            f"rerank_features must be an integer above k_features ({k_features}) and at most "
            f"{keep}, got {rerank_features}",
        )
    if not top_k <= shortlist <= settings.max_shortlist:
        raise HTTPException(
            422,
            f"shortlist must be an integer from top_k ({top_k}) to {settings.max_shortlist}, "
            f"got {shortlist}",
        )
    return SearchPlan(k_features, top_k, rerank_features, shortlist)


def build_response(
    state: ServiceState, scores: np.ndarray, rows: np.ndarray, plan: SearchPlan, exact: bool
) -> SearchResponse:
    """Rows and scores of one query -> the response, ranked from 1 (rows -1 left out)."""
    ids = state.index.ids
    results = [
        Neighbour(rank=rank, id=ids[row], score=round(float(score), 6))
        for rank, (score, row) in enumerate(zip(scores, rows, strict=True), start=1)
        if row >= 0
    ]
    return SearchResponse(
        k_features=plan.k_features,
        top_k=plan.top_k,
        rerank_features=plan.rerank_features,
        shortlist=plan.shortlist if plan.rerank_features is not None else None,
        exact=exact,
        index_version=state.index.version,
        results=results,
    )
