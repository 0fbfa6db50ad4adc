"""One writer per index: builds and updates of the same `--out` take turns.

The lock is an advisory `flock` on `<out>.lock`, beside the index and its staging directories.
The kernel releases it when the holder exits, however it exits, so a crashed or killed build
never blocks the next one; the file records who holds it, for the message the next one prints.
"""

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path


class IndexBusy(ValueError):
    """Another process is writing this index."""


def lock_path(out: Path) -> Path:
    out = out.resolve()
    return out.with_name(out.name + ".lock")


@contextlib.contextmanager
def writer_lock(out: Path, *, wait: bool = False) -> Iterator[None]:
    """Hold the index at `out` for writing; refuse at once (IndexBusy) or `wait` for the holder."""
    path = lock_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        stream = open(path, "a+")  # noqa: SIM115 - held open for as long as the lock
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = _describe_holder(stream)
            stream.close()
            raise IndexBusy(
                f"{out} is being written by {holder}; wait for it to finish, or pass --wait"
            ) from None
        # The holder before us may have removed the file on release: lock the one at `path`.
        if _same_file(stream, path):
            break
        stream.close()
    try:
        stream.seek(0)
        stream.truncate()
        record = {
            "pid": os.getpid(),
            "command": " ".join(sys.argv),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        stream.write(json.dumps(record) + "\n")
        stream.flush()
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        stream.close()  # releases the lock


def _same_file(stream, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(stream.fileno()).st_ino
    except FileNotFoundError:
        return False


def _describe_holder(stream) -> str:
    """ "process 1234 (python -m indexer build ..., since ...)", from what the holder wrote."""
    for _ in range(10):  # the holder writes its record just after taking the lock
        stream.seek(0)
        text = stream.read().strip()
        if text:
            try:
                record = json.loads(text)
                return f"process {record['pid']} ({record['command']}, since {record['since']})"
            except (json.JSONDecodeError, KeyError):
                break
        time.sleep(0.05)
    return "another process"
