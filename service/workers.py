"""Several worker processes serving one port (`--workers N`, TRICL_WORKERS): the supervisor.

One process answers at most about one core's worth of requests: decoding, validation and
response building are Python under one interpreter lock. uvicorn's supervisor starts N workers
on the same socket, and restarts one that dies. Each loads the index itself (the app of one
worker is service/worker_app.py): vectors.npy is memory-mapped, so its pages are shared, but
the float ladder and the 4-bit codes are held once per worker. The workers share a folder:
Prometheus's multiprocess mode sums their metrics there, and a reload taken by one reaches the
others through it (service/reload.py).

The supervisor itself imports none of the app, the model or the index code: it checks the
index in a short-lived child process. On the demo index it holds 39.5 MiB resident, against
101.8 MiB when it loaded them itself only to check.
"""

import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import uvicorn

from service.settings import Settings

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
RELOADS_DIR_VARIABLE = "TRICL_RELOADS_DIR"
WORKER_START_S = 600  # longest a worker may take to load its index (checksums, ladder, model)


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
            "service.worker_app:worker_app",
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


def index_problem_checked_apart(settings: Settings) -> str | None:
    """`service.state.index_problem`, run in a child process that exits afterwards."""
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter, not a copy of this one
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as child:
        return child.submit(_index_problem, settings).result()


def _index_problem(settings: Settings) -> str | None:
    from service.state import index_problem  # in the child only (see the module's docstring)

    return index_problem(settings)
