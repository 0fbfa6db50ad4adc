"""The 4-bit ladder: shortlists from fast-scan codes, re-scored exactly, against brute force."""

import numpy as np
import pytest

from indexer.quantized import quantized_budget
from service.engine import SearchEngine
from tests.service.test_engine import brute_force, write_vectors


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    """Rows around 300 centres with decaying scales, like importance-ordered gallery features."""
    rng = np.random.default_rng(3)
    scales = np.linspace(2, 0.3, 32)
    centres = rng.standard_normal((300, 32)) * scales
    xb = centres[rng.integers(0, 300, 6000)] + 0.4 * rng.standard_normal((6000, 32)) * scales
    xq = centres[rng.integers(0, 300, 300)] + 0.4 * rng.standard_normal((300, 32)) * scales
    index = write_vectors(tmp_path_factory.mktemp("quantized") / "index", xb.astype(np.float32))
    return index, xb.astype(np.float32), xq.astype(np.float32)


def test_four_bit_budgets_agree_with_brute_force_and_score_exactly(clustered):
    index, xb, xq = clustered
    engine = SearchEngine(index, cache_bytes=0, ladder="4bit")
    assert sorted(engine.quantized()) == [16, 32]
    for budget in (16, 32):
        assert not engine.is_exact(budget)
        D, I = engine.search(xq, budget, 10)
        expected, scores = brute_force(xq, xb, budget, 10)
        # Scores are the exact cosines of the rows returned, in descending order.
        np.testing.assert_allclose(np.take_along_axis(scores, I, axis=1), D, atol=1e-5)
        assert np.all(np.diff(D, axis=1) <= 1e-6)
        same = np.all(np.abs(D - expected) <= 1e-5, axis=1)
        assert same.mean() >= 0.99, f"top 10 equal to exact in {same.mean():.3f} at k={budget}"


def test_budgets_below_sixteen_and_off_the_ladder_stay_exact(clustered):
    index, xb, xq = clustered
    engine = SearchEngine(index, cache_bytes=1 << 20, ladder="4bit")
    for budget in (4, 8, 20):
        assert engine.is_exact(budget)
        D, _ = engine.search(xq[:20], budget, 10)
        np.testing.assert_allclose(D, brute_force(xq[:20], xb, budget, 10)[0], atol=1e-5)


def test_auto_keeps_a_small_gallery_float_and_memory_says_which(clustered):
    index, *_ = clustered
    auto = SearchEngine(index, cache_bytes=0)
    assert auto.quantized() == {} and auto.is_exact(16)
    four_bit = SearchEngine(index, cache_bytes=0, ladder="4bit")
    held = {(row["structure"], row["features"]): row["bytes"] for row in four_bit.memory()}
    assert held[("4-bit ladder", 32)] == 6000 * 16  # half a byte per dimension
    assert held[("exact ladder", 8)] == 6000 * 8 * 4


def test_a_larger_top_k_gets_a_longer_shortlist(clustered):
    _, xb, xq = clustered
    budget = quantized_budget(xb, 16)
    D, I = budget.search(xb, _unit(xq[:5, :16]), 200)
    assert I.shape == (5, 200) and np.all(I >= 0)
    expected, _ = brute_force(xq[:5], xb, 16, 200)
    assert np.mean(np.abs(D - expected) <= 1e-5) >= 0.95


def test_unknown_ladder_is_refused(clustered):
    with pytest.raises(ValueError, match="unknown ladder"):
        SearchEngine(clustered[0], cache_bytes=0, ladder="int8")


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
