"""The 4-bit codes: built by the indexer's writer, stored and checksummed in the index
directory, read (never trained) by the search core, and re-scored exactly against brute force."""

import json

import faiss
import numpy as np
import pytest

from search.core import SearchIndex
from search.four_bit import four_bit_budgets, four_bit_codes
from search.manifest import MANIFEST_FILE, codes_file
from tests.search.test_core import brute_force, write_vectors


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    """Rows around 300 centres with decaying scales, like importance-ordered gallery features,
    written with 4-bit codes."""
    rng = np.random.default_rng(3)
    scales = np.linspace(2, 0.3, 32)
    centres = rng.standard_normal((300, 32)) * scales
    xb = centres[rng.integers(0, 300, 6000)] + 0.4 * rng.standard_normal((6000, 32)) * scales
    xq = centres[rng.integers(0, 300, 300)] + 0.4 * rng.standard_normal((300, 32)) * scales
    out = tmp_path_factory.mktemp("four-bit") / "index"
    index = write_vectors(out, xb.astype(np.float32), four_bit="always")
    return index, xb.astype(np.float32), xq.astype(np.float32)


def test_the_writer_stores_checksummed_codes_for_budgets_from_sixteen(clustered):
    index, *_ = clustered
    manifest = json.loads((index.index.path / MANIFEST_FILE).read_text())
    assert [budget["features"] for budget in manifest["four_bit"]] == [16, 32]
    assert all(budget["shortlist"] >= 64 for budget in manifest["four_bit"])
    for features in (16, 32):
        assert (index.index.path / codes_file(features)).is_file()
        assert codes_file(features) in manifest["checksums"]


def test_four_bit_budgets_agree_with_brute_force_and_score_exactly(clustered):
    index, xb, xq = clustered
    assert sorted(index.describe()["four_bit"]["shortlists"]) == [16, 32]
    for budget in (16, 32):
        assert not index.is_exact(budget)
        D, I = index.nearest(xq, budget, 10)
        expected, scores = brute_force(xq, xb, budget, 10)
        # Scores are the exact cosines of the rows returned, in descending order.
        np.testing.assert_allclose(np.take_along_axis(scores, I, axis=1), D, atol=1e-5)
        assert np.all(np.diff(D, axis=1) <= 1e-6)
        same = np.all(np.abs(D - expected) <= 1e-5, axis=1)
        assert same.mean() >= 0.99, f"top 10 equal to exact in {same.mean():.3f} at k={budget}"


def test_budgets_below_sixteen_and_off_the_ladder_stay_exact(clustered):
    index, xb, xq = clustered
    for budget in (4, 8, 20):
        assert index.is_exact(budget)
        D, _ = index.nearest(xq[:20], budget, 10)
        np.testing.assert_allclose(D, brute_force(xq[:20], xb, budget, 10)[0], atol=1e-5)


def test_memory_says_which_budgets_are_codes(clustered):
    index, xb, _ = clustered
    index.warm_up(xb[0])
    held = {(row["structure"], row["features"]): row["bytes"] for row in index.memory()}
    assert held[("4-bit ladder", 32)] == 6000 * 16  # half a byte per dimension
    assert held[("exact ladder", 8)] == 6000 * 8 * 4
    assert ("exact ladder", 16) not in held


def test_auto_keeps_a_small_gallery_float():
    xb = np.random.default_rng(0).standard_normal((500, 32)).astype(np.float32)
    assert four_bit_budgets(xb, "auto") == [] and four_bit_budgets(xb, "never") == []
    assert [codes.features for codes in four_bit_budgets(xb, "always")] == [16, 32]
    assert four_bit_budgets(xb[:100], "always") == []  # too few rows to learn codes from


def test_a_larger_top_k_gets_a_longer_shortlist(clustered):
    _, xb, xq = clustered
    codes = four_bit_codes(xb, 16)
    D, I = codes.search(xb, _unit(xq[:5, :16]), 200)
    assert I.shape == (5, 200) and np.all(I >= 0)
    expected, _ = brute_force(xq[:5], xb, 16, 200)
    assert np.mean(np.abs(D - expected) <= 1e-5) >= 0.95


def test_a_changed_codes_file_is_refused_by_its_checksum(tmp_path, clustered):
    _, xb, _ = clustered
    copy = write_vectors(tmp_path / "index", xb[:2000], four_bit="always").index.path
    codes = copy / codes_file(16)
    codes.write_bytes(codes.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ValueError, match=f"{codes_file(16)} does not match its checksum"):
        SearchIndex.open(copy)


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_opening_and_searching_trains_nothing(clustered, monkeypatch):
    index, _, xq = clustered

    def refuse(*args):
        raise AssertionError("4-bit codes trained while opening an index")

    monkeypatch.setattr(faiss.IndexPQFastScan, "train", refuse)
    opened = SearchIndex.open(index.index.path)
    opened.warm_up(xq[0])
    D, _ = opened.nearest(xq[:3], 16, 10)
    assert D.shape == (3, 10)


def test_codes_the_manifest_lists_without_a_checksum_are_refused(tmp_path, clustered):
    _, xb, _ = clustered
    path = write_vectors(tmp_path / "index", xb[:2000], four_bit="always").index.path
    document = json.loads((path / MANIFEST_FILE).read_text())
    del document["checksums"][codes_file(32)]
    (path / MANIFEST_FILE).write_text(json.dumps(document))
    with pytest.raises(ValueError, match=f"holds no checksum for {codes_file(32)}"):
        SearchIndex.open(path)
