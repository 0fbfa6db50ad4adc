"""Schemathesis over the published /openapi.json against a real server, with its default
checks: no 5xx; every answer's status, content type, headers and body as the schema declares
them; requests valid by the schema accepted (positive data) and invalid ones refused (negative).

OpenAPI cannot relate one parameter to another, so the schema states a few rules in words:
rerank_features above k_features (which defaults to keep), a shortlist of at least top_k, a
vector at least as long as the budget and not zero on it. `within_stated_rules` brings each
positive request within them. An upload that is not an image is valid by the schema (a binary
part) and refused with the 400 the schema documents for POST /search.
"""

from collections import Counter

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

pytestmark = pytest.mark.slow  # generated requests against a real service

EXAMPLES = 25  # per operation and mode: 11 operations, about 20 s on two busy cores
# Schemathesis' statuses for accepted positive data, and for POST /search the 400 its schema
# documents: "the upload is not an image the service can read".
CONFIG = """
[[operations]]
include-name = "POST /search"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "400", "401", "403", "404", "409", "429", "5xx",
]
"""


def test_every_generated_request_gets_an_answer_the_schema_declares(live_server):
    schema = schemathesis.openapi.from_url(
        f"{live_server}/openapi.json", config=schemathesis.Config.from_str(CONFIG)
    )
    keep = httpx.get(f"{live_server}/info", timeout=30).json()["keep"]
    schema.hook("map_case")(within_stated_rules(keep))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    statuses: dict[tuple[str, str], Counter] = {}
    for operation in operations:
        for mode in GenerationMode:
            seen = statuses.setdefault((operation.label, mode.value), Counter())
            try:
                holds_to_the_schema(operation, mode, seen)
            except Unsatisfiable:  # nothing in the request can be wrong (no parameters)
                assert mode == GenerationMode.NEGATIVE
    print({key: dict(counts) for key, counts in statuses.items()})
    searched = ["POST /search", "POST /search/batch", "POST /search/vector"]
    assert all(statuses[(label, "positive")][200] for label in searched)
    assert all(statuses[(label, "negative")][422] for label in searched)


def holds_to_the_schema(operation, mode: GenerationMode, statuses: Counter) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answered_as_declared(case):
        response = case.call_and_validate(timeout=30)  # every default check
        statuses[response.status_code] += 1

    answered_as_declared()


def within_stated_rules(keep: int):
    """A `map_case` hook: a positive request brought within the rules the schema states in
    words only, so it is valid by them too."""

    def mapped(context, case):
        if case.meta is None or not case.meta.generation.mode.is_positive:
            return case
        query = case.query if isinstance(case.query, dict) else {}
        budget = query.get("k_features") or keep
        rerank = query.get("rerank_features")
        if rerank is not None:
            if rerank <= budget:
                query["k_features"] = budget = rerank - 1
            query["shortlist"] = max(query.get("shortlist", 100), query.get("top_k", 10))
            budget = rerank
        vector = case.body.get("vector") if isinstance(case.body, dict) else None
        if isinstance(vector, list):
            vector.extend([1.0] * (budget - len(vector)))
            if not any(vector[: query.get("k_features") or keep]):
                vector[0] = 1.0
        return case

    return mapped
