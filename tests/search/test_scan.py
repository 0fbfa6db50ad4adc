import numpy as np
import pytest

from search.scan import check_budget, flat_at_budget, ladder_budgets


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


def test_the_ladder_is_the_powers_of_two_and_keep():
    assert ladder_budgets(64) == [1, 2, 4, 8, 16, 32, 64]
    assert ladder_budgets(24) == [1, 2, 4, 8, 16, 24]
