"""The app of one worker process under `python -m service --workers N` (service/workers.py
starts them): its settings come from the environment, it follows its siblings' reloads, and
its metrics go to the folder the workers share."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import multiprocess

from service.app import create_app
from service.process import set_up_serving_process
from service.reload import SiblingReloads, follow_siblings
from service.workers import RELOADS_DIR_VARIABLE


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
