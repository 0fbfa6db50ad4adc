"""What the numbers were measured on, and the machine's memory read bandwidth."""

import os
import platform
import sys
import threading
import time
from datetime import UTC, datetime

import numpy as np


def describe_run(program: str, argv: list[str] | None) -> dict:
    """What every saved benchmark starts with: its command line, when, and on what machine."""
    arguments = argv if argv is not None else sys.argv[1:]
    return {
        "command": " ".join([program, *arguments]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe_machine(),
    }


def describe_machine() -> dict:
    """CPU model, cores, memory and library versions, saved with every result."""
    # Imported here, for their versions only: a benchmark's --help should not wait for them.
    import faiss
    import torch

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as stream:
            names = [
                line.split(":", 1)[1].strip() for line in stream if line.startswith("model name")
            ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "faiss": faiss.__version__,
        "numpy": np.__version__,
    }


def read_bandwidth_gbs(megabytes: int = 512, repeats: int = 5) -> float:
    """Best rate at which this machine reads a large array, in GB/s: the floor of a scan.

    Takes the faster of a matrix-vector product (BLAS, all cores) and a max reduction split
    across one thread per core; both read every byte once and do almost no arithmetic.
    """
    rows = megabytes * 2**20 // (4 * 256)
    array = np.ones((rows, 256), dtype=np.float32)
    vector = np.ones(256, dtype=np.float32)
    parts = np.array_split(array.reshape(-1), len(os.sched_getaffinity(0)))

    def threaded_max() -> None:
        threads = [threading.Thread(target=part.max) for part in parts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    best = 0.0
    for read in (lambda: array @ vector, threaded_max):
        read()
        for _ in range(repeats):
            started = time.perf_counter()
            read()
            best = max(best, array.nbytes / (time.perf_counter() - started) / 1e9)
    return round(best, 2)
