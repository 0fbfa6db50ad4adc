"""Gallery items: their images and thumbnails, searching by an item, and feature extremes."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from service.deps import SettingsDep, StateDep
from service.gallery import ItemNotFound
from service.schemas import (
    FeatureExamples,
    FeatureValue,
    SearchResponse,
    build_response,
    plan_search,
)
from service.security import ApiKey

router = APIRouter(tags=["gallery"], dependencies=[ApiKey])
THUMBNAIL_SIZES = (16, 512)


@router.get("/items/{item_id:path}/similar", response_model=SearchResponse)
def similar(
    state: StateDep,
    settings: SettingsDep,
    item_id: str,
    k_features: Annotated[int | None, Query(description="feature budget, 1..keep")] = None,
    top_k: Annotated[int, Query(description="number of neighbours to return")] = 10,
) -> SearchResponse:
    """Neighbours of a gallery item, from its stored vector: no upload, no embedding."""
    plan = plan_search(state.index.keep, settings, k_features=k_features, top_k=top_k)
    row = _row(state, item_id)
    D, I = state.engine.search(state.index.vectors[row], plan.k_features, plan.top_k)
    return build_response(state, D[0], I[0], plan, state.engine.is_exact(plan.k_features))


@router.get("/items/{item_id:path}", response_class=Response)
async def item(
    state: StateDep,
    item_id: str,
    size: Annotated[
        int | None, Query(description=f"thumbnail side, {THUMBNAIL_SIZES[0]}..{THUMBNAIL_SIZES[1]}")
    ] = None,
) -> Response:
    """The gallery image as stored, or a PNG thumbnail fitting size x size."""
    if size is not None and not THUMBNAIL_SIZES[0] <= size <= THUMBNAIL_SIZES[1]:
        raise HTTPException(
            422, f"size must be an integer from {THUMBNAIL_SIZES[0]} to {THUMBNAIL_SIZES[1]}"
        )
    try:
        if size is None:
            return FileResponse(state.gallery.path(item_id))
        data = await run_in_threadpool(state.gallery.thumbnail, item_id, size)
    except ItemNotFound as error:
        raise HTTPException(404, str(error)) from None
    except OSError:
        raise HTTPException(404, f"gallery item {item_id!r} can no longer be read") from None
    return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


@router.get("/features/{feature}/examples", response_model=FeatureExamples)
def feature_examples(
    state: StateDep,
    feature: Annotated[int, Path(description="ordered feature, 1 = the most important")],
    n: Annotated[int, Query(description="items at each end, 1..50")] = 6,
) -> FeatureExamples:
    """The gallery items with the highest and the lowest values on one feature."""
    keep = state.index.keep
    if not 1 <= feature <= keep:
        raise HTTPException(422, f"feature must be an integer from 1 to {keep}, got {feature}")
    if not 1 <= n <= 50:
        raise HTTPException(422, f"n must be an integer from 1 to 50, got {n}")
    highest, lowest = state.engine.feature_extremes(feature - 1, n)
    column = state.index.vectors[:, feature - 1]
    ids = state.index.ids

    def values(rows) -> list[FeatureValue]:
        return [FeatureValue(id=ids[row], value=round(float(column[row]), 6)) for row in rows]

    return FeatureExamples(
        feature=feature,
        importance=state.index.manifest["importance"][feature - 1],
        highest=values(highest),
        lowest=values(lowest),
    )


def _row(state, item_id: str) -> int:
    try:
        return state.gallery.row(item_id)
    except ItemNotFound as error:
        raise HTTPException(404, str(error)) from None
