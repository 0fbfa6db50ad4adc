import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.helpers.images import garment, png_bytes


@pytest.fixture(scope="module")
def locked(index_dir):
    settings = Settings(index=index_dir, api_key="search-key", admin_key="admin-key")
    with TestClient(create_app(settings)) as client:
        yield client


def post_image(client, **headers):
    files = {"file": ("q.png", png_bytes(garment(1)), "image/png")}
    return client.post("/search", files=files, headers=headers)


def test_search_and_gallery_need_the_api_key_when_one_is_set(locked):
    assert post_image(locked).status_code == 401
    assert post_image(locked, **{"X-API-Key": "wrong"}).status_code == 401
    assert post_image(locked, **{"X-API-Key": "search-key"}).status_code == 200
    assert locked.get("/items/plain/item-01.png").status_code == 401
    assert locked.get("/features/1/examples").status_code == 401
    detail = post_image(locked).json()["detail"]
    assert detail == "missing or wrong API key: send it in the X-API-Key header"
    assert locked.get("/health").status_code == 200  # probes stay open


def test_admin_actions_need_the_admin_key(locked, index_dir):
    assert locked.post("/admin/reload").status_code == 401
    assert locked.post("/admin/reload", headers={"X-Admin-Key": "search-key"}).status_code == 401
    reloaded = locked.post("/admin/reload", headers={"X-Admin-Key": "admin-key"})
    assert reloaded.status_code == 200 and reloaded.json()["count"] == 23
    with TestClient(create_app(Settings(index=index_dir))) as open_client:
        response = open_client.post("/admin/reload", headers={"X-Admin-Key": "anything"})
        assert response.status_code == 403
        assert "set TRICL_ADMIN_KEY" in response.json()["detail"]


def test_cors_is_closed_by_default_and_opens_to_configured_origins(index_dir):
    preflight = {
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "POST",
    }
    with TestClient(create_app(Settings(index=index_dir))) as closed:
        response = closed.get("/health", headers={"Origin": "https://shop.example"})
        assert "access-control-allow-origin" not in response.headers
        assert (
            "access-control-allow-origin"
            not in closed.options("/search", headers=preflight).headers
        )
    settings = Settings(index=index_dir, cors_origins=["https://shop.example"])
    with TestClient(create_app(settings)) as opened:
        response = opened.options("/search", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://shop.example"


def test_an_unexpected_error_is_a_generic_500_without_paths(index_dir, monkeypatch):
    with TestClient(create_app(Settings(index=index_dir)), raise_server_exceptions=False) as client:
        engine = client.app.state.service.searcher

        def broken(*args, **kwargs):
            raise RuntimeError(f"cannot read {index_dir}/vectors.npy")

        monkeypatch.setattr(engine, "search", broken)
        response = post_image(client)
        assert response.status_code == 500
        assert response.json() == {"detail": "internal error; see the service log"}
        assert str(index_dir) not in response.text and "Traceback" not in response.text


@pytest.mark.slow
def test_a_corrupt_index_stops_the_service_with_one_line(index_dir, tmp_path):
    import shutil

    corrupt = tmp_path / "index"
    shutil.copytree(index_dir, corrupt)
    vectors = corrupt / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[: vectors.stat().st_size // 2])  # half-written
    result = subprocess.run(
        [sys.executable, "-m", "service", "--index", str(corrupt)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot serve {corrupt}: index file vectors.npy does not match its checksum: "
        "the index is corrupt"
    ]
