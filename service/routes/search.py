"""The search endpoints: by an uploaded image, by several at once, by a vector, by an item.

All four take the query parameters of `SearchParams` (service.api_models), checked into one
plan (`PlanDep`, service.plan), and ask the state's `Searcher`, so a budget, a relevance floor
or a folder means the same everywhere, and the same routes serve one index in this process or
shards on a cluster (service.cluster).
"""

import math
import time

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from search.plan import FolderEmpty, Found, ItemNotFound, SearchPlan
from service import timing
from service.api_models import (
    BatchEntry,
    BatchError,
    BatchSearchResponse,
    Neighbour,
    SearchResponse,
    VectorQuery,
    error_responses,
)
from service.deps import PlanDep, SettingsDep, StateDep
from service.images import ImageRejected, decode_upload
from service.security import ApiKey
from service.settings import Settings
from service.state import ServiceState
from service.timing import StageTimes
from service.upload import UploadDep, UploadsDep, too_large

router = APIRouter(
    tags=["search"], dependencies=[ApiKey], responses=error_responses(400, 401, 404, 413, 422, 503)
)


@router.post("/search", response_model=SearchResponse)
async def search(
    request: Request, state: StateDep, settings: SettingsDep, plan: PlanDep, data: UploadDep
) -> SearchResponse:
    """Cosine search over the first `k_features` importance-ordered dimensions.

    With `rerank_features`, the `shortlist` best items at `k_features` are re-ordered by
    cosine on the first `rerank_features` dimensions (scores are then at that budget).
    Unknown query parameters are ignored. Exact at every budget an index serves without 4-bit
    codes, and inside a folder (`under`) at every budget: the ranking equals brute force over
    vectors.npy; `exact` is false where 4-bit codes or a re-ranked shortlist served it.
    """
    times: StageTimes = request.state.times
    times.route_started = started = time.perf_counter()
    try:
        response = await run_in_threadpool(_search, state, settings, data, plan)
    except ImageRejected as error:
        raise HTTPException(error.status_code, str(error)) from None
    times.route_returned = time.perf_counter()
    seconds = times.route_returned - started
    request.app.state.metrics.search_seconds.labels(str(plan.k_features)).observe(seconds)
    return response


@router.post("/search/batch", response_model=BatchSearchResponse)
async def search_batch(
    state: StateDep, settings: SettingsDep, plan: PlanDep, uploads: UploadsDep
) -> BatchSearchResponse:
    """Several query images in one request (repeated form field `files`), embedded together.

    One answer per file, in order: its results, or the error a single search of it would
    have had (a bad file among good ones does not fail the batch). At most `max_batch_files`
    files and `max_batch_bytes` in all (413 for the body, per file the single upload limit).
    """
    return await run_in_threadpool(_search_batch, state, settings, uploads, plan)


@router.post("/search/vector", response_model=SearchResponse)
async def search_vector(state: StateDep, plan: PlanDep, query: VectorQuery) -> SearchResponse:
    """Search by an embedding computed elsewhere (another replica, a shard's router, a client
    that embeds with the index's model.onnx): no upload, no forward pass. Values after the
    budget used (`k_features`, or `rerank_features` when re-ranking) are ignored."""
    # A re-ranked search reads the vector up to the larger budget.
    budget, name = plan.k_features, "k_features"
    if plan.rerank_features is not None:
        budget, name = plan.rerank_features, "rerank_features"
    if len(query.vector) < budget:
        raise HTTPException(
            422,
            f"vector has {len(query.vector)} values; {name}={budget} needs at least that many",
        )
    if not all(math.isfinite(value) for value in query.vector[:budget]):
        raise HTTPException(422, "vector holds a value that is not a finite number")
    if not any(query.vector[: plan.k_features]):
        raise HTTPException(422, f"vector is zero on its first {plan.k_features} values")
    padded = np.zeros((1, state.searcher.keep), np.float32)
    padded[0, :budget] = query.vector[:budget]
    found = await run_in_threadpool(_find, state, plan, padded)
    return build_response(found.hits[0], plan, found.exact, found.version)


@router.get("/items/{item_id:path}/similar", response_model=SearchResponse)
async def similar(state: StateDep, plan: PlanDep, item_id: str) -> SearchResponse:
    """Neighbours of a gallery item, from its stored vector: no upload, no embedding."""
    found = await run_in_threadpool(_find_similar, state, plan, item_id)
    return build_response(found.hits[0], plan, found.exact, found.version)


def _find_similar(state: ServiceState, plan: SearchPlan, item_id: str) -> Found:
    try:
        vector = state.searcher.vector_of(item_id)
    except ItemNotFound as error:
        raise HTTPException(404, str(error)) from None
    return _find(state, plan, vector[None, :])


def _find(state: ServiceState, plan: SearchPlan, queries: np.ndarray) -> Found:
    try:
        return state.searcher.search(queries, plan)
    except FolderEmpty as error:
        raise HTTPException(404, str(error)) from None


def _search(
    state: ServiceState, settings: Settings, data: bytes, plan: SearchPlan
) -> SearchResponse:
    with timing.stage("decode"):
        image = decode_upload(data, max_pixels=settings.max_image_pixels)
    try:
        query = state.embedder.embed_one(image)
    except (OSError, ValueError) as error:
        raise ImageRejected("the image could not be converted for the model") from error
    with timing.stage("search"):
        found = _find(state, plan, query[None, :])
    with timing.stage("respond"):
        return build_response(found.hits[0], plan, found.exact, found.version)


def _search_batch(
    state: ServiceState,
    settings: Settings,
    uploads: list[tuple[str, bytes | None]],
    plan: SearchPlan,
) -> BatchSearchResponse:
    entries = [BatchEntry(file=name) for name, _ in uploads]
    pixels, searched = [], []
    for entry, (_, data) in zip(entries, uploads, strict=True):
        try:
            if data is None:
                raise ImageRejected(too_large(settings.max_upload_bytes), status_code=413)
            image = decode_upload(data, max_pixels=settings.max_image_pixels)
            try:
                pixels.append(state.embedder.preprocess(image))
            except (OSError, ValueError) as error:
                raise ImageRejected("the image could not be converted for the model") from error
        except ImageRejected as error:
            entry.error = BatchError(status=error.status_code, detail=str(error))
            continue
        searched.append(entry)
    if searched:
        vectors = state.embedder.embed_many(pixels)
    else:  # asked with no queries all the same: for exactness, version and a 404 folder
        vectors = np.zeros((0, state.searcher.keep), np.float32)
    found = _find(state, plan, vectors)
    for entry, hits in zip(searched, found.hits, strict=True):
        entry.results = neighbours(hits)
    return BatchSearchResponse(**_echoed(plan, found.exact, found.version), results=entries)


def build_response(
    hits: list[tuple[str, float]], plan: SearchPlan, exact: bool, version: str
) -> SearchResponse:
    """One query's results (best first) -> the response."""
    rerank = plan.rerank_features is not None
    return SearchResponse(
        **_echoed(plan, exact, version),
        rerank_features=plan.rerank_features,
        shortlist=plan.shortlist if rerank else None,
        results=neighbours(hits),
    )


def _echoed(plan: SearchPlan, exact: bool, version: str) -> dict:
    """What every search answer repeats of its plan, and says of how it was answered."""
    return {
        "k_features": plan.k_features,
        "top_k": plan.top_k,
        "min_score": plan.min_score,
        "under": plan.under,
        "exact": exact,
        "index_version": version,
    }


def neighbours(hits: list[tuple[str, float]]) -> list[Neighbour]:
    """Ranked results of one query, from 1."""
    return [
        Neighbour(rank=rank, id=item, score=round(score, 6))
        for rank, (item, score) in enumerate(hits, start=1)
    ]
