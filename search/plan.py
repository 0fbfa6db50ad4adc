"""What a search asks and what it answers, in the search core's terms: every caller (the
service's routes, a cluster's shards, the duplicate finder, benchmarks) speaks these."""

from dataclasses import dataclass

Hits = list[tuple[str, float]]  # (id, cosine), best first


@dataclass(frozen=True)
class SearchPlan:
    """A search's parameters, already checked against the index (service/plan.py checks an
    HTTP request's against the settings too)."""

    k_features: int
    top_k: int
    rerank_features: int | None = None  # order a shortlist at this budget
    shortlist: int = 0  # candidates found at k_features, when re-ranking
    min_score: float | None = None  # leave out results below this cosine
    under: str | None = None  # only ids under this folder ("shoes/")


@dataclass
class Found:
    """Each query's results (the relevance floor applied), whether they are exact, and the
    version of the index (or indexes) that answered."""

    hits: list[Hits]
    exact: bool
    version: str


class FolderEmpty(LookupError):
    """No gallery item lies under the folder asked for; the message is meant for the caller."""


class ItemNotFound(LookupError):
    """The id is not a gallery item (or not a servable one); the message is meant for the
    caller."""
