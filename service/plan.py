"""A search's parameters, checked against the index and the settings: the plan every
search route and every searcher (in this process or on a shard) works from."""

import math
from dataclasses import dataclass

from fastapi import HTTPException

from service.settings import Settings


@dataclass(frozen=True)
class SearchPlan:
    """A search's parameters, checked against the index and the settings."""

    k_features: int
    top_k: int
    rerank_features: int | None = None
    shortlist: int = 0
    min_score: float | None = None
    under: str | None = None


def plan_search(
    keep: int,
    settings: Settings,
    *,
    k_features: int | None,
    top_k: int,
    rerank_features: int | None = None,
    shortlist: int = 0,
    min_score: float | None = None,
    under: str | None = None,
) -> SearchPlan:
    """The plan to search by (budget `keep` if none given); 422 with a sentence if out of range."""
    k_features = keep if k_features is None else k_features
    if not 1 <= k_features <= keep:
        raise HTTPException(
            422, f"k_features must be an integer from 1 to {keep}, got {k_features}"
        )
    if not 1 <= top_k <= settings.max_top_k:
        raise HTTPException(
            422, f"top_k must be an integer from 1 to {settings.max_top_k}, got {top_k}"
        )
    if min_score is not None and not (math.isfinite(min_score) and -1 <= min_score <= 1):
        raise HTTPException(422, f"min_score must be a cosine from -1 to 1, got {min_score}")
    under = folder_prefix(under)
    if rerank_features is None:
        return SearchPlan(k_features, top_k, min_score=min_score, under=under)
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
    return SearchPlan(k_features, top_k, rerank_features, shortlist, min_score, under)


def folder_prefix(under: str | None) -> str | None:
    """`shoes`, `shoes/` and `/shoes/` all mean the folder `shoes/`; empty means everything."""
    if under is None or not under.strip("/"):
        return None
    return under.strip("/") + "/"
