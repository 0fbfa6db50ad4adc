"""An index cut into shards: each a complete index, together the index row for row; and the
merge of shards' answers (service.searcher) that serving them relies on."""

import pytest

from indexer.index_dir import load_index
from indexer.shards import load_shards, merge_shards, split_index
from service.searcher import Found, merge_found


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
