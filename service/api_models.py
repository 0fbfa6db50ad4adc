"""What the HTTP API returns, as pydantic models: the service answers with them and
`service.client` parses them, so both sides read one definition (and import only pydantic)."""

from pydantic import BaseModel, Field


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
