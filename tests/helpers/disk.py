"""Small filesystems for disk-full and read-only cases: a real tmpfs, mounted while in use."""

import contextlib
import subprocess

import pytest


@contextlib.contextmanager
def small_disk(path, options: str):
    """A tmpfs mounted at `path` with `options` (e.g. "size=8m", "size=1m,ro") while in use."""
    path.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("no permission to mount a tmpfs here")
    try:
        yield path
    finally:
        # Lazily: an index loaded from it keeps its files memory-mapped until it is collected.
        subprocess.run(["umount", "--lazy", str(path)], capture_output=True)
