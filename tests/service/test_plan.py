"""The search plan: parameters checked against keep and the settings, refused in a sentence
with a domain error (the routes answer it with 422; tests/helpers/hostile.py over HTTP)."""

import pytest

from search.plan import SearchPlan
from service.api_models import SearchParams
from service.plan import ParameterOutOfRange, plan_search
from service.settings import Settings

SETTINGS = Settings(max_top_k=100, max_shortlist=500)


def test_defaults_search_at_keep_and_folders_are_normalised():
    assert plan_search(SearchParams(), 32, SETTINGS) == SearchPlan(32, 10)
    plan = plan_search(SearchParams(k_features=8, under="/shoes", min_score=0.5), 32, SETTINGS)
    assert plan == SearchPlan(8, 10, min_score=0.5, under="shoes/")
    reranked = plan_search(SearchParams(k_features=8, rerank_features=32), 32, SETTINGS)
    assert (reranked.rerank_features, reranked.shortlist) == (32, 100)


@pytest.mark.parametrize(
    ("params", "sentence"),
    [
        ({"k_features": 33}, "k_features must be an integer from 1 to 32, got 33"),
        ({"top_k": 101}, "top_k must be an integer from 1 to 100, got 101"),
        ({"min_score": float("nan")}, "min_score must be a cosine from -1 to 1, got nan"),
        (
            {"rerank_features": 20},
            "rerank_features must be an integer above k_features (32) and at most 32, got 20",
        ),
        (
            {"k_features": 8, "rerank_features": 16, "top_k": 20, "shortlist": 10},
            "shortlist must be an integer from top_k (20) to 500, got 10",
        ),
        ({"shortlist": 0}, "shortlist must be an integer from 1 to 500, got 0"),
    ],
)
def test_out_of_range_is_a_value_error_with_the_sentence(params, sentence):
    with pytest.raises(ParameterOutOfRange) as refused:
        plan_search(SearchParams(**params), 32, SETTINGS)
    assert isinstance(refused.value, ValueError) and str(refused.value) == sentence
