import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from indexer.build import BuildConfig, build_index
from models.checkpoint import SMALL_CNN_CHECKPOINT, load_checkpoint
from models.imagefiles import open_image
from models.inference import embed_pixels
from models.preprocess import to_pixels
from models.vectors import unit_rows
from search.index_dir import load_index
from service.app import create_app
from service.settings import Settings
from tests.helpers.images import garment, png_bytes


@pytest.fixture(scope="module")
def client(index_dir):
    settings = Settings(index=index_dir, max_upload_bytes=200_000, max_image_pixels=4_000_000)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def upload(client, data: bytes, name="q.png", **params):
    return client.post("/search", params=params, files={"file": (name, data, "image/png")})


def test_health_and_info(client, index_dir):
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    manifest = load_index(index_dir).manifest
    assert info["keep"] == 32 and info["count"] == 23 and info["D"] == 128
    assert info["importance"] == list(manifest.importance)
    assert info["index_type"] == "flat" and info["model"]["id"] == manifest.model.id


def test_search_defaults_to_keep_and_ten_results(client):
    body = upload(client, png_bytes(garment(3))).json()
    assert body["k_features"] == 32 and body["top_k"] == 10
    assert [r["rank"] for r in body["results"]] == list(range(1, 11))
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_a_search_says_where_its_time_went(client):
    response = upload(client, png_bytes(garment(4)), k_features=8)
    stages = {}
    for entry in response.headers["server-timing"].split(", "):
        name, duration = entry.split(";dur=")
        stages[name] = float(duration)
    assert list(stages) == [
        "parse", "decode", "preprocess", "forward", "search", "respond", "json",
        "total",
    ]  # fmt: skip
    assert all(value >= 0 for value in stages.values())
    # The stages are disjoint stretches of the request, so together they fit in its total.
    assert sum(value for name, value in stages.items() if name != "total") <= stages["total"] + 0.01
    assert "server-timing" not in client.get("/health").headers


def test_a_gallery_image_finds_itself_first(client, gallery):
    data = (gallery / "plain/item-05.png").read_bytes()
    body = upload(client, data, k_features=16, top_k=3).json()
    assert body["results"][0]["id"] == "plain/item-05.png"
    assert body["results"][0]["score"] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("k_features", [1, 2, 7, 16, 31, 32])
def test_ranking_equals_brute_force_on_vectors_npy(client, index_dir, gallery, k_features):
    index = load_index(index_dir)
    encoder, _ = load_checkpoint(index.model_dir)
    query_path = gallery / "odd/rgba.png"
    xq = embed_pixels(encoder, to_pixels(open_image(query_path), encoder.config)[None])
    scores = unit_rows(index.vectors[:, :k_features]) @ unit_rows(xq[:, :k_features])[0]
    body = upload(client, query_path.read_bytes(), k_features=k_features, top_k=23).json()
    returned = [index.ids.index(r["id"]) for r in body["results"]]
    np.testing.assert_allclose(
        [r["score"] for r in body["results"]], np.sort(scores)[::-1], atol=1e-4
    )
    np.testing.assert_allclose(scores[returned], np.sort(scores)[::-1], atol=1e-4)


def test_missing_file_and_wrong_content_type(client):
    response = client.post("/search")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("missing form field 'file'")
    response = client.post("/search", json={"file": "shirt.png"})
    assert response.status_code == 422


def test_oversized_uploads_and_pixel_bombs_get_413(client):
    noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    response = upload(client, png_bytes(noise))  # about 480 kB > 200 kB limit
    assert response.status_code == 413
    assert "larger than 200,000 bytes" in response.json()["detail"]
    buffer = io.BytesIO()
    Image.new("1", (3000, 3000)).save(buffer, format="PNG")  # tiny file, 9 M pixels
    response = upload(client, buffer.getvalue())
    assert response.status_code == 413
    assert "3000x3000 pixels" in response.json()["detail"]


@pytest.mark.parametrize("mode", ["RGBA", "P", "CMYK", "LA", "I;16"])
def test_odd_image_modes_are_searchable(client, mode):
    image = Image.fromarray(garment(9)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="TIFF" if mode in ("CMYK", "I;16") else "PNG")
    response = upload(client, buffer.getvalue(), name="q.tiff", k_features=8, top_k=2)
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 2


def test_unknown_query_parameters_are_ignored(client):
    response = upload(client, png_bytes(garment(4)), top_k=1, colour="blue")
    assert response.status_code == 200 and len(response.json()["results"]) == 1


def test_info_states_the_memory_of_each_search_structure(client):
    info = client.get("/info").json()
    structures = info["memory"]["structures"]
    ladder = {
        held["features"]: held["bytes"] for held in structures if "ladder" in held["structure"]
    }
    assert ladder == {k: 4 * 23 * k for k in (1, 2, 4, 8, 16, 32)}
    assert info["memory"]["total_bytes"] == sum(held["bytes"] for held in structures)
    assert info["exact"] and info["embedding"]["max_batch"] >= 1


def test_reranking_returns_the_shortlist_ordered_at_the_larger_budget(client, index_dir, gallery):
    index = load_index(index_dir)
    encoder, _ = load_checkpoint(index.model_dir)
    query_path = gallery / "odd/cmyk.jpg"
    xq = embed_pixels(encoder, to_pixels(open_image(query_path), encoder.config)[None])
    params = {"k_features": 4, "rerank_features": 32, "shortlist": 12, "top_k": 5}
    body = upload(client, query_path.read_bytes(), **params).json()
    shortlist = upload(client, query_path.read_bytes(), k_features=4, top_k=12).json()["results"]
    scores = unit_rows(index.vectors[:, :32]) @ unit_rows(xq[:, :32])[0]
    by_id = dict(zip(index.ids, scores, strict=True))
    expected = sorted((by_id[r["id"]] for r in shortlist), reverse=True)[:5]
    assert body["rerank_features"] == 32 and body["shortlist"] == 12 and not body["exact"]
    assert [r["score"] for r in body["results"]] == pytest.approx(expected, abs=1e-5)
    assert {r["id"] for r in body["results"]} <= {r["id"] for r in shortlist}


def test_metrics_count_requests_latency_by_budget_and_batches(client):
    upload(client, png_bytes(garment(4)), k_features=8)
    upload(client, b"", k_features=8)
    text = client.get("/metrics").text
    assert 'tricl_http_requests_total{method="POST",route="/search",status="200"}' in text
    assert 'tricl_http_requests_total{method="POST",route="/search",status="400"}' in text
    assert 'tricl_search_seconds_count{k_features="8"}' in text
    assert "tricl_embed_batch_size_count" in text
    assert "tricl_index_items 23.0" in text
    assert 'tricl_index_bytes{features="32",structure="exact ladder"}' in text


def test_items_serve_the_gallery_file_and_cached_thumbnails(client, gallery):
    response = client.get("/items/plain/item-03.png")
    assert response.status_code == 200
    assert response.content == (gallery / "plain/item-03.png").read_bytes()
    thumb = client.get("/items/odd/rgb-large.jpg", params={"size": 64})
    assert thumb.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).size == (64, 43)  # 300 x 200, aspect kept
    unicode = client.get("/items/odd/name with spaces é.png", params={"size": 96})
    assert Image.open(io.BytesIO(unicode.content)).size == (96, 96)
    assert client.get("/items/plain/item-03.png", params={"size": 4}).status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/items/..%2F..%2Fetc%2Fpasswd",
        "/items/%2e%2e/%2e%2e/etc/passwd",
        "/items/%2Fetc%2Fpasswd",
        "/items//etc/passwd",
        "/items/broken/not-an-image.png",
        "/items/notes.txt",
        "/items/plain/missing.png",
    ],
)
def test_only_indexed_items_are_served(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "no gallery item" in response.json()["detail"]


def test_a_symlink_out_of_the_gallery_is_not_served(tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes(garment(1)))
    gallery = tmp_path / "gallery"
    (gallery / "a").mkdir(parents=True)
    (gallery / "a/inside.png").write_bytes(png_bytes(garment(2)))
    (gallery / "a/link.png").symlink_to(outside)
    out = tmp_path / "index"
    build_index(BuildConfig(gallery=gallery, model=SMALL_CNN_CHECKPOINT, out=out, workers=0))
    assert "a/link.png" in load_index(out).ids  # indexed, as any file in the folder
    with TestClient(create_app(Settings(index=out))) as test_client:
        assert test_client.get("/items/a/inside.png").status_code == 200
        assert test_client.get("/items/a/link.png").status_code == 404
        assert test_client.get("/items/a/link.png", params={"size": 32}).status_code == 404


def test_similar_searches_from_the_stored_vector(client, gallery):
    by_item = client.get("/items/plain/item-05.png/similar", params={"k_features": 8}).json()
    by_upload = upload(client, (gallery / "plain/item-05.png").read_bytes(), k_features=8).json()
    assert by_item["results"][0] == {"rank": 1, "id": "plain/item-05.png", "score": 1.0}
    assert [r["id"] for r in by_item["results"]] == [r["id"] for r in by_upload["results"]]
    assert client.get("/items/nope.png/similar").status_code == 404
    assert (
        client.get("/items/plain/item-05.png/similar", params={"k_features": 0}).status_code == 422
    )


def test_feature_examples_are_the_extremes_of_that_column(client, index_dir):
    index = load_index(index_dir)
    body = client.get("/features/2/examples", params={"n": 3}).json()
    column = index.vectors[:, 1]
    order = np.argsort(column)
    assert [item["id"] for item in body["highest"]] == [index.ids[i] for i in order[::-1][:3]]
    assert [item["id"] for item in body["lowest"]] == [index.ids[i] for i in order[:3]]
    assert body["importance"] == index.manifest.importance[1]
    assert client.get("/features/0/examples").status_code == 422
    assert client.get("/features/33/examples").status_code == 422
    assert client.get("/features/1/examples", params={"n": 51}).status_code == 422


def test_the_page_and_its_files_are_served_without_outside_links(client):
    page = client.get("/")
    assert page.status_code == 200 and '<script src="/static/app.js">' in page.text
    for name in ("app.js", "style.css"):
        text = client.get(f"/static/{name}").text
        assert "http://" not in text and "https://" not in text
    assert "http" not in page.text.replace('"/static/', "")


def test_duplicates_default_budget_fits_an_index_that_keeps_fewer_features(gallery, tmp_path):
    out = tmp_path / "index"
    build_index(
        BuildConfig(gallery=gallery, model=SMALL_CNN_CHECKPOINT, out=out, keep=8, workers=0)
    )
    with TestClient(create_app(Settings(index=out))) as client:
        answer = client.get("/duplicates")
        refused = client.get("/duplicates", params={"k_features": 9})
    assert answer.status_code == 200 and answer.json()["k_features"] == 8
    assert refused.status_code == 422 and "k_features" in refused.json()["detail"]
