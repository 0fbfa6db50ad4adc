"""An HTTP request's search parameters, checked against the index and the settings, become
the search core's plan (search.plan.SearchPlan) that every searcher works from."""

import math

from search.plan import SearchPlan
from service.api_models import SearchParams
from service.settings import Settings


class ParameterOutOfRange(ValueError):
    """A search parameter outside what the index and the settings allow; the message names
    the range (the routes answer 422 with it)."""


def plan_search(params: SearchParams, keep: int, settings: Settings) -> SearchPlan:
    """The plan to search by (budget `keep` if none given); ParameterOutOfRange if a
    parameter is out of range."""
    k_features = keep if params.k_features is None else params.k_features
    top_k, min_score, rerank_features = params.top_k, params.min_score, params.rerank_features
    if not 1 <= k_features <= keep:
        raise ParameterOutOfRange(
            f"k_features must be an integer from 1 to {keep}, got {k_features}"
        )
    if not 1 <= top_k <= settings.max_top_k:
        raise ParameterOutOfRange(
            f"top_k must be an integer from 1 to {settings.max_top_k}, got {top_k}"
        )
    if min_score is not None and not (math.isfinite(min_score) and -1 <= min_score <= 1):
        raise ParameterOutOfRange(f"min_score must be a cosine from -1 to 1, got {min_score}")
    under = folder_prefix(params.under)
    if rerank_features is not None and not k_features < rerank_features <= keep:
        raise ParameterOutOfRange(
            f"rerank_features must be an integer above k_features ({k_features}) and at most "
            f"{keep}, got {rerank_features}"
        )
    # The shortlist is read only when re-ranking, where it must hold top_k; it is in range always.
    least, named = (1, "1") if rerank_features is None else (top_k, f"top_k ({top_k})")
    if not least <= params.shortlist <= settings.max_shortlist:
        raise ParameterOutOfRange(
            f"shortlist must be an integer from {named} to {settings.max_shortlist}, "
            f"got {params.shortlist}"
        )
    if rerank_features is None:
        return SearchPlan(k_features, top_k, min_score=min_score, under=under)
    return SearchPlan(k_features, top_k, rerank_features, params.shortlist, min_score, under)


def folder_prefix(under: str | None) -> str | None:
    """`shoes`, `shoes/` and `/shoes/` all mean the folder `shoes/`; empty means everything."""
    if under is None or not under.strip("/"):
        return None
    return under.strip("/") + "/"
