"""The FastAPI application: loads the index in its lifespan and mounts the routers."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from service.deps import load_settings
from service.metrics import ServiceMetrics
from service.middleware import CountRequests, LimitUploadSize, ShedLoad
from service.openapi import publish_limits
from service.routes import admin, items, observability, page, search, status
from service.routes.page import STATIC_DIR
from service.settings import Settings
from service.state import ServiceState, load_state
from service.timing import ServerTiming
from service.upload import missing_field

logger = logging.getLogger(__name__)
UPLOAD_FIELDS = ("file", "files")


def configure_app(app: FastAPI, settings: Settings, metrics: ServiceMetrics) -> None:
    """What every app serving this API shares, here and on a cluster (service.cluster): the
    settings and metrics on app.state, error answers in one sentence, the middleware, and a
    published schema whose bounds are those of the index served."""
    app.state.settings = settings
    app.state.metrics = metrics
    publish_limits(app)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(
        LimitUploadSize,
        max_upload_bytes=settings.max_upload_bytes,
        max_batch_bytes=settings.max_batch_bytes,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Content-Type"],
        )
    app.add_middleware(ServerTiming)
    app.add_middleware(ShedLoad, max_in_flight=settings.max_in_flight, metrics=metrics)
    app.add_middleware(CountRequests, metrics=metrics)


def create_app(settings: Settings | None = None, state: ServiceState | None = None) -> FastAPI:
    """Build the app; `settings` defaults to flags/environment (see service.settings).

    `state` is an index already loaded (the command line loads it first, so a corrupt index
    stops the process with one line instead of a failed start-up inside the server).
    """

    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        active = app.state.settings
        loaded = state or load_state(active, on_batch=metrics.embed_batch.observe)
        if state is not None:
            loaded.embedder.on_batch = metrics.embed_batch.observe
        metrics.describe_index(loaded.searcher.count, loaded.searcher.memory())
        app.state.service = loaded
        logger.info(
            "serving %d items from %s (keep=%d, %s)",
            loaded.searcher.count,
            active.index,
            loaded.searcher.keep,
            loaded.searcher.index_type,
        )
        yield

    app = FastAPI(
        title="triCL image retrieval",
        summary="Nearest gallery images at any feature budget of importance-ordered embeddings.",
        version="0.1.0",
        lifespan=lifespan,
    )
    configure_app(app, settings or load_settings(), metrics)
    include_routes(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def include_routes(app: FastAPI) -> None:
    """Every route of the HTTP API: `python -m service` and a cluster's ingress serve the same."""
    for routes in (search, status, observability, items, page, admin):
        app.include_router(routes.router)


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    """A bug must not leak paths or a stack trace: log it here, answer in one generic line."""
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(status_code=500, content={"detail": "internal error; see the service log"})


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    """An upload the service could not store (uploads over 1 MB are spooled to the temporary
    folder) is the service's fault, not the caller's: 503 with a retry hint, not FastAPI's 400
    "There was an error parsing the body"."""
    if error.status_code == 400 and isinstance(error.__cause__, OSError):
        logger.error("could not store an upload: %s", error.__cause__)
        detail = (
            "the service could not store the upload (its temporary folder is full or not "
            "writable); try again later"
        )
        return JSONResponse(
            status_code=503, content={"detail": detail}, headers={"Retry-After": "30"}
        )
    return await http_exception_handler(request, error)


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """Turn FastAPI's list of errors into one sentence, e.g. "k_features: Input should be ..."."""
    problems = []
    for item in error.errors():
        location = tuple(item.get("loc") or ("request",))
        where = location[-1]
        field = location[1] if location[0] == "body" and len(location) > 1 else None
        if field in UPLOAD_FIELDS:
            if item.get("type") == "missing":
                problems.append(missing_field(field))
                continue
            if "UploadFile" in item.get("msg", ""):  # a text part where a file belongs
                problems.append(f"form field '{field}' must be a file (a part with a filename)")
                continue
        if field is not None:
            where = ".".join(str(part) for part in location[1:])
        problems.append(f"{where}: {item.get('msg', 'invalid value')}")
    return JSONResponse(status_code=422, content={"detail": "; ".join(problems)})
