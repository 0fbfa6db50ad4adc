"""POST /search: the neighbours of an uploaded image at the caller's feature budget."""

import time
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from service.deps import SettingsDep, StateDep
from service.images import ImageRejected, decode_upload
from service.security import ApiKey
from service.settings import Settings
from service.state import ServiceState

router = APIRouter(tags=["search"], dependencies=[ApiKey])


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


@router.post("/search", response_model=SearchResponse)
async def search(
    request: Request,
    state: StateDep,
    settings: SettingsDep,
    file: Annotated[UploadFile | None, File(description="the query image")] = None,
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
    keep = state.index.keep
    k_features = check_budget(k_features, top_k, keep, settings)
    if rerank_features is not None:
        _check_rerank(k_features, rerank_features, shortlist, top_k, keep, settings)
    if file is None:
        raise HTTPException(
            422, "missing form field 'file': send the query image as multipart/form-data"
        )
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(413, f"the upload is larger than {settings.max_upload_bytes:,} bytes")
    plan = SearchPlan(k_features, top_k, rerank_features, shortlist)
    started = time.perf_counter()
    try:
        response = await run_in_threadpool(_search, state, settings, data, plan)
    except ImageRejected as error:
        raise HTTPException(error.status_code, str(error)) from None
    seconds = time.perf_counter() - started
    request.app.state.metrics.search_seconds.labels(str(k_features)).observe(seconds)
    return response


@dataclass(frozen=True)
class SearchPlan:
    k_features: int
    top_k: int
    rerank_features: int | None
    shortlist: int


def _search(
    state: ServiceState, settings: Settings, data: bytes, plan: SearchPlan
) -> SearchResponse:
    with state.embedder.arriving() as arrival:
        image = decode_upload(data, max_pixels=settings.max_image_pixels)
        try:
            query = state.embedder.embed_one(image, arrival)
        except (OSError, ValueError) as error:
            raise ImageRejected("the image could not be converted for the model") from error
    engine = state.engine
    if plan.rerank_features is None:
        D, I = engine.search(query, plan.k_features, plan.top_k)
        exact = engine.is_exact(plan.k_features)
    else:
        D, I = engine.search_reranked(
            query, plan.k_features, plan.rerank_features, plan.shortlist, plan.top_k
        )
        exact = False  # a shortlist may miss items the larger budget alone would rank high
    return build_response(state, D[0], I[0], plan, exact)


def check_budget(k_features: int | None, top_k: int, keep: int, settings: Settings) -> int:
    """The budget to search at (keep if not given); 422 with a sentence if out of range."""
    k_features = keep if k_features is None else k_features
    if not 1 <= k_features <= keep:
        raise HTTPException(
            422, f"k_features must be an integer from 1 to {keep}, got {k_features}"
        )
    if not 1 <= top_k <= settings.max_top_k:
        raise HTTPException(
            422, f"top_k must be an integer from 1 to {settings.max_top_k}, got {top_k}"
        )
    return k_features


def build_response(
    state: ServiceState, scores: np.ndarray, rows: np.ndarray, plan: "SearchPlan", exact: bool
) -> SearchResponse:
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


def _check_rerank(
    k_features: int, rerank_features: int, shortlist: int, top_k: int, keep: int, settings: Settings
) -> None:
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
