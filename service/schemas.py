"""The checked request plan every search route works from, and the response it builds.

Every search route (an upload, a batch, a vector, a gallery item, the fan-out over shards)
checks its parameters through `plan_search` and answers through `build_response`; the
response models themselves live in service.api_models, which clients import too.
"""

import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from fastapi import Depends, HTTPException, Query

from service.api_models import Neighbour, SearchResponse
from service.deps import SettingsDep, StateDep
from service.settings import Settings
from service.state import ServiceState


@dataclass(frozen=True)
class SearchPlan:
    """A search's parameters, checked against the index and the settings."""

    k_features: int
    top_k: int
    rerank_features: int | None = None
    shortlist: int = 0
    min_score: float | None = None
    under: str | None = None


def plan_search(
    keep: int,
    settings: Settings,
    *,
    k_features: int | None,
    top_k: int,
    rerank_features: int | None = None,
    shortlist: int = 0,
    min_score: float | None = None,
    under: str | None = None,
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
    if min_score is not None and not (math.isfinite(min_score) and -1 <= min_score <= 1):
        raise HTTPException(422, f"min_score must be a cosine from -1 to 1, got {min_score}")
    under = folder_prefix(under)
    if rerank_features is None:
        return SearchPlan(k_features, top_k, min_score=min_score, under=under)
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
    return SearchPlan(k_features, top_k, rerank_features, shortlist, min_score, under)


async def search_plan(
    state: StateDep,
    settings: SettingsDep,
    k_features: Annotated[
        int | None, Query(description="feature budget, 1..keep; defaults to keep")
    ] = None,
    top_k: Annotated[int, Query(description="number of neighbours to return")] = 10,
    min_score: Annotated[
        float | None,
        Query(
            description="drop results whose cosine at the budget used is below this (-1..1); "
            "fewer than top_k may come back"
        ),
    ] = None,
    under: Annotated[
        str | None,
        Query(description="only items whose id lies in this folder, e.g. shoes/ (exact)"),
    ] = None,
    rerank_features: Annotated[
        int | None,
        Query(description="re-rank a shortlist found at k_features with this larger budget"),
    ] = None,
    shortlist: Annotated[
        int, Query(description="candidates found at k_features before re-ranking")
    ] = 100,
) -> SearchPlan:
    """The query parameters every search endpoint takes, checked into a plan."""
    return plan_search(
        state.index.keep, settings, k_features=k_features, top_k=top_k,
        rerank_features=rerank_features, shortlist=shortlist, min_score=min_score, under=under,
    )  # fmt: skip


PlanDep = Annotated[SearchPlan, Depends(search_plan)]


def find_neighbours(
    state: ServiceState, plan: SearchPlan, queries: np.ndarray
) -> tuple[np.ndarray, np.ndarray, bool]:
    """The one search path: scores, rows (Q x n) and whether they are exact, for Q queries
    (rows of keep values in importance order); 404 for a folder with nothing in it."""
    engine = state.engine
    rows = None
    if plan.under is not None:
        rows = engine.rows_under(plan.under)
        if len(rows) == 0:
            raise HTTPException(404, f"no gallery item has an id under {plan.under!r}")
    if plan.rerank_features is None:
        D, I = engine.search(queries, plan.k_features, plan.top_k, rows)
        return D, I, rows is not None or engine.is_exact(plan.k_features)
    D, I = engine.search_reranked(
        queries, plan.k_features, plan.rerank_features, plan.shortlist, plan.top_k, rows
    )
    return D, I, False  # a shortlist may miss items the larger budget alone would rank high


def folder_prefix(under: str | None) -> str | None:
    """`shoes`, `shoes/` and `/shoes/` all mean the folder `shoes/`; empty means everything."""
    if under is None or not under.strip("/"):
        return None
    return under.strip("/") + "/"


def build_response(
    state: ServiceState, scores: np.ndarray, rows: np.ndarray, plan: SearchPlan, exact: bool
) -> SearchResponse:
    """Rows and scores of one query -> the response, ranked from 1 (rows -1 left out)."""
    rerank = plan.rerank_features is not None
    return SearchResponse(
        k_features=plan.k_features,
        top_k=plan.top_k,
        rerank_features=plan.rerank_features,
        shortlist=plan.shortlist if rerank else None,
        min_score=plan.min_score,
        under=plan.under,
        exact=exact,
        index_version=state.index.version,
        results=neighbours(state.index.ids, scores, rows, plan.min_score),
    )


def neighbours(
    ids: list[str], scores: np.ndarray, rows: np.ndarray, min_score: float | None
) -> list[Neighbour]:
    """Ranked results of one query; rows of -1 (none found) and scores below the floor dropped."""
    floor = -math.inf if min_score is None else min_score
    kept = [(score, row) for score, row in zip(scores, rows, strict=True) if row >= 0]
    return [
        Neighbour(rank=rank, id=ids[row], score=round(float(score), 6))
        for rank, (score, row) in enumerate(kept, start=1)
        if score >= floor
    ]
