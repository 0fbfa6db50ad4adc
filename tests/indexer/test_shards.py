"""An index cut into shards: each a complete index, together the index row for row; and the
merge of shards' answers (service.searcher) that serving them relies on."""

import numpy as np
import pytest

from indexer.shards import load_shards, merge_shards, split_index
from search.core import SearchIndex
from search.index_dir import load_index
from search.plan import Found
from service.searcher import merge_extremes, merge_found


@pytest.fixture(scope="module")
def shards(index_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("sharded") / "shards"
    split_index(load_index(index_dir), root, 3)
    return root


def test_split_shards_merge_back_into_the_index(index_dir, shards):
    index = load_index(index_dir)
    loaded = load_shards(shards)
    sizes = [len(shard.ids) for shard in loaded]
    assert sum(sizes) == len(index.ids) and max(sizes) - min(sizes) <= 1
    vectors, ids, hashes = merge_shards(loaded)
    assert ids == index.ids and hashes == index.hashes
    assert (vectors == index.vectors).all()
    with pytest.raises(ValueError, match="not empty"):
        split_index(index, shards, 2)


def test_split_on_the_command_line(index_dir, tmp_path, capsys):
    from indexer.__main__ import main

    out = str(tmp_path / "s")
    assert main(["split", "--index", str(index_dir), "--shards", "2", "--out", out]) == 0
    assert "wrote 2 shards" in capsys.readouterr().out
    assert len(load_shards(tmp_path / "s")) == 2
    none = str(tmp_path / "t")
    assert main(["split", "--index", str(index_dir), "--shards", "0", "--out", none]) == 2
    assert "--shards must be between 1 and 23" in capsys.readouterr().err


def test_shards_answers_merge_by_score_per_query():
    a = Found([[("a1", 0.9), ("a2", 0.2)], [("a3", 0.1)]], True, "va")
    b = Found([[("b1", 0.5)], [("b2", 0.7), ("b3", 0.05)]], False, "vb")
    merged = merge_found([a, b], 2)
    assert merged.hits == [[("a1", 0.9), ("b1", 0.5)], [("b2", 0.7), ("a3", 0.1)]]
    assert not merged.exact and merged.version == "va,vb"


def searcher_of(index) -> SearchIndex:
    return SearchIndex(index, cache_bytes=0)


def test_shards_feature_extremes_and_vectors_merge_into_the_whole_gallerys(index_dir, shards):
    whole = searcher_of(load_index(index_dir))
    parts = [searcher_of(shard) for shard in load_shards(shards)]
    for feature, n in ((0, 4), (31, 23), (7, 1)):
        merged = merge_extremes([part.feature_extremes(feature, n) for part in parts], n)
        assert merged == whole.feature_extremes(feature, n)
    vectors, ids = whole.gallery_vectors()
    pieces = [part.gallery_vectors() for part in parts]
    assert [item for _, part_ids in pieces for item in part_ids] == ids
    assert (np.concatenate([part_vectors for part_vectors, _ in pieces]) == vectors).all()
    assert all(any(part.holds(item) for part in parts) for item in ids)
    assert not any(part.holds("nope.png") for part in parts)


def test_shards_of_an_index_with_four_bit_codes_hold_their_own(tmp_path):
    from tests.search.test_core import write_vectors

    xb = np.random.default_rng(0).standard_normal((600, 16)).astype(np.float32)
    whole = write_vectors(tmp_path / "index", xb, four_bit="always")
    split_index(whole.index, tmp_path / "shards", 2)
    for shard in load_shards(tmp_path / "shards"):
        assert [budget.features for budget in shard.manifest.four_bit] == [16]
        assert shard.codes[16].ntotal == len(shard.ids) == 300
