"""Several worker processes serving one port (`--workers N`, TRICL_WORKERS).

One process answers at most about one core's worth of requests: decoding, validation and
response building are Python under one interpreter lock. uvicorn's supervisor starts N workers
on the same socket, and restarts one that dies. Each loads the index itself: vectors.npy and
index.faiss are memory-mapped, so their pages are shared, but the ladder is held once per
worker. The workers share a folder: Prometheus's multiprocess mode sums their metrics there,
and a reload taken by one reaches the others through it (service/reload.py).
"""

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from prometheus_client import multiprocess

from service.app import create_app
from service.process import set_up_serving_process
from service.reload import SiblingReloads, follow_siblings
from service.settings import Settings

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
RELOADS_DIR_VARIABLE = "TRICL_RELOADS_DIR"
WORKER_START_S = 600  # longest a worker may take to load its index (4-bit codes at 1M: 90 s)


def serve_workers(settings: Settings) -> None:
    """Run `settings.workers` processes on the port until SIGTERM or SIGINT."""
    # Spawned workers read their settings from the environment, as `python -m service` does.
    os.environ["TRICL_INDEX"] = str(settings.index)
    if settings.gallery is not None:
        os.environ["TRICL_GALLERY"] = str(settings.gallery)
    os.environ["TRICL_WORKERS"] = str(settings.workers)
    shared = Path(tempfile.mkdtemp(prefix="tricl-workers-"))
    for name, variable in (("metrics", METRICS_DIR_VARIABLE), ("reloads", RELOADS_DIR_VARIABLE)):
        (shared / name).mkdir()
        os.environ[variable] = str(shared / name)
    try:
        uvicorn.run(
            "service.workers:worker_app",
            factory=True,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            log_level="info",
            access_log=False,
            timeout_graceful_shutdown=settings.shutdown_grace_s,
            timeout_worker_healthcheck=WORKER_START_S,
        )
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def worker_app() -> FastAPI:
    """The app of one worker process; its settings come from the environment."""
    set_up_serving_process()
    app = create_app()
    reloads = SiblingReloads(Path(os.environ[RELOADS_DIR_VARIABLE]), app.state.settings.workers)
    app.state.sibling_reloads = reloads
    serve = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with serve(app), follow_siblings(app, reloads):
            yield
        # Its gauges (the index's size) leave the sum; its counters stay counted.
        multiprocess.mark_process_dead(os.getpid())

    app.router.lifespan_context = lifespan
    return app
