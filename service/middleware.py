"""ASGI middleware: request counting for /metrics, load shedding, the request body size limit."""

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import ServiceMetrics
from service.upload import too_large

BATCH_PATH = "/search/batch"  # its body holds many images: it has a limit of its own


class CountRequests:
    """Plain ASGI middleware: it sees the status line without buffering the body."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()


class ShedLoad:
    """Answer searches beyond `max_in_flight` at once with 503 and Retry-After.

    A search waiting in line holds its upload and a thread; past capacity a queue only grows
    (latency and memory) until clients time out. Refusing at once lets them back off or go
    to another replica. Health, info, metrics and the page are never refused.
    """

    def __init__(self, app: ASGIApp, max_in_flight: int, metrics: ServiceMetrics) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.metrics = metrics
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_search(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            self.metrics.shed.inc()
            detail = (
                f"the service is busy ({self.in_flight} searches in progress, the most it takes "
                "at once); retry shortly"
            )
            await _answer(send, 503, detail, [(b"retry-after", b"1")])
            return
        self.in_flight += 1  # one event loop: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def _is_search(path: str) -> bool:
    return path.startswith("/search") or path.endswith("/similar")


class UploadTooLarge(Exception):
    """Raised from `receive` once a request body passes the limit."""


class LimitUploadSize:
    """Refuse request bodies over the upload limit (the batch limit for a batch) with 413
    without reading them whole.

    A declared Content-Length over the limit is refused before a byte of the body is read; a
    body without one (chunked) is counted as it streams in and cut off at the limit. The form
    parser would otherwise spool the whole upload before the route could look at it.
    """

    FRAMING_BYTES = 64 * 1024  # multipart headers and boundaries around the file itself

    def __init__(self, app: ASGIApp, max_upload_bytes: int, max_batch_bytes: int) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.max_batch_bytes = max_batch_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowed = self.max_batch_bytes if scope["path"] == BATCH_PATH else self.max_upload_bytes
        limit = allowed + self.FRAMING_BYTES
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _too_large(send, allowed)
                return
        received = 0
        exceeded = False
        answered = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise UploadTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if exceeded:  # whatever the app made of the cut-off body, the answer is 413
                if not answered:
                    answered = True
                    await _too_large(send, allowed)
                return
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except UploadTooLarge:
            if not answered:
                await _too_large(send, allowed)


async def _too_large(send: Send, limit: int) -> None:
    await _answer(send, 413, too_large(limit))


async def _answer(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
