"""Every kind of bad request a client might send, over real HTTP: a clear 4xx, process unharmed.

The same list, with the responses seen, is in docs/reliability.md.
"""

import httpx
import numpy as np
import pytest

from tests.helpers.hostile import PARAMETERS, PNG, UPLOADS


@pytest.mark.parametrize(("what", "data", "status", "detail"), UPLOADS, ids=[u[0] for u in UPLOADS])
def test_uploads(live_server, what, data, status, detail):
    response = httpx.post(
        f"{live_server}/search", files={"file": ("query.png", data, "image/png")}, timeout=30
    )
    assert response.status_code == status, response.text
    if detail:
        assert detail in response.json()["detail"]
    else:
        assert len(response.json()["results"]) == 10


@pytest.mark.parametrize(("params", "detail"), PARAMETERS, ids=[str(p[0]) for p in PARAMETERS])
def test_parameters(live_server, params, detail):
    response = httpx.post(
        f"{live_server}/search", params=params, files={"file": ("q.png", PNG)}, timeout=30
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)


def test_over_the_size_limit_declared_or_streamed(live_server):
    big = np.random.default_rng(0).bytes(11 * 1024 * 1024)
    declared = httpx.post(f"{live_server}/search", files={"file": ("big.png", big)}, timeout=60)
    assert declared.status_code == 413
    assert declared.json()["detail"] == "the upload is larger than 10,485,760 bytes"

    def chunks():  # no Content-Length: the server must count as it reads
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
        for start in range(0, len(big), 1 << 20):
            yield big[start : start + (1 << 20)]
        yield b"\r\n--b--\r\n"

    streamed = httpx.post(
        f"{live_server}/search",
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
        timeout=60,
    )
    assert streamed.status_code == 413
    assert "larger than 10,485,760 bytes" in streamed.json()["detail"]


def test_missing_field_wrong_content_type_and_unknown_parameters(live_server):
    missing = httpx.post(f"{live_server}/search", timeout=30)
    assert missing.status_code == 422 and "missing form field 'file'" in missing.json()["detail"]
    as_json = httpx.post(f"{live_server}/search", json={"file": "x.png"}, timeout=30)
    assert as_json.status_code == 422 and "missing form field 'file'" in as_json.json()["detail"]
    as_text = httpx.post(
        f"{live_server}/search", content=PNG, headers={"Content-Type": "image/png"}, timeout=30
    )
    assert as_text.status_code == 422
    unknown = httpx.post(
        f"{live_server}/search",
        params={"colour": "red"},
        files={"file": ("q.png", PNG)},
        timeout=30,
    )
    assert unknown.status_code == 200  # unknown query parameters are ignored (documented)


def test_the_process_is_unharmed_afterwards(live_server):
    assert httpx.get(f"{live_server}/health", timeout=5).json() == {"status": "ok"}
    metrics = httpx.get(f"{live_server}/metrics", timeout=5).text
    assert 'status="500"' not in metrics
