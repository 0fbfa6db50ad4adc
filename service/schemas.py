"""The checked request plan every search route works from, and the response it builds.

Every search route (an upload, a batch, a vector, a gallery item) checks its parameters
through `search_plan`, searches through the state's `Searcher` (service.searcher) and answers
through `build_response`; the response models live in service.api_models, which clients import.
"""

from typing import Annotated

from fastapi import Depends, Query

from service.api_models import Neighbour, SearchResponse
from service.deps import SettingsDep, StateDep
from service.plan import SearchPlan, plan_search


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
        state.searcher.keep, settings, k_features=k_features, top_k=top_k,
        rerank_features=rerank_features, shortlist=shortlist, min_score=min_score, under=under,
    )  # fmt: skip


PlanDep = Annotated[SearchPlan, Depends(search_plan)]


def build_response(
    hits: list[tuple[str, float]], plan: SearchPlan, exact: bool, version: str
) -> SearchResponse:
    """One query's results (best first) -> the response."""
    rerank = plan.rerank_features is not None
    return SearchResponse(
        k_features=plan.k_features,
        top_k=plan.top_k,
        rerank_features=plan.rerank_features,
        shortlist=plan.shortlist if rerank else None,
        min_score=plan.min_score,
        under=plan.under,
        exact=exact,
        index_version=version,
        results=neighbours(hits),
    )


def neighbours(hits: list[tuple[str, float]]) -> list[Neighbour]:
    """Ranked results of one query, from 1."""
    return [
        Neighbour(rank=rank, id=item, score=round(score, 6))
        for rank, (item, score) in enumerate(hits, start=1)
    ]
