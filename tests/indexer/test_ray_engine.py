"""`--engine ray` on a local Ray (2 CPUs): the same index as the single-process build, written as
shards that merge into it."""

import numpy as np
import pytest

from indexer.build import BuildConfig, build_index
from indexer.shards import load_shards, merge_shards
from models.checkpoint import SMALL_CNN_CHECKPOINT
from search.index_dir import load_index
from tests.helpers.commands import small_cnn_build

pytestmark = pytest.mark.slow  # a local Ray cluster


@pytest.fixture(scope="module")
def both_builds(gallery, tmp_path_factory, local_ray):
    from indexer.ray_engine import build_index_ray

    root = tmp_path_factory.mktemp("ray")
    config = BuildConfig(gallery=gallery, model=SMALL_CNN_CHECKPOINT, out=root / "local", keep=32)
    build_index(BuildConfig(**{**config.__dict__, "workers": 0}))
    ray_config = BuildConfig(**{**config.__dict__, "out": root / "ray", "batch_size": 4})
    summary = build_index_ray(ray_config, shard_size=7, keep_shards=True)
    return load_index(root / "local"), load_index(root / "ray"), root / "ray.shards", summary


def test_ray_build_equals_the_single_process_build(both_builds):
    local, distributed, _, summary = both_builds
    assert distributed.ids == local.ids
    assert distributed.hashes == local.hashes
    # torch actors against the local build's ONNX Runtime
    np.testing.assert_allclose(distributed.vectors, local.vectors, rtol=0, atol=1e-4)
    assert distributed.manifest.skipped == local.manifest.skipped  # the broken files
    assert len(local.manifest.skipped) == 2
    assert distributed.manifest.importance == local.manifest.importance
    assert distributed.manifest.build.engine == "ray"
    assert summary.count == len(local.ids) and summary.skipped == 2


def test_shards_are_complete_indexes_that_merge_into_the_index(both_builds):
    local, distributed, shards_root, _ = both_builds
    shards = load_shards(shards_root)
    files = len(local.ids) + len(local.manifest.skipped)
    assert len(shards) == -(-files // 7)  # 7 files a shard, the last one shorter
    assert [shard.manifest.build.shard for shard in shards] == list(range(len(shards)))
    vectors, ids, hashes = merge_shards(shards)
    assert ids == distributed.ids and hashes == distributed.hashes
    assert np.array_equal(vectors, distributed.vectors)


def test_the_command_line_can_leave_the_shards_unmerged(both_builds, gallery, tmp_path, capsys):
    from indexer.__main__ import main

    local = both_builds[0]
    out = tmp_path / "index"
    arguments = small_cnn_build(gallery, out, "--keep", "32")
    arguments += ["--engine", "ray", "--shard-size", "10", "--no-merge", "--batch-size", "8"]
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    assert "indexed 23 images, skipped 2" in printed and "3 shards in" in printed
    assert not out.exists()
    vectors, ids, _ = merge_shards(load_shards(tmp_path / "index.shards"))
    assert ids == local.ids
    np.testing.assert_allclose(vectors, local.vectors, rtol=0, atol=1e-5)

    local_build = small_cnn_build(gallery, tmp_path / "local")
    assert main([*local_build, "--no-merge", "--actors", "2"]) == 2
    assert "only --engine ray takes --actors, --no-merge" in capsys.readouterr().err
    assert not (tmp_path / "local").exists()


def test_a_cluster_address_nothing_answers_at_fails_at_once():
    from bench.http import free_port
    from indexer.ray_engine import _check_reachable

    with pytest.raises(ValueError, match=r"no Ray cluster answers at 127\.0\.0\.1"):
        _check_reachable(f"127.0.0.1:{free_port()}")
    with pytest.raises(ValueError, match="--address must be auto, HOST:PORT or ray://HOST:PORT"):
        _check_reachable("somewhere")
