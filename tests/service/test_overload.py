"""Beyond capacity and at shutdown: shed with 503 + Retry-After, drain on SIGTERM."""

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from bench.http import free_port, resident_mib, running_service, wait_healthy, wrk_load
from tests.helpers.images import garment, png_bytes

pytestmark = pytest.mark.slow  # real servers under load


def test_64_connections_beyond_capacity_are_shed_with_503_and_retry_after(index_dir, gallery):
    images = [str(gallery / "plain" / f"item-{i:02d}.png") for i in range(12)]
    with running_service(index_dir, {"TRICL_MAX_IN_FLIGHT": "8"}) as (url, pid):
        wrk_load(url, images, 8, 2, 16)  # warm-up within capacity
        before = resident_mib(pid)
        result = wrk_load(url, images, 72, 6, 16)  # 64 connections beyond the 8 it takes
        after = resident_mib(pid)
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
    served = result["requests"] - result["errors"]
    assert served > 0 and result["shed"] > 0
    # Every refusal is a 503 with Retry-After; nothing timed out or was dropped.
    assert result["errors"] == result["shed"] and result["shed_without_retry_after"] == 0
    assert result["p99_ms"] < 30_000  # wrk's own timeout: no request waited it out
    shed_total = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("tricl_shed_requests_total")
    )
    assert shed_total >= result["shed"]  # the service also shed what wrk stopped waiting for
    assert after <= 1.5 * before  # a queue that grew with the load would show here


def test_the_busy_answer_names_the_limit(index_dir, gallery):
    """With one search at a time, a second concurrent search gets the sentence."""
    slow = SlowUpload(png_bytes(garment(1)))
    with running_service(index_dir, {"TRICL_MAX_IN_FLIGHT": "1"}) as (url, _):
        first = threading.Thread(target=slow.post, args=(url,))
        first.start()
        slow.started.wait(10)
        time.sleep(0.3)  # its headers have reached the server: it counts as in progress
        second = httpx.post(
            f"{url}/search", files={"file": ("q.png", png_bytes(garment(2)))}, timeout=30
        )
        slow.finish.set()
        first.join(30)
    assert second.status_code == 503 and second.headers["retry-after"] == "1"
    assert second.json() == {
        "detail": "the service is busy (1 searches in progress, the most it takes at once); "
        "retry shortly"
    }
    assert slow.status == 200


def test_sigterm_drains_searches_in_progress_then_exits(index_dir):
    """Searches whose uploads are still arriving when SIGTERM comes are answered 200; then
    the port is closed and the process ends within its grace period."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "service", "--index", str(index_dir), "--port", str(port)]
    environment = {**os.environ, "TRICL_SHUTDOWN_GRACE_S": "20"}
    server = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    uploads = [SlowUpload(png_bytes(garment(seed))) for seed in range(6)]
    threads = [threading.Thread(target=upload.post, args=(url,)) for upload in uploads]
    try:
        wait_healthy(url, process=server)
        for thread in threads:
            thread.start()
        for upload in uploads:
            assert upload.started.wait(10)
        time.sleep(0.3)  # the request lines and headers have reached the server
        server.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(httpx.ConnectError):  # no new connections while draining
            httpx.get(f"{url}/health", timeout=5)
        for upload in uploads:
            upload.finish.set()
        for thread in threads:
            thread.join(30)
        code = server.wait(timeout=30)
    finally:
        server.kill()
        log = server.stderr.read()
    assert [upload.status for upload in uploads] == [200] * len(uploads), log
    # uvicorn finishes its shutdown, then re-raises the signal so supervisors see why it ended.
    assert code in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log and "Traceback" not in log


class SlowUpload:
    """A multipart upload sent in two parts: the headers now, the image once `finish` is set,
    so the request is in progress at the server for as long as the test wants."""

    BOUNDARY = "slow-upload"

    def __init__(self, image: bytes) -> None:
        self.image = image
        self.started = threading.Event()
        self.finish = threading.Event()
        self.status: int | None = None

    def post(self, url: str) -> None:
        head = (
            f'--{self.BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            'filename="q.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        tail = f"\r\n--{self.BOUNDARY}--\r\n".encode()

        def body():
            yield head
            self.started.set()
            self.finish.wait(30)
            yield self.image + tail

        content_type = f"multipart/form-data; boundary={self.BOUNDARY}"
        headers = {"content-type": content_type}
        length = len(head) + len(self.image) + len(tail)
        headers["content-length"] = str(length)
        response = httpx.post(f"{url}/search", content=body(), headers=headers, timeout=60)
        self.status = response.status_code
