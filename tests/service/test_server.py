"""The real thing: `python -m service` in its own process, reached over 127.0.0.1."""

import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import garment, png_bytes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(index_dir):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--index", str(index_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"service exited: {process.stdout.read().decode()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("service did not become healthy within 60 s")
    yield base
    process.terminate()
    process.wait(timeout=10)


def test_search_over_http(server):
    response = httpx.post(
        f"{server}/search",
        params={"k_features": 16, "top_k": 5},
        files={"file": ("shirt.png", png_bytes(garment(5)), "image/png")},
        timeout=30,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["k_features"] == 16 and len(body["results"]) == 5
    assert body["results"][0]["id"] == "plain/item-05.png"


def test_bad_request_over_http_leaves_the_server_up(server):
    response = httpx.post(
        f"{server}/search", files={"file": ("x.png", b"junk", "image/png")}, timeout=30
    )
    assert response.status_code == 400
    assert httpx.get(f"{server}/health", timeout=5).json() == {"status": "ok"}


def test_missing_index_is_one_clear_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "service", "--index", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith("build one with python -m indexer build")
