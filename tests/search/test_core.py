"""The search core against numpy brute force, at every budget, through every path."""

import hashlib

import numpy as np
import pytest

from indexer.build import model_record
from indexer.writing import write_index
from models.checkpoint import SMALL_CNN_CHECKPOINT
from models.config import read_config
from search.core import SearchIndex
from search.manifest import Manifest
from search.plan import FolderEmpty, SearchPlan
from search.scan import ladder_budgets


def brute_force(xq, xb, k, top):
    """Cosine on the first k columns, straight from the definition."""
    q = xq[:, :k] / np.linalg.norm(xq[:, :k], axis=1, keepdims=True)
    b = xb[:, :k] / np.maximum(np.linalg.norm(xb[:, :k], axis=1, keepdims=True), 1e-12)
    scores = q @ b.T
    return np.sort(scores, axis=1)[:, ::-1][:, :top], scores


def write_vectors(out, xb, four_bit="never", ids=None):
    """An index directory holding `xb` as its vectors, written by the indexer's writer with
    4-bit codes as `four_bit` asks (each item's content hash is that of its row's bytes:
    there are no image files); returns it opened by the search core."""
    count, keep = xb.shape
    model = SMALL_CNN_CHECKPOINT
    record = model_record(model, read_config(model))
    write_index(
        out,
        vectors=xb,
        ids=ids or [f"{i}.png" for i in range(count)],
        hashes=[hashlib.sha256(row.tobytes()).hexdigest() for row in xb],
        manifest=Manifest(model=record, keep=keep, count=count, importance=(1.0,) * keep),
        model_dir=model,
        four_bit=four_bit,
    )
    return SearchIndex.open(out, cache_bytes=1 << 20)


@pytest.fixture(scope="module")
def random_index(tmp_path_factory):
    rng = np.random.default_rng(0)
    # Decaying scales, like importance-ordered features.
    xb = (rng.standard_normal((3000, 24)) * np.linspace(3, 0.2, 24)).astype(np.float32)
    return write_vectors(tmp_path_factory.mktemp("core") / "index", xb), xb


@pytest.mark.parametrize("k_features", [1, 2, 3, 5, 8, 13, 16, 23, 24])
def test_search_equals_numpy_brute_force_at_every_budget(random_index, k_features):
    index, xb = random_index
    xq = np.random.default_rng(k_features).standard_normal((7, 24)).astype(np.float32)
    D, I = index.nearest(xq, k_features, 10)
    expected_scores, all_scores = brute_force(xq, xb, k_features, 10)
    np.testing.assert_allclose(D, expected_scores, atol=1e-5)
    # Same items, ties aside: each returned item scores what brute force says it scores.
    np.testing.assert_allclose(
        np.take_along_axis(all_scores, I, axis=1), expected_scores, atol=1e-5
    )
    found = index.search(xq, SearchPlan(k_features, 10))
    assert found.exact and found.version == index.version
    rows = [[index.rows[item] for item, _ in hits] for hits in found.hits]
    scores = [[score for _, score in hits] for hits in found.hits]
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(all_scores, np.array(rows), 1), scores, atol=1e-5)


def test_random_budgets_match_brute_force_with_a_tiny_cache(tmp_path, random_index):
    _, xb = random_index
    index = write_vectors(tmp_path / "index", xb)
    index.cache_bytes = 3000 * 4 * 5  # room for about one budget off the ladder
    rng = np.random.default_rng(1)
    for k_features in rng.integers(1, 25, 20):
        xq = rng.standard_normal((1, 24)).astype(np.float32)
        _, I = index.nearest(xq, int(k_features), 5)
        expected, scores = brute_force(xq, xb, int(k_features), 5)
        np.testing.assert_allclose(scores[0, I[0]], expected[0], atol=1e-5)
    cached = [held for held in index.memory() if held["structure"] == "exact, cached"]
    assert sum(held["bytes"] for held in cached) <= index.cache_bytes


def test_top_k_larger_than_the_gallery_returns_the_whole_gallery(random_index):
    index, _ = random_index
    _, I = index.nearest(np.ones((1, 24), np.float32), 4, 5000)
    assert I.shape == (1, 3000) and sorted(I[0].tolist()) == list(range(3000))


@pytest.mark.parametrize(("k_features", "top_k"), [(0, 1), (25, 1), (-1, 1), (4, 0)])
def test_out_of_range_requests_raise(random_index, k_features, top_k):
    with pytest.raises(ValueError):
        random_index[0].nearest(np.ones((1, 24), np.float32), k_features, top_k)


def test_opening_makes_no_ladder_and_warming_up_makes_the_powers_of_two(tmp_path, random_index):
    _, xb = random_index
    index = write_vectors(tmp_path / "index", xb)
    assert [held["structure"] for held in index.memory()] == [
        "vectors.npy (lazy budgets, re-ranking)"
    ]
    index.warm_up(xb[0])
    ladder = [held["features"] for held in index.memory() if held["structure"] == "exact ladder"]
    assert ladder == [1, 2, 4, 8, 16, 24]
    assert ladder_budgets(64) == [1, 2, 4, 8, 16, 32, 64]


@pytest.mark.parametrize(("k_features", "rerank_features"), [(2, 24), (4, 16), (8, 24)])
def test_reranking_orders_the_shortlist_by_cosine_at_the_larger_budget(
    random_index, k_features, rerank_features
):
    index, xb = random_index
    xq = np.random.default_rng(5).standard_normal((3, 24)).astype(np.float32)
    _, shortlist = index.nearest(xq, k_features, 50)
    found = index.search(xq, SearchPlan(k_features, 10, rerank_features, 50))
    assert not found.exact
    _, scores = brute_force(xq, xb, rerank_features, 10)
    for row, hits in enumerate(found.hits):
        rows = [index.rows[item] for item, _ in hits]
        assert set(rows) <= set(shortlist[row])
        best_in_shortlist = np.sort(scores[row, shortlist[row]])[::-1][:10]
        np.testing.assert_allclose([score for _, score in hits], best_in_shortlist, atol=1e-5)
        np.testing.assert_allclose(scores[row, rows], best_in_shortlist, atol=1e-5)


def test_reranking_a_shortlist_of_the_whole_gallery_is_exact_search(random_index):
    index, xb = random_index
    xq = np.random.default_rng(6).standard_normal((2, 24)).astype(np.float32)
    found = index.search(xq, SearchPlan(4, 10, 24, 3000))
    scores = [[score for _, score in hits] for hits in found.hits]
    np.testing.assert_allclose(scores, brute_force(xq, xb, 24, 10)[0], atol=1e-5)


def test_a_folder_is_searched_exactly_and_an_empty_one_is_named(tmp_path, random_index):
    _, xb = random_index
    ids = [f"{'shoes' if i % 3 == 0 else 'bags'}/{i}.png" for i in range(len(xb))]
    index = write_vectors(tmp_path / "index", xb, ids=ids)
    xq = np.random.default_rng(8).standard_normal((2, 24)).astype(np.float32)
    found = index.search(xq, SearchPlan(8, 5, under="shoes/", min_score=-1.0))
    shoes = np.arange(0, len(xb), 3)
    expected, _ = brute_force(xq, xb[shoes], 8, 5)
    assert all(item.startswith("shoes/") for hits in found.hits for item, _ in hits)
    np.testing.assert_allclose([[s for _, s in hits] for hits in found.hits], expected, atol=1e-5)
    with pytest.raises(FolderEmpty, match="'hats/'"):
        index.search(xq, SearchPlan(8, 5, under="hats/"))
    # A folder's rows are normalised on their own: no whole budget is made for them.
    assert [held["structure"] for held in index.memory()] == [
        "vectors.npy (lazy budgets, re-ranking)"
    ]


def test_a_shortlist_shorter_than_top_k_is_refused_in_words(random_index):
    index, _ = random_index
    with pytest.raises(ValueError, match=r"shortlist \(5\) must hold top_k \(10\)"):
        index.search(np.ones((1, 24), np.float32), SearchPlan(4, 10, 16, 5))


def test_describe_says_what_is_served(random_index):
    index, _ = random_index
    described = index.describe()
    assert (described["keep"], described["count"], described["D"]) == (24, 3000, 128)
    assert described["index_type"] == "flat" and described["exact"]
    assert described["four_bit"]["shortlists"] == {}
    assert described["memory"]["total_bytes"] == sum(
        held["bytes"] for held in described["memory"]["structures"]
    )


def test_opening_a_folder_that_is_no_index_names_the_problem(tmp_path):
    with pytest.raises(ValueError, match="not an index directory"):
        SearchIndex.open(tmp_path)
