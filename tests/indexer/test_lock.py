"""Two writers of one index, as real processes: the second is refused at once, or waits."""

import signal
import subprocess
import sys

import pytest

from indexer.lock import lock_path
from models.checkpoint import SMALL_CNN_CHECKPOINT
from search.index_dir import load_index

pytestmark = pytest.mark.slow  # real processes

HOLD = """
import sys, time
from pathlib import Path
from indexer.lock import writer_lock
with writer_lock(Path(sys.argv[1])):
    print("holding", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path):
    """A process holding the write lock of tmp_path / "index" until killed."""
    out = tmp_path / "index"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "holding"
    yield out, process
    process.kill()
    process.wait()


def build(gallery, out, *extra, wait=True):
    command = [
        sys.executable,
        "-m",
        "indexer",
        "build",
        "--model",
        str(SMALL_CNN_CHECKPOINT),
        "--gallery",
        str(gallery),
    ]
    command += ["--out", str(out), "--keep", "8", "--workers", "0", *extra]
    if wait:
        return subprocess.run(command, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_second_writer_is_refused_at_once_naming_the_first(holder, gallery):
    out, process = holder
    refused = build(gallery, out)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert f"is being written by process {process.pid}" in lines[0] and "--wait" in lines[0]
    assert not out.exists()  # nothing written, nothing half-written


def test_with_wait_the_second_writer_builds_once_the_first_is_gone(holder, gallery):
    out, process = holder
    waiting = build(gallery, out, "--wait", wait=False)
    assert waiting.poll() is None  # still waiting for the lock
    assert not out.exists()
    process.send_signal(signal.SIGKILL)  # the kernel drops a dead holder's lock
    _, stderr = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, stderr
    assert load_index(out).keep == 8
    assert not lock_path(out).exists()


def test_a_killed_writer_leaves_no_lock_behind(holder, gallery):
    out, process = holder
    process.send_signal(signal.SIGKILL)
    process.wait()
    after = build(gallery, out)
    assert after.returncode == 0, after.stderr
    assert len(load_index(out).ids) > 0
    assert not lock_path(out).exists()
