"""The real thing: `python -m service` in its own process, reached over 127.0.0.1."""

import os
import subprocess
import sys

import httpx
import pytest

from tests.helpers.images import garment, png_bytes

pytestmark = pytest.mark.slow  # `python -m service` in its own process


def test_search_over_http(live_server):
    response = httpx.post(
        f"{live_server}/search",
        params={"k_features": 16, "top_k": 5},
        files={"file": ("shirt.png", png_bytes(garment(5)), "image/png")},
        timeout=30,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["k_features"] == 16 and len(body["results"]) == 5
    assert body["results"][0]["id"] == "plain/item-05.png"


def test_bad_request_over_http_leaves_the_server_up(live_server):
    response = httpx.post(
        f"{live_server}/search", files={"file": ("x.png", b"junk", "image/png")}, timeout=30
    )
    assert response.status_code == 400
    assert httpx.get(f"{live_server}/health", timeout=5).json() == {"status": "ok"}


@pytest.mark.parametrize("workers", ["1", "2"])  # with 2, checked in a child process
def test_missing_index_is_one_clear_line(tmp_path, workers):
    result = subprocess.run(
        [sys.executable, "-m", "service", "--index", str(tmp_path / "none"), "--workers", workers],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot serve {tmp_path / 'none'}: it is not an index directory (no "
        "manifest.json); build one with python -m indexer build"
    ]


def test_a_bad_setting_or_worker_count_is_one_clear_line(index_dir):
    for environment, flags, expected in (
        ({"TRICL_WORKERS": "0"}, [], "error: TRICL_WORKERS: Input should be greater than"),
        ({"TRICL_PORT": "http"}, [], "error: TRICL_PORT: Input should be a valid integer"),
        ({}, ["--workers", "0"], "error: --workers must be at least 1, got 0"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "service", "--index", str(index_dir), *flags],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **environment},
        )
        assert result.returncode == 2
        assert result.stderr.strip().startswith(expected), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_the_supervisor_of_several_workers_imports_no_app_model_or_index_code():
    """It only starts and restarts workers; the index is checked in a child process."""
    probe = (
        "import sys, service.__main__, service.workers; "
        "print(sorted(m for m in ('faiss', 'onnxruntime', 'numpy', 'fastapi', 'service.app', "
        "'service.state', 'search.index_dir', 'search.core') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
