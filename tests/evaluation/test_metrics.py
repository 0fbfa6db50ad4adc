"""Each metric of evaluation.metrics against a computation by hand or straight from its
definition."""

import numpy as np
import pytest

from evaluation.metrics import (
    hamming_recall,
    identifiability,
    importance_gaps,
    retrieval_metrics,
    same_item_recall,
)


def reference_metrics(xq, yq, xb, yb, k):
    """P@10 and AP@100 by sorting every cosine score, straight from the definitions."""
    q = xq[:, :k] / np.linalg.norm(xq[:, :k], axis=1, keepdims=True)
    b = xb[:, :k] / np.linalg.norm(xb[:, :k], axis=1, keepdims=True)
    ranking = np.argsort(-(q @ b.T), axis=1, kind="stable")[:, :100]
    p10, aps = [], []
    for row, label in zip(ranking, yq, strict=True):
        relevant = yb[row] == label
        p10.append(relevant[:10].mean())
        hits = np.flatnonzero(relevant)
        precisions = [(relevant[: r + 1]).mean() for r in hits]
        aps.append(sum(precisions) / min((yb == label).sum(), 100))
    return np.mean(p10), np.mean(aps)


@pytest.mark.parametrize("k", [2, 3, 8])  # k = 1 is all ties: cosine is the sign
def test_retrieval_metrics_match_their_definitions(k):
    rng = np.random.default_rng(k)
    yb, yq = rng.integers(0, 4, 400), rng.integers(0, 4, 30)
    centres = rng.standard_normal((4, 8))
    xb = (centres[yb] + rng.standard_normal((400, 8))).astype(np.float32)
    xq = (centres[yq] + rng.standard_normal((30, 8))).astype(np.float32)
    got = retrieval_metrics(xq, yq, xb, yb, k)
    p10, map100 = reference_metrics(xq, yq, xb, yb, k)
    assert got["p_at_10"] == pytest.approx(p10, abs=1e-6)
    assert got["map_at_100"] == pytest.approx(map100, abs=1e-6)


def test_separated_classes_score_one():
    yb = np.repeat(np.arange(3), 120)
    xb = np.eye(3, dtype=np.float32)[yb] + 0.01
    got = retrieval_metrics(xb[::40], yb[::40], xb, yb, 3)
    assert got == {"p_at_10": 1.0, "map_at_100": 1.0}


def test_identifiability_ignores_sign_and_sees_independence():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2000, 8))
    assert identifiability(a, -a, 8)["same_rank"] == pytest.approx(1.0)
    assert identifiability(a, rng.standard_normal((2000, 8)), 8)["same_rank"] < 0.1


def test_same_item_recall_counts_relevant_items_in_the_top_ten():
    xb = np.eye(4, dtype=np.float32)
    xq = np.array([[1, 0.5, 0, 0], [0, 0, 0, 1]], dtype=np.float32)
    relevant = [np.array([0]), np.array([2, 3])]
    # Query 1 finds its one item; query 2 finds both of its items within the top 10.
    assert same_item_recall(xq, xb, relevant, budget=4, depth=10) == 1.0
    # At depth 1 query 2 finds one of its two items: (1 + 1) / 2 ... and query 1 its item.
    assert same_item_recall(xq, xb, relevant, budget=4, depth=1) == pytest.approx(1.0)
    assert same_item_recall(xq, xb, [np.array([1]), np.array([0])], budget=4, depth=1) == 0.0


def test_identifiability_matches_features_up_to_order_and_sign():
    x = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    swapped = -x[:, [1, 0, 2, 3, 4, 5, 7, 6]]
    same = identifiability(x, x, 8)
    assert same == {"same_rank": pytest.approx(1.0), "matched": pytest.approx(1.0)}
    found = identifiability(x, swapped, 8)
    assert found["matched"] == pytest.approx(1.0)
    assert found["same_rank"] == pytest.approx(0.5, abs=0.1)


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
    distinct = [2.0 * 0.9**i for i in range(20)]
    tied = [5.0, 4.99, *[4.0 - 0.1 * i for i in range(18)]]
    assert importance_gaps(distinct)["top16_distinct_1pct"]
    assert importance_gaps(distinct)["top16_smallest_gap"] == pytest.approx(0.1)
    assert not importance_gaps(tied)["top16_distinct_1pct"]
    assert importance_gaps(tied)["top16_importance"][0] == 5.0


def test_hamming_recall_ranks_codes_by_differing_bits():
    hb = np.array([[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=bool)
    hq = np.array([[1, 1, 1, 0], [0, 0, 0, 1]], dtype=bool)
    # Query 1 is 1 bit from rows 1 and 2 (row 1 first, stable), 3 bits from row 0; query 2 is
    # 1 bit from row 0.
    assert hamming_recall(hq, hb, [np.array([2]), np.array([0])], depth=1) == 0.5
    assert hamming_recall(hq, hb, [np.array([2]), np.array([0])], depth=2) == 1.0
