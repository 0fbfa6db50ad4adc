"""Process-wide set-up of a serving process: the allocator and the log format."""

import contextlib
import ctypes
import logging

_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3


def tune_malloc() -> None:
    """Keep resident memory flat under sustained load (glibc only; a no-op elsewhere).

    Two arenas instead of one per request thread, and a fixed mmap threshold so the large,
    short-lived activation buffers of batched forward passes go back to the system instead of
    fragmenting the heap (the soak in docs/performance.md measures the difference).
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_ARENA_MAX, 2)
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


def set_up_serving_process() -> None:
    tune_malloc()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader logs each CPU probe
