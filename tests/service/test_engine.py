import numpy as np
import pytest

from indexer.index_dir import load_index, write_index
from models.checkpoint import DEFAULT_CHECKPOINT
from service.engine import SearchEngine


def brute_force(xq, xb, k, top):
    """Cosine on the first k columns, straight from the definition."""
    q = xq[:, :k] / np.linalg.norm(xq[:, :k], axis=1, keepdims=True)
    b = xb[:, :k] / np.maximum(np.linalg.norm(xb[:, :k], axis=1, keepdims=True), 1e-12)
    scores = q @ b.T
    return np.sort(scores, axis=1)[:, ::-1][:, :top], scores


@pytest.fixture(scope="module")
def random_index(tmp_path_factory):
    rng = np.random.default_rng(0)
    # Decaying scales, like importance-ordered features.
    xb = (rng.standard_normal((3000, 24)) * np.linspace(3, 0.2, 24)).astype(np.float32)
    out = tmp_path_factory.mktemp("engine") / "index"
    manifest = {"model": {"id": "x"}, "keep": 24, "count": 3000, "importance": [1.0] * 24}
    write_index(
        out,
        vectors=xb,
        ids=[f"{i}.png" for i in range(3000)],
        manifest=manifest,
        model_dir=DEFAULT_CHECKPOINT,
    )
    return load_index(out), xb


@pytest.mark.parametrize("k_features", [1, 2, 3, 5, 8, 13, 16, 23, 24])
def test_search_equals_numpy_brute_force_at_every_budget(random_index, k_features):
    index, xb = random_index
    engine = SearchEngine(index, cache_bytes=1 << 20)
    xq = np.random.default_rng(k_features).standard_normal((7, 24)).astype(np.float32)
    D, I = engine.search(xq, k_features, 10)
    expected_scores, all_scores = brute_force(xq, xb, k_features, 10)
    np.testing.assert_allclose(D, expected_scores, atol=1e-5)
    # Same items, ties aside: each returned item scores what brute force says it scores.
    np.testing.assert_allclose(
        np.take_along_axis(all_scores, I, axis=1), expected_scores, atol=1e-5
    )


def test_random_budgets_match_brute_force_with_a_tiny_cache(random_index):
    index, xb = random_index
    engine = SearchEngine(index, cache_bytes=3000 * 4 * 5)  # room for about one budget
    rng = np.random.default_rng(1)
    for k_features in rng.integers(1, 25, 20):
        xq = rng.standard_normal((1, 24)).astype(np.float32)
        _, I = engine.search(xq, int(k_features), 5)
        expected, scores = brute_force(xq, xb, int(k_features), 5)
        np.testing.assert_allclose(scores[0, I[0]], expected[0], atol=1e-5)


def test_top_k_larger_than_the_gallery_returns_the_whole_gallery(random_index):
    index, _ = random_index
    engine = SearchEngine(index, cache_bytes=0)
    _, I = engine.search(np.ones((1, 24), np.float32), 4, 5000)
    assert I.shape == (1, 3000) and sorted(I[0].tolist()) == list(range(3000))


@pytest.mark.parametrize(("k_features", "top_k"), [(0, 1), (25, 1), (-1, 1), (4, 0)])
def test_out_of_range_requests_raise(random_index, k_features, top_k):
    engine = SearchEngine(random_index[0], cache_bytes=0)
    with pytest.raises(ValueError):
        engine.search(np.ones((1, 24), np.float32), k_features, top_k)
