"""Where a request's time goes: seconds per stage, returned as a Server-Timing header.

The middleware starts the clock when the request arrives and makes its `StageTimes` the
current one (a context variable, which the thread a route runs its work in inherits); the
code a request runs records its stages with `stage(name)` or `record(name, seconds)`, without
being handed anything (decode, preprocess, forward, search, building the answer);
outside a request they record nothing. Whatever passes before the route starts is reading and
parsing the upload ("parse"), and whatever passes between the route's return and the first byte
of the answer is serialising it ("json"). Browsers show the header in their network panel, and
`python -m bench` collects it for the split of a lone request.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class StageTimes:
    """Seconds spent in each named stage of one request."""

    def __init__(self) -> None:
        self.arrived = time.perf_counter()
        self.route_started: float | None = None
        self.route_returned: float | None = None
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def header(self, now: float) -> str:
        """`parse;dur=0.81, decode;dur=0.12, ..., total;dur=2.90` in milliseconds."""
        stages = dict(self.seconds)
        if self.route_started is not None:
            stages = {"parse": self.route_started - self.arrived} | stages
        if self.route_returned is not None:
            stages["json"] = now - self.route_returned
        stages["total"] = now - self.arrived
        return ", ".join(f"{name};dur={seconds * 1000:.3f}" for name, seconds in stages.items())


_current: ContextVar[StageTimes | None] = ContextVar("stage_times", default=None)


def current() -> StageTimes | None:
    """The stage times of the request being served, if any."""
    return _current.get()


def record(name: str, seconds: float) -> None:
    """Add `seconds` to stage `name` of the request being served (nothing outside one)."""
    times = _current.get()
    if times is not None:
        times.add(name, seconds)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as stage `name` of the request being served."""
    started = time.perf_counter()
    try:
        yield
    finally:
        record(name, time.perf_counter() - started)


class ServerTiming:
    """Plain ASGI middleware: a `StageTimes` in each request's state, sent back as a header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        times = StageTimes()
        scope.setdefault("state", {})["times"] = times
        token = _current.set(times)

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start" and times.seconds:
                value = times.header(time.perf_counter()).encode()
                message["headers"] = [*message.get("headers", []), (b"server-timing", value)]
            await send(message)

        try:
            await self.app(scope, receive, with_header)
        finally:
            _current.reset(token)
