"""What the HTTP API takes and returns, as pydantic models: the service declares its routes
with them and `service.client` sends and parses them, so both sides read one definition (and
import only pydantic)."""

from collections.abc import Callable

from pydantic import BaseModel, Field

# The key that names, in a schema, the limit its maximum (an array's maxItems) is once the
# service runs: keep, or a setting such as max_top_k. service.openapi publishes the number.
MAXIMUM_LIMIT = "x-maximum-limit"


def bounded(minimum: float, maximum: float | str | None = None) -> Callable[[dict], None]:
    """Bounds for a number's published schema (`json_schema_extra`), set on its number branch.

    `maximum` is a number, or the name of a limit known only once an index is loaded (`keep`)
    or the settings are read (`max_top_k`, ...). The bounds are published, not checked by
    pydantic: the service checks them where it can answer with a sentence naming the range.
    """

    def extra(schema: dict) -> None:
        for branch in schema.get("anyOf", [schema]):  # `int | None`: the integer branch
            if branch.get("type") in ("integer", "number"):
                branch["minimum"] = minimum
                if isinstance(maximum, str):
                    branch[MAXIMUM_LIMIT] = maximum
                elif maximum is not None:
                    branch["maximum"] = maximum

    return extra


class SearchParams(BaseModel):
    """The query parameters every search route takes (an upload, a batch, a vector, an item).

    The one declaration of them: the routes read them as query parameters, service.plan checks
    them against the index and the settings, and the client and its command send them.
    """

    k_features: int | None = Field(
        None,
        description="feature budget, 1..keep (the index's kept dimensions); defaults to keep",
        json_schema_extra=bounded(1, "keep"),
    )
    top_k: int = Field(
        10,
        description="number of neighbours to return, 1..max_top_k",
        json_schema_extra=bounded(1, "max_top_k"),
    )
    min_score: float | None = Field(
        None,
        description="drop results whose cosine at the budget used is below this (-1..1); "
        "fewer than top_k may come back",
        json_schema_extra=bounded(-1, 1),
    )
    under: str | None = Field(
        None, description="only items whose id lies in this folder, e.g. shoes/ (exact)"
    )
    rerank_features: int | None = Field(
        None,
        description="re-rank a shortlist found at k_features with this larger budget: above "
        "k_features and at most keep",
        json_schema_extra=bounded(2, "keep"),
    )
    shortlist: int = Field(
        100,
        description="candidates found at k_features before re-ranking: from top_k to "
        "max_shortlist (read only with rerank_features)",
        json_schema_extra=bounded(1, "max_shortlist"),
    )


class Neighbour(BaseModel):
    rank: int
    id: str
    score: float = Field(description="cosine similarity at the budget used")


class SearchResponse(BaseModel):
    k_features: int
    top_k: int
    rerank_features: int | None = None
    shortlist: int | None = None
    min_score: float | None = None
    under: str | None = None
    exact: bool
    index_version: str
    results: list[Neighbour]


class ErrorDetail(BaseModel):
    """Every 4xx and 5xx answer: one sentence saying what is wrong."""

    detail: str


class BatchError(BaseModel):
    status: int = Field(description="the status a single search of this file would have had")
    detail: str


class BatchEntry(BaseModel):
    """One uploaded file's answer: its neighbours, or why it could not be searched."""

    file: str = Field(description="the file name the upload gave")
    results: list[Neighbour] | None = None
    error: BatchError | None = None


class BatchSearchResponse(BaseModel):
    k_features: int
    top_k: int
    min_score: float | None = None
    under: str | None = None
    exact: bool
    index_version: str
    results: list[BatchEntry] = Field(description="one entry per uploaded file, in order")


class VectorQuery(BaseModel):
    vector: list[float] = Field(
        description="an embedding in importance order (as vectors.npy holds them), at least "
        "k_features long; only its first k_features values are used"
    )


class DuplicateItem(BaseModel):
    id: str
    score: float = Field(description="cosine with the group's first item at the verify budget")


class DuplicateGroup(BaseModel):
    items: list[DuplicateItem]


class DuplicatesResponse(BaseModel):
    threshold: float
    k_features: int = Field(description="budget that found the candidates")
    verify_features: int = Field(description="budget every pair in a group was confirmed at")
    index_version: str
    groups: list[DuplicateGroup]


class FeatureValue(BaseModel):
    id: str
    value: float


class FeatureExamples(BaseModel):
    feature: int
    importance: float
    highest: list[FeatureValue]
    lowest: list[FeatureValue]


ERRORS = {
    400: "the upload is not an image the service can read",
    401: "the API key is missing or wrong",
    403: "admin actions are disabled",
    404: "no such gallery item or folder",
    409: "the new index did not load; the old one is still served",
    413: "the upload is too large",
    422: "a parameter is out of range or the request is malformed",
    503: "the service is busy or cannot store the upload; retry after Retry-After seconds",
}


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI `responses` for these statuses, each an ErrorDetail: declared on the routes so
    the published schema says what an error really looks like (not FastAPI's error list)."""
    return {status: {"model": ErrorDetail, "description": ERRORS[status]} for status in statuses}
