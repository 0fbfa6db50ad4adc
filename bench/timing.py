"""Median and tail of repeated calls, in milliseconds."""

import time
from collections.abc import Callable, Iterable

import numpy as np


def summarise_ms(seconds: Iterable[float]) -> dict:
    values = np.asarray(list(seconds)) * 1000
    return {
        "median_ms": round(float(np.median(values)), 3),
        "p99_ms": round(float(np.percentile(values, 99)), 3),
        "calls": len(values),
    }


def time_each(call: Callable[[int], object], repeats: int, warmup: int = 2) -> dict:
    """Time `call(i)` for i in range(repeats), after `warmup` untimed calls."""
    for i in range(warmup):
        call(i)
    seconds = []
    for i in range(repeats):
        started = time.perf_counter()
        call(i)
        seconds.append(time.perf_counter() - started)
    return summarise_ms(seconds)


def time_side_by_side(calls: dict[str, Callable[[int], object]], repeats: int) -> dict:
    """Time each of `calls` on the same i, one after the other for every i, so that load on the
    machine falls on all of them alike; medians and tails per name."""
    for call in calls.values():
        call(0)
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            call(i)
            seconds[name].append(time.perf_counter() - started)
    return {name: summarise_ms(values) for name, values in seconds.items()}
