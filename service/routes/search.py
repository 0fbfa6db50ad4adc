"""POST /search: the neighbours of an uploaded image at the caller's feature budget."""

from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from service.deps import SettingsDep, StateDep
from service.images import ImageRejected, decode_upload
from service.settings import Settings
from service.state import ServiceState

router = APIRouter(tags=["search"])


class Neighbour(BaseModel):
    rank: int
    id: str
    score: float


class SearchResponse(BaseModel):
    k_features: int
    top_k: int
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
) -> SearchResponse:
    """Cosine search over the first `k_features` importance-ordered dimensions.

    Unknown query parameters are ignored. Exact: the ranking equals brute force over
    vectors.npy at that budget.
    """
    keep = state.index.keep
    k_features = keep if k_features is None else k_features
    if not 1 <= k_features <= keep:
        raise HTTPException(
            422, f"k_features must be an integer from 1 to {keep}, got {k_features}"
        )
    if not 1 <= top_k <= settings.max_top_k:
        raise HTTPException(
            422, f"top_k must be an integer from 1 to {settings.max_top_k}, got {top_k}"
        )
    _refuse_oversized_body(request, settings)
    if file is None:
        raise HTTPException(
            422, "missing form field 'file': send the query image as multipart/form-data"
        )
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(413, f"the upload is larger than {settings.max_upload_bytes:,} bytes")
    try:
        return await run_in_threadpool(_search, state, settings, data, k_features, top_k)
    except ImageRejected as error:
        raise HTTPException(error.status_code, str(error)) from None


def _search(
    state: ServiceState, settings: Settings, data: bytes, k_features: int, top_k: int
) -> SearchResponse:
    image = decode_upload(data, max_pixels=settings.max_image_pixels)
    try:
        query = state.embedder.embed([image])
    except (OSError, ValueError) as error:
        raise ImageRejected("the image could not be converted for the model") from error
    D, I = state.engine.search(query, k_features, top_k)
    ids = state.index.ids
    results = [
        Neighbour(rank=rank, id=ids[row], score=round(float(score), 6))
        for rank, (score, row) in enumerate(zip(D[0], I[0], strict=True), start=1)
        if row >= 0
    ]
    return SearchResponse(k_features=k_features, top_k=top_k, results=results)


def _refuse_oversized_body(request: Request, settings: Settings) -> None:
    declared = request.headers.get("content-length", "")
    # Multipart framing adds a few hundred bytes around the file itself.
    if declared.isdigit() and int(declared) > settings.max_upload_bytes + 64 * 1024:
        raise HTTPException(413, f"the upload is larger than {settings.max_upload_bytes:,} bytes")
