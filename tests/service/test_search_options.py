"""A relevance floor, a folder, several images at once, a vector, near-duplicates: every option
on the one search path, checked against brute force over vectors.npy."""

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from indexer.duplicates import DEFAULT_FEATURES, all_pairs_duplicates, groups_document
from models.vectors import unit_rows
from search.index_dir import load_index
from service.app import create_app
from service.settings import Settings


@pytest.fixture(scope="module")
def client(index_dir):
    settings = Settings(
        index=index_dir, max_upload_bytes=200_000, max_batch_files=6, max_batch_bytes=400_000
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def index(index_dir):
    return load_index(index_dir)


def brute_force(index, query: np.ndarray, k_features: int, folder: str = "") -> list[tuple]:
    """(id, score) of every item under `folder`, best first, by numpy alone."""
    rows = [row for row, item in enumerate(index.ids) if item.startswith(folder)]
    scores = unit_rows(index.vectors[rows, :k_features]) @ unit_rows(query[None, :k_features])[0]
    order = np.argsort(-scores, kind="stable")
    return [(index.ids[rows[i]], float(scores[i])) for i in order]


def check_against(body: dict, expected: list[tuple], top_k: int) -> None:
    assert [r["score"] for r in body["results"]] == pytest.approx(
        [score for _, score in expected[:top_k]], abs=1e-5
    )
    by_id = dict(expected)
    for result in body["results"]:  # ties aside, every id returned has the score brute force gives
        assert by_id[result["id"]] == pytest.approx(result["score"], abs=1e-5)


@pytest.mark.parametrize("k_features", [1, 3, 8, 16, 32])
def test_search_under_a_folder_equals_brute_force_over_it(client, index, k_features):
    query = index.vectors[index.ids.index("odd/rgba.png")]
    for folder in ("plain/", "odd/"):
        body = client.post(
            "/search/vector",
            params={"k_features": k_features, "top_k": 5, "under": folder},
            json={"vector": query.tolist()},
        ).json()
        assert body["under"] == folder and body["exact"]
        assert all(r["id"].startswith(folder) for r in body["results"])
        check_against(body, brute_force(index, query, k_features, folder), 5)


def test_under_takes_a_folder_with_or_without_slashes_and_names_an_empty_one(client, gallery):
    item = (gallery / "plain/item-05.png").read_bytes()
    for spelling in ("plain", "/plain/", "plain/"):
        body = client.post(
            "/search", params={"under": spelling}, files={"file": ("q.png", item)}
        ).json()
        assert body["under"] == "plain/" and len(body["results"]) == 10
        assert body["results"][0]["id"] == "plain/item-05.png"
    # "pla" is not a folder: it must not match "plain/".
    missing = client.post("/search", params={"under": "pla"}, files={"file": ("q.png", item)})
    assert missing.status_code == 404 and "under 'pla/'" in missing.json()["detail"]
    similar = client.get("/items/odd/la.png/similar", params={"under": "plain/", "top_k": 3})
    assert [r["id"][:6] for r in similar.json()["results"]] == ["plain/"] * 3


def test_reranking_inside_a_folder_stays_in_it(client, index):
    query = index.vectors[index.ids.index("plain/item-02.png")]
    body = client.post(
        "/search/vector",
        params={"k_features": 4, "rerank_features": 32, "shortlist": 8, "top_k": 3, "under": "odd"},
        json={"vector": query.tolist()},
    ).json()
    assert not body["exact"] and all(r["id"].startswith("odd/") for r in body["results"])
    by_id = dict(brute_force(index, query, 32, "odd/"))
    assert [r["score"] for r in body["results"]] == pytest.approx(
        [by_id[r["id"]] for r in body["results"]], abs=1e-5
    )


def test_min_score_drops_results_below_the_floor(client, index):
    query = index.vectors[index.ids.index("plain/item-07.png")]
    expected = brute_force(index, query, 16)
    floor = (expected[3][1] + expected[4][1]) / 2  # between the 4th and 5th best
    body = client.post(
        "/search/vector",
        params={"k_features": 16, "min_score": floor},
        json={"vector": query.tolist()},
    ).json()
    assert body["min_score"] == pytest.approx(floor)
    assert [r["id"] for r in body["results"]] == [item for item, _ in expected[:4]]
    assert [r["rank"] for r in body["results"]] == [1, 2, 3, 4]
    for bad in ("1.5", "-2", "nan"):
        response = client.post(
            "/search/vector", params={"min_score": bad}, json={"vector": query.tolist()}
        )
        assert response.status_code == 422 and "min_score" in response.json()["detail"]


def test_vector_search_equals_the_search_by_the_stored_item(client, index):
    row = index.ids.index("odd/scan.tiff")
    by_vector = client.post(
        "/search/vector", params={"k_features": 8}, json={"vector": index.vectors[row].tolist()}
    ).json()
    by_item = client.get("/items/odd/scan.tiff/similar", params={"k_features": 8}).json()
    assert by_vector["results"] == by_item["results"]
    # Only the first k_features values count: a longer vector, or noise after them, is the same.
    noisy = np.concatenate([index.vectors[row][:8], np.full(40, 9.0, np.float32)])
    again = client.post(
        "/search/vector", params={"k_features": 8}, json={"vector": noisy.tolist()}
    ).json()
    assert again["results"] == by_vector["results"]


@pytest.mark.parametrize(
    ("body", "params", "says"),
    [
        ({"vector": [0.1] * 7}, {"k_features": 8}, "vector has 7 values; k_features=8"),
        ({"vector": [0.1] * 31}, {}, "k_features=32 needs at least"),
        ('{"vector": [NaN, 1.0]}', {"k_features": 2}, "not a finite number"),
        ({"vector": [0.0, 0.0, 1.0]}, {"k_features": 2}, "zero on its first 2 values"),
        ({"vector": ["a", 1.0]}, {"k_features": 2}, "vector.0"),
        ({"vectors": [1.0]}, {"k_features": 1}, "vector: Field required"),
    ],
)
def test_vector_search_refuses_bad_vectors_in_words(client, body, params, says):
    if isinstance(body, str):
        response = client.post(
            "/search/vector",
            params=params,
            content=body,
            headers={"Content-Type": "application/json"},
        )
    else:
        response = client.post("/search/vector", params=params, json=body)
    assert response.status_code == 422
    assert says in response.json()["detail"]


def test_batch_answers_each_file_in_order_and_a_bad_one_alone(client, gallery):
    names = ["plain/item-01.png", "odd/bitmap.bmp", "plain/item-09.png"]
    files = [("files", (name, (gallery / name).read_bytes())) for name in names]
    files.insert(1, ("files", ("broken.png", b"not an image")))
    before = _batches_of(client, 3)
    response = client.post("/search/batch", params={"k_features": 16, "top_k": 4}, files=files)
    assert response.status_code == 200
    body = response.json()
    assert [entry["file"] for entry in body["results"]] == [
        "plain/item-01.png", "broken.png", "odd/bitmap.bmp", "plain/item-09.png",
    ]  # fmt: skip
    assert body["results"][1] == {
        "file": "broken.png",
        "results": None,
        "error": {
            "status": 400,
            "detail": "the uploaded file is not an image in a supported format",
        },
    }
    for entry, name in zip(body["results"][::2] + body["results"][3:], names, strict=True):
        single = client.post(
            "/search", params={"k_features": 16, "top_k": 4}, files={"file": (name, b"")}
        )
        assert single.status_code == 400  # an empty upload: answered alone, not in the batch
        one = client.post(
            "/search",
            params={"k_features": 16, "top_k": 4},
            files={"file": (name, (gallery / name).read_bytes())},
        ).json()
        assert [r["id"] for r in entry["results"]] == [r["id"] for r in one["results"]]
        assert [r["score"] for r in entry["results"]] == pytest.approx(
            [r["score"] for r in one["results"]], abs=1e-5
        )
    # The three good images went through the model together, in one forward pass.
    assert _batches_of(client, 3) == before + 1


def _batches_of(client, size: int) -> float:
    """Forward passes so far of between size/2 and size images (one histogram bucket)."""
    lines = client.get("/metrics").text.splitlines()
    counts = {
        line.split('le="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("tricl_embed_batch_size_bucket")
    }
    return counts["4.0"] - counts["2.0"] if size == 3 else counts[f"{float(size)}"]


def test_batch_limits_count_bytes_and_each_file(client, gallery):
    image = (gallery / "plain/item-01.png").read_bytes()
    too_many = client.post("/search/batch", files=[("files", ("a.png", image))] * 7)
    assert too_many.status_code == 422
    assert too_many.json()["detail"] == "a batch takes at most 6 files, got 7"
    big = np.random.default_rng(0).integers(0, 256, 250_000, dtype=np.uint8).tobytes()
    one_too_big = client.post(
        "/search/batch", files=[("files", ("big.png", big)), ("files", ("a.png", image))]
    )
    assert one_too_big.status_code == 200
    first, second = one_too_big.json()["results"]
    assert (
        first["error"]["status"] == 413 and "larger than 200,000 bytes" in first["error"]["detail"]
    )
    assert second["results"][0]["id"] == "plain/item-01.png"
    body_too_big = client.post("/search/batch", files=[("files", ("big.png", big))] * 2)
    assert body_too_big.status_code == 413
    assert "larger than 400,000 bytes" in body_too_big.json()["detail"]
    missing = client.post("/search/batch")
    assert missing.status_code == 422
    assert missing.json()["detail"].startswith("missing form field 'files'")
    text_part = client.post("/search/batch", data={"files": "a.png"})
    assert text_part.status_code == 422
    assert "form field 'files' must be a file" in text_part.json()["detail"]


def test_duplicates_endpoint_equals_the_exact_all_pairs_groups(client, index):
    body = client.get("/duplicates", params={"threshold": 0.9}).json()
    exact = groups_document(all_pairs_duplicates(index.vectors, 0.9), index.ids)
    assert body["groups"] == exact["groups"] and body["groups"]
    assert body["threshold"] == 0.9 and body["verify_features"] == 32
    assert body["k_features"] == DEFAULT_FEATURES
    for group in body["groups"]:
        leader = index.vectors[index.ids.index(group["items"][0]["id"])]
        for item in group["items"]:
            member = index.vectors[index.ids.index(item["id"])]
            assert item["score"] >= 0.9
            assert item["score"] == pytest.approx(
                float(unit_rows(member[None])[0] @ unit_rows(leader[None])[0]), abs=1e-5
            )
    assert client.get("/duplicates", params={"threshold": 2}).status_code == 422
    assert client.get("/duplicates", params={"k_features": 33}).status_code == 422


def test_published_schema_declares_uploads_required_and_errors_as_one_sentence(client):
    schema = client.get("/openapi.json").json()
    for path, field in (("/search", "file"), ("/search/batch", "files")):
        operation = schema["paths"][path]["post"]
        form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
        body = schema["components"]["schemas"][form.rsplit("/", 1)[1]]
        assert body["required"] == [field]
        assert "anyOf" not in json.dumps(body["properties"][field])
        for status in ("400", "413", "422"):
            response = operation["responses"][status]["content"]["application/json"]
            assert response["schema"]["$ref"].endswith("/ErrorDetail")
    assert "HTTPValidationError" not in json.dumps(schema)
