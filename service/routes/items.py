"""Gallery items: their images and thumbnails, near-duplicate groups and feature extremes.
(Searching by an item is a search route: service.routes.search.)"""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from indexer.duplicates import DEFAULT_FEATURES, DEFAULT_THRESHOLD, check_duplicate_settings
from search.plan import ItemNotFound
from service.api_models import (
    DuplicatesResponse,
    FeatureExamples,
    FeatureValue,
    bounded,
    error_responses,
)
from service.deps import StateDep
from service.security import ApiKey

router = APIRouter(
    tags=["gallery"], dependencies=[ApiKey], responses=error_responses(401, 404, 422, 503)
)
THUMBNAIL_SIZES = (16, 512)
MOST_EXAMPLES = 50  # items at each end of a feature


@router.get("/duplicates", response_model=DuplicatesResponse)
async def duplicates(
    state: StateDep,
    threshold: Annotated[
        float,
        Query(
            description="cosine at the full budget from which images are duplicates, -1..1",
            json_schema_extra=bounded(-1, 1),
        ),
    ] = DEFAULT_THRESHOLD,
    k_features: Annotated[
        int | None,
        Query(
            description=f"budget that finds the candidates, 1..keep; default {DEFAULT_FEATURES}, "
            "or keep if that is less",
            json_schema_extra=bounded(1, "keep"),
        ),
    ] = None,
) -> DuplicatesResponse:
    """Groups of near-duplicate images across the gallery: every member's cosine with its
    group's first item reaches `threshold` at the full budget (candidates found at
    `k_features`). Computed on the first request for a setting, then kept."""
    keep = state.searcher.keep
    k_features = min(DEFAULT_FEATURES, keep) if k_features is None else k_features
    try:
        check_duplicate_settings(threshold, k_features, keep, keep)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    document = await run_in_threadpool(state.duplicates.groups, threshold, k_features)
    return DuplicatesResponse(index_version=state.version, **document)


@router.get("/items/{item_id:path}", response_class=Response)
async def item(
    state: StateDep,
    item_id: str,
    size: Annotated[
        int | None,
        Query(
            description=f"thumbnail side, {THUMBNAIL_SIZES[0]}..{THUMBNAIL_SIZES[1]}",
            json_schema_extra=bounded(*THUMBNAIL_SIZES),
        ),
    ] = None,
) -> Response:
    """The gallery image as stored, or a PNG thumbnail fitting size x size."""
    if size is not None and not THUMBNAIL_SIZES[0] <= size <= THUMBNAIL_SIZES[1]:
        raise HTTPException(
            422, f"size must be an integer from {THUMBNAIL_SIZES[0]} to {THUMBNAIL_SIZES[1]}"
        )
    try:
        if size is None:  # on a cluster, which ids are items is asked of the shards
            return FileResponse(await run_in_threadpool(state.gallery.path, item_id))
        data = await run_in_threadpool(state.gallery.thumbnail, item_id, size)
    except ItemNotFound as error:
        raise HTTPException(404, str(error)) from None
    except OSError:
        raise HTTPException(404, f"gallery item {item_id!r} can no longer be read") from None
    return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


@router.get("/features/{feature}/examples", response_model=FeatureExamples)
def feature_examples(
    state: StateDep,
    feature: Annotated[
        int,
        Path(
            description="ordered feature, 1 = the most important, to keep = the least",
            json_schema_extra=bounded(1, "keep"),
        ),
    ],
    n: Annotated[
        int,
        Query(
            description=f"items at each end, 1..{MOST_EXAMPLES}",
            json_schema_extra=bounded(1, MOST_EXAMPLES),
        ),
    ] = 6,
) -> FeatureExamples:
    """The gallery items with the highest and the lowest values on one feature."""
    keep = state.searcher.keep
    if not 1 <= feature <= keep:
        raise HTTPException(422, f"feature must be an integer from 1 to {keep}, got {feature}")
    if not 1 <= n <= MOST_EXAMPLES:
        raise HTTPException(422, f"n must be an integer from 1 to {MOST_EXAMPLES}, got {n}")
    highest, lowest = state.searcher.feature_extremes(feature - 1, n)

    def values(hits) -> list[FeatureValue]:
        return [FeatureValue(id=item, value=round(value, 6)) for item, value in hits]

    return FeatureExamples(
        feature=feature,
        importance=state.importance[feature - 1],
        highest=values(highest),
        lowest=values(lowest),
    )
