import hashlib

import numpy as np
import pytest

from indexer.build import model_record
from indexer.index_dir import load_index, write_index
from indexer.manifest import Manifest
from indexer.retrieval import build_structure, recall_at_10
from models.checkpoint import SMALL_CNN_CHECKPOINT
from models.config import read_config
from models.vectors import unit_rows
from service.engine import SearchEngine, ladder_budgets


def brute_force(xq, xb, k, top):
    """Cosine on the first k columns, straight from the definition."""
    q = xq[:, :k] / np.linalg.norm(xq[:, :k], axis=1, keepdims=True)
    b = xb[:, :k] / np.maximum(np.linalg.norm(xb[:, :k], axis=1, keepdims=True), 1e-12)
    scores = q @ b.T
    return np.sort(scores, axis=1)[:, ::-1][:, :top], scores


def write_vectors(out, xb, structure=None):
    """An index directory holding `xb` as its vectors, optionally with an approximate structure
    (each item's content hash is that of its row's bytes: there are no image files)."""
    count, keep = xb.shape
    model = SMALL_CNN_CHECKPOINT
    record = model_record(model, read_config(model))
    write_index(
        out,
        vectors=xb,
        ids=[f"{i}.png" for i in range(count)],
        hashes=[hashlib.sha256(row.tobytes()).hexdigest() for row in xb],
        manifest=Manifest(model=record, keep=keep, count=count, importance=(1.0,) * keep),
        model_dir=model,
        structure=structure,
    )
    return load_index(out)


@pytest.fixture(scope="module")
def random_index(tmp_path_factory):
    rng = np.random.default_rng(0)
    # Decaying scales, like importance-ordered features.
    xb = (rng.standard_normal((3000, 24)) * np.linspace(3, 0.2, 24)).astype(np.float32)
    return write_vectors(tmp_path_factory.mktemp("engine") / "index", xb), xb


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


def test_the_ladder_of_powers_of_two_is_ready_from_the_start(random_index):
    engine = SearchEngine(random_index[0], cache_bytes=0)
    ladder = [held["features"] for held in engine.memory() if held["structure"] == "exact ladder"]
    assert ladder == [1, 2, 4, 8, 16, 24]
    assert ladder_budgets(64) == [1, 2, 4, 8, 16, 32, 64]


@pytest.mark.parametrize(("k_features", "rerank_features"), [(2, 24), (4, 16), (8, 24)])
def test_reranking_orders_the_shortlist_by_cosine_at_the_larger_budget(
    random_index, k_features, rerank_features
):
    index, xb = random_index
    engine = SearchEngine(index, cache_bytes=0)
    xq = np.random.default_rng(5).standard_normal((3, 24)).astype(np.float32)
    _, shortlist = engine.search(xq, k_features, 50)
    D, I = engine.search_reranked(xq, k_features, rerank_features, 50, 10)
    _, scores = brute_force(xq, xb, rerank_features, 10)
    for row in range(3):
        assert set(I[row]) <= set(shortlist[row])
        best_in_shortlist = np.sort(scores[row, shortlist[row]])[::-1][:10]
        np.testing.assert_allclose(D[row], best_in_shortlist, atol=1e-5)
        np.testing.assert_allclose(scores[row, I[row]], D[row], atol=1e-5)


def test_reranking_a_shortlist_of_the_whole_gallery_is_exact_search(random_index):
    index, xb = random_index
    engine = SearchEngine(index, cache_bytes=0)
    xq = np.random.default_rng(6).standard_normal((2, 24)).astype(np.float32)
    D, _ = engine.search_reranked(xq, 4, 24, 3000, 10)
    np.testing.assert_allclose(D, brute_force(xq, xb, 24, 10)[0], atol=1e-5)


@pytest.mark.parametrize("index_type", ["ivf", "hnsw", "ivfpq"])
def test_an_approximate_structure_serves_its_budget_and_reports_recall(
    tmp_path, random_index, index_type
):
    _, xb = random_index
    structure = build_structure(unit_rows(xb[:, :8]), index_type, target_recall=0.9)
    index = write_vectors(tmp_path / "index", xb, structure)
    assert index.structure_info.type == index_type and not index.structure_info.exact
    engine = SearchEngine(index, cache_bytes=0)
    assert not engine.is_exact(8) and engine.is_exact(16)
    xq = xb[:200] + np.random.default_rng(7).normal(0, 0.3, (200, 24)).astype(np.float32)
    _, found = engine.search(xq, 8, 10)
    _, scores = brute_force(xq, xb, 8, 10)
    truth = np.argsort(-scores, axis=1)[:, :10]
    recall = recall_at_10(found, truth)
    if index_type != "ivfpq":  # 4-byte codes of 8 dims trade recall for memory
        assert structure.recall_at_10 >= 0.9 and recall >= 0.85
    assert 0 < structure.recall_at_10 <= 1 and recall > 0.3
    # Budgets without an approximate structure stay exact.
    D, _ = engine.search(xq[:5], 16, 10)
    np.testing.assert_allclose(D, brute_force(xq[:5], xb, 16, 10)[0], atol=1e-5)
