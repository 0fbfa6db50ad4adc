import numpy as np
import pytest

from indexer.retrieval import check_budget, choose_index_type, filled_structure, flat_at_budget


def test_flat_at_budget_is_cosine_on_the_first_k_columns():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    query = rng.standard_normal(16).astype(np.float32)
    for budget in (1, 3, 16):
        first = vectors[:, :budget]
        cosine = first @ query[:budget] / np.linalg.norm(first, axis=1)
        cosine /= np.linalg.norm(query[:budget])
        q = (query[:budget] / np.linalg.norm(query[:budget]))[None]
        D, I = flat_at_budget(vectors, budget).search(q, 5)
        np.testing.assert_allclose(D[0], np.sort(cosine)[::-1][:5], atol=1e-5)
        if budget > 1:  # at one feature every cosine is +-1: all ties
            assert list(I[0]) == list(np.argsort(-cosine, kind="stable")[:5])


@pytest.mark.parametrize(
    ("k_features", "top_k", "message"),
    [(0, 10, "k_features must be between 1 and 8, got 0"), (9, 10, "got 9"), (4, 0, "top_k")],
)
def test_budgets_outside_the_index_are_refused_in_words(k_features, top_k, message):
    with pytest.raises(ValueError, match=message):
        check_budget(k_features, 8, top_k=top_k)


def test_only_approximate_types_are_filled():
    with pytest.raises(ValueError, match="not an approximate structure"):
        filled_structure(np.zeros((10, 4), np.float32), "flat")


def test_auto_picks_flat_for_small_galleries_then_ivf_then_ivfpq():
    assert choose_index_type(50_000, 16, 1 << 30) == "flat"
    assert choose_index_type(1_000_000, 16, 1 << 30) == "ivf"
    assert choose_index_type(100_000_000, 16, 1 << 30) == "ivfpq"
