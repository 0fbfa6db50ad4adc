"""The calibration helper every approximate setting is chosen with."""

import numpy as np
import pytest

from models.vectors import unit_rows
from search.calibration import calibration_rows, cheapest, exact_neighbours, without_self


def test_exact_neighbours_leave_each_row_out_and_match_brute_force():
    unit = unit_rows(np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32))
    rows = calibration_rows(200, size=20)
    scores, found = exact_neighbours(unit, rows, depth=5)
    similarity = unit[rows] @ unit.T
    similarity[np.arange(len(rows)), rows] = -np.inf
    expected = np.argsort(-similarity, axis=1, kind="stable")[:, :5]
    assert found.tolist() == expected.tolist()
    assert scores == pytest.approx(np.take_along_axis(similarity, expected, 1), abs=1e-5)


def test_without_self_keeps_the_order_of_the_others():
    scores = np.array([[0.9, 1.0, 0.5]])
    found = np.array([[4, 7, 2]])
    assert without_self(scores, found, np.array([7]), 2)[1].tolist() == [[4, 2]]


def test_calibration_rows_are_a_sorted_sample_without_repeats():
    rows = calibration_rows(50, seed=3, size=20)
    assert len(set(rows.tolist())) == 20 and rows.tolist() == sorted(rows.tolist())
    assert calibration_rows(5, size=20).tolist() == [0, 1, 2, 3, 4]


def test_cheapest_is_the_first_setting_that_meets_the_target_else_the_last():
    tried = []

    def meets(value):
        tried.append(value)
        return value >= 8

    assert cheapest([1, 2, 4, 8, 16], meets) == 8 and tried == [1, 2, 4, 8]
    assert cheapest([1, 2], lambda value: False) == 2
