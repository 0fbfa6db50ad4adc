"""The published schema's bounds: every ranged parameter declares them, keep and the settings
filled in, and a reload to an index with another keep publishes the new keep."""

import json
import shutil

import pytest
from fastapi.testclient import TestClient

from indexer.build import BuildConfig, build_index
from models.checkpoint import SMALL_CNN_CHECKPOINT
from service.api_models import MAXIMUM_LIMIT, SearchParams
from service.app import create_app
from service.settings import Settings

SEARCH_ROUTES = [
    ("/search", "post"),
    ("/search/batch", "post"),
    ("/search/vector", "post"),
    ("/items/{item_id}/similar", "get"),
]


def bounds(schema: dict, path: str, method: str, name: str) -> tuple:
    """(minimum, maximum) of a parameter's number schema (its number branch if nullable)."""
    parameters = schema["paths"][path][method]["parameters"]
    declared = next(parameter["schema"] for parameter in parameters if parameter["name"] == name)
    number = next(
        branch
        for branch in declared.get("anyOf", [declared])
        if branch.get("type") in ("integer", "number")
    )
    return number.get("minimum"), number.get("maximum")


def test_every_ranged_parameter_publishes_its_bounds(index_dir):
    settings = Settings(index=index_dir, max_top_k=200, max_shortlist=500, max_batch_files=6)
    with TestClient(create_app(settings)) as client:
        schema = client.get("/openapi.json").json()
    assert MAXIMUM_LIMIT not in json.dumps(schema)
    for path, method in SEARCH_ROUTES:
        names = [parameter["name"] for parameter in schema["paths"][path][method]["parameters"]]
        assert set(SearchParams.model_fields) <= set(names)
        assert bounds(schema, path, method, "k_features") == (1, 32)
        assert bounds(schema, path, method, "top_k") == (1, 200)
        assert bounds(schema, path, method, "min_score") == (-1, 1)
        assert bounds(schema, path, method, "rerank_features") == (2, 32)
        assert bounds(schema, path, method, "shortlist") == (1, 500)
    assert bounds(schema, "/duplicates", "get", "threshold") == (-1, 1)
    assert bounds(schema, "/duplicates", "get", "k_features") == (1, 32)
    assert bounds(schema, "/items/{item_id}", "get", "size") == (16, 512)
    assert bounds(schema, "/features/{feature}/examples", "get", "feature") == (1, 32)
    assert bounds(schema, "/features/{feature}/examples", "get", "n") == (1, 50)
    form = schema["components"]["schemas"]["Body_search_batch_search_batch_post"]
    assert form["properties"]["files"]["minItems"] == 1
    assert form["properties"]["files"]["maxItems"] == 6


@pytest.fixture(scope="module")
def narrower_index(gallery, tmp_path_factory):
    """The test gallery indexed with keep 16 (the shared index keeps 32)."""
    out = tmp_path_factory.mktemp("narrower") / "index"
    build_index(
        BuildConfig(gallery=gallery, model=SMALL_CNN_CHECKPOINT, out=out, keep=16, workers=0)
    )
    return out


def test_a_reload_to_another_keep_publishes_the_new_keep(index_dir, narrower_index, tmp_path):
    served = tmp_path / "index"
    shutil.copytree(index_dir, served)
    settings = Settings(index=served, admin_key="admin-key")
    with TestClient(create_app(settings)) as client:
        before = client.get("/openapi.json").json()
        assert bounds(before, "/search", "post", "k_features") == (1, 32)
        shutil.rmtree(served)
        shutil.copytree(narrower_index, served)
        reloaded = client.post("/admin/reload", headers={"X-Admin-Key": "admin-key"})
        assert reloaded.status_code == 200, reloaded.text
        after = client.get("/openapi.json").json()
        assert bounds(after, "/search", "post", "k_features") == (1, 16)
        assert bounds(after, "/features/{feature}/examples", "get", "feature") == (1, 16)
        refused = client.post("/search/vector", params={"k_features": 17}, json={"vector": [1.0]})
        assert refused.json()["detail"] == "k_features must be an integer from 1 to 16, got 17"
