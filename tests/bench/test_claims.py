import numpy as np
import pytest

from bench.claims import identifiability, importance_gaps, order_curves


def test_identifiability_is_one_for_the_same_features_reordered_with_signs_flipped():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 16))
    b = -a[:, ::-1]  # the same 16 features, in reverse order, every sign flipped
    same = identifiability(a, a, 8)
    assert same == {"same_rank": 1.0, "matched": 1.0}
    swapped = identifiability(a, b, 16)
    assert swapped["matched"] == pytest.approx(1.0)
    assert swapped["same_rank"] < 0.2  # same-rank pairs are independent features


def test_identifiability_matches_a_hand_computation():
    a = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0]])
    b = np.array([[0.0, 2.0], [1.0, 4.0], [0.0, 6.0], [1.0, 8.0]])
    # Column 0 of a is column 1 of b (corr 1); column 1 of a is column 0 of b (corr 1);
    # same-rank: corr(a0, b0) = corr([1,2,3,4], [0,1,0,1]) = 0.447..., and the same for (a1, b1).
    found = identifiability(a, b, 2)
    assert found["same_rank"] == pytest.approx(
        np.corrcoef([1, 2, 3, 4], [0, 1, 0, 1])[0, 1], abs=1e-4
    )
    assert found["matched"] == pytest.approx(1.0)


def test_importance_gaps_flag_values_within_one_percent():
    distinct = {"importance": [2.0 * 0.9**i for i in range(20)]}
    tied = {"importance": [5.0, 4.99, *[4.0 - 0.1 * i for i in range(18)]]}
    assert importance_gaps(distinct)["top16_distinct_1pct"]
    assert importance_gaps(distinct)["top16_smallest_gap"] == pytest.approx(0.1)
    assert not importance_gaps(tied)["top16_distinct_1pct"]
    assert importance_gaps(tied)["spectrum"][0] == 5.0


def test_order_curves_rank_informative_dimensions_first():
    rng = np.random.default_rng(1)
    signal = rng.normal(size=(200, 4))
    xb = np.concatenate([signal * 10, rng.normal(size=(200, 12))], axis=1)
    xq = xb + np.concatenate([np.zeros((200, 4)), rng.normal(size=(200, 12))], axis=1)

    def quality(q, b, columns):  # how close each query's columns are to its own row
        return float(-np.abs(q[:, columns] - b[:, columns]).mean())

    curves = order_curves(quality, xq, xb, budgets=(2, 4))
    assert curves["first"]["4"] > curves["random"]["4"] > curves["last"]["4"]
