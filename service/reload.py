"""Loading the index again while serving, in every worker process.

In one process a reload is one reference swap (see POST /admin/reload). With several worker
processes (service.workers) the worker that takes the request swaps first, then announces a
new generation in a folder the workers share; every other worker notices within a quarter of a
second, loads the index itself and swaps it in the same way, then acknowledges. The request is
answered once all have, so no connection is closed and, after the answer, every worker serves
the new version.
"""

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from indexer.writing import process_exists
from service.state import ServiceState, load_state

logger = logging.getLogger(__name__)
GENERATION_FILE = "generation"
POLL_S = 0.25
one_reload_at_a_time = asyncio.Lock()


async def reload_in_place(app: FastAPI) -> tuple[ServiceState, ServiceState]:
    """Load the configured index (ValueError/OSError if it cannot be) and swap it in; returns
    (previous, new). Requests that started before the swap finish on the previous one."""
    state = await run_in_threadpool(
        load_state, app.state.settings, app.state.metrics.embed_batch.observe
    )
    previous, app.state.service = app.state.service, state
    app.state.metrics.describe_index(state.searcher.count, state.searcher.memory())
    logger.info("reloaded index %s -> %s", previous.version, state.version)
    return previous, state


class SiblingReloads:
    """The folder through which workers announce reloads (a generation number) and each
    acknowledges the generation it serves (a file named after its pid)."""

    def __init__(self, folder: Path, workers: int) -> None:
        self.folder = folder
        self.workers = workers
        self.serving = self.current()  # a worker loads the index on disk as it starts

    def current(self) -> int:
        try:
            return int((self.folder / GENERATION_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return 0

    def announce(self) -> int:
        generation = time.time_ns()
        self.serving = generation
        _write_atomically(self.folder / GENERATION_FILE, str(generation))
        self.acknowledge()
        return generation

    def acknowledge(self) -> None:
        _write_atomically(self.folder / f"served-{os.getpid()}", str(self.serving))

    def serving_generation(self, generation: int) -> int:
        """Live workers (this one included) that acknowledged `generation`."""
        count = 0
        for path in self.folder.glob("served-*"):
            pid = int(path.name.removeprefix("served-"))
            with contextlib.suppress(FileNotFoundError, ValueError):
                if int(path.read_text()) == generation and process_exists(pid):
                    count += 1
        return count

    async def wait_for_all(self, generation: int, timeout_s: float) -> int:
        """Workers serving `generation` once all do, or when `timeout_s` has passed."""
        deadline = time.monotonic() + timeout_s
        while (count := self.serving_generation(generation)) < self.workers:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(POLL_S / 2)
        return count


@contextlib.asynccontextmanager
async def follow_siblings(app: FastAPI, reloads: SiblingReloads) -> AsyncIterator[None]:
    """While the app serves: reload whenever another worker announces a new generation."""

    async def watch() -> None:
        reloads.acknowledge()
        while True:
            await asyncio.sleep(POLL_S)
            generation = reloads.current()
            if generation == reloads.serving:
                continue
            async with one_reload_at_a_time:
                try:
                    await reload_in_place(app)
                except (ValueError, OSError) as error:
                    logger.error("could not load the index another worker reloaded: %s", error)
                    reloads.serving = generation  # not acknowledged; the next announce retries
                    continue
                reloads.serving = generation
                reloads.acknowledge()

    task = asyncio.create_task(watch())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text)
    partial.replace(path)
