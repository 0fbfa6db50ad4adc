"""Choosing a search setting by measuring it on the gallery itself: sampled gallery rows are the
queries, their exact neighbours (each row left out of its own answer) the truth, and the setting
is the cheapest that meets a target. The 4-bit budgets' shortlists and the duplicate finder's
floors and cells calibrate this way."""

from collections.abc import Callable, Iterable
from typing import TypeVar

import faiss
import numpy as np

CALIBRATION_ROWS = 1000
Setting = TypeVar("Setting")


def calibration_rows(count: int, *, seed: int = 0, size: int = CALIBRATION_ROWS) -> np.ndarray:
    """A sorted sample of `size` of the gallery's `count` rows (all of them if fewer)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(count, min(count, size), replace=False))


def without_self(
    scores: np.ndarray, found: np.ndarray, rows: np.ndarray, depth: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each query row's first `depth` results other than the row itself, in order."""
    others = np.argsort(found == rows[:, None], axis=1, kind="stable")[:, :depth]
    return np.take_along_axis(scores, others, 1), np.take_along_axis(found, others, 1)


def exact_neighbours(
    unit: np.ndarray, rows: np.ndarray, depth: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Inner products and rows of the `depth` nearest other gallery rows of each of `rows`, by
    exact search over `unit` (rows normalised over the budget measured)."""
    width = min(len(unit), depth + 1)
    scores, found = faiss.knn(unit[rows], unit, width, metric=faiss.METRIC_INNER_PRODUCT)
    return without_self(scores, found, rows, depth)


def cheapest(settings: Iterable[Setting], meets: Callable[[Setting], bool]) -> Setting:
    """The first of `settings` (in increasing cost) that `meets` the target; the last if none."""
    setting = None
    for setting in settings:
        if meets(setting):
            break
    if setting is None:
        raise ValueError("no setting to calibrate")
    return setting
