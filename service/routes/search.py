"""POST /search: the neighbours of an uploaded image at the caller's feature budget."""

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from service.deps import SettingsDep, StateDep
from service.images import ImageRejected, decode_upload
from service.schemas import SearchPlan, SearchResponse, build_response, plan_search
from service.security import ApiKey
from service.settings import Settings
from service.state import ServiceState
from service.timing import StageTimes
from service.upload import UploadDep

router = APIRouter(tags=["search"], dependencies=[ApiKey])


@router.post("/search", response_model=SearchResponse)
async def search(
    request: Request,
    state: StateDep,
    settings: SettingsDep,
    data: UploadDep,
    k_features: Annotated[
        int | None, Query(description="feature budget, 1..keep; defaults to keep")
    ] = None,
    top_k: Annotated[int, Query(description="number of neighbours to return")] = 10,
    rerank_features: Annotated[
        int | None,
        Query(description="re-rank a shortlist found at k_features with this larger budget"),
    ] = None,
    shortlist: Annotated[
        int, Query(description="candidates found at k_features before re-ranking")
    ] = 100,
) -> SearchResponse:
    """Cosine search over the first `k_features` importance-ordered dimensions.

    With `rerank_features`, the `shortlist` best items at `k_features` are re-ordered by
    cosine on the first `rerank_features` dimensions (scores are then at that budget).
    Unknown query parameters are ignored. Exact at every budget of a flat index: the ranking
    equals brute force over vectors.npy; `exact` is false where an approximate structure
    served the budget.
    """
    plan = plan_search(
        state.index.keep, settings, k_features=k_features, top_k=top_k,
        rerank_features=rerank_features, shortlist=shortlist,
    )  # fmt: skip
    times: StageTimes = request.state.times
    times.route_started = started = time.perf_counter()
    try:
        response = await run_in_threadpool(_search, state, settings, data, plan, times)
    except ImageRejected as error:
        raise HTTPException(error.status_code, str(error)) from None
    times.route_returned = time.perf_counter()
    seconds = times.route_returned - started
    request.app.state.metrics.search_seconds.labels(str(plan.k_features)).observe(seconds)
    return response


def _search(
    state: ServiceState, settings: Settings, data: bytes, plan: SearchPlan, times: StageTimes
) -> SearchResponse:
    with state.embedder.arriving() as arrival:
        with times.stage("decode"):
            image = decode_upload(data, max_pixels=settings.max_image_pixels)
        try:
            query = state.embedder.embed_one(image, arrival, times)
        except (OSError, ValueError) as error:
            raise ImageRejected("the image could not be converted for the model") from error
    engine = state.engine
    with times.stage("search"):
        if plan.rerank_features is None:
            D, I = engine.search(query, plan.k_features, plan.top_k)
            exact = engine.is_exact(plan.k_features)
        else:
            D, I = engine.search_reranked(
                query, plan.k_features, plan.rerank_features, plan.shortlist, plan.top_k
            )
            exact = False  # a shortlist may miss items the larger budget alone would rank high
    with times.stage("respond"):
        return build_response(state, D[0], I[0], plan, exact)
