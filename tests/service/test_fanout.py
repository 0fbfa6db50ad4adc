"""A gallery split into shards, each served by its own `python -m service`, behind
`python -m service.fanout`: the same answers as one service over the whole index."""

import subprocess
import sys

import httpx
import pytest
from fastapi.testclient import TestClient

from bench.http import free_port, running_services, wait_healthy
from indexer.index_dir import load_index
from indexer.shards import load_shards, merge_shards, split_index
from service.fanout import create_fanout_app, merge_answers

pytestmark = pytest.mark.slow  # four real services


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

    assert (
        main(["split", "--index", str(index_dir), "--shards", "2", "--out", str(tmp_path / "s")])
        == 0
    )
    assert "wrote 2 shards" in capsys.readouterr().out
    assert len(load_shards(tmp_path / "s")) == 2
    assert (
        main(["split", "--index", str(index_dir), "--shards", "0", "--out", str(tmp_path / "t")])
        == 2
    )
    assert "--shards must be between 1 and 23" in capsys.readouterr().err


def test_merge_answers_ranks_by_score_across_shards():
    a = {"results": [{"rank": 1, "id": "a1", "score": 0.9}, {"rank": 2, "id": "a2", "score": 0.2}]}
    b = {"results": [{"rank": 1, "id": "b1", "score": 0.5}]}
    assert merge_answers([a, b], 2) == [
        {"rank": 1, "id": "a1", "score": 0.9},
        {"rank": 2, "id": "b1", "score": 0.5},
    ]


@pytest.fixture(scope="module")
def fanout(shards, index_dir):
    with running_services(sorted(shards.glob("shard-*")), {}) as started:
        shard_urls = [url for url, _ in started]
        port = free_port()
        command = [sys.executable, "-m", "service.fanout", "--port", str(port)]
        for url in shard_urls:
            command += ["--shard", url]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process=process, timeout=60)
            yield url, shard_urls
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_the_fanout_answers_like_one_service_over_the_whole_index(
    fanout, live_server, gallery, index_dir
):
    url, _ = fanout
    index = load_index(index_dir)
    for item in index.ids[::4]:
        image = (gallery / item).read_bytes()
        for k_features in (4, 16, 32):
            params = {"k_features": k_features, "top_k": 8}
            merged = httpx.post(
                f"{live_server}/search", params=params, files={"file": image}, timeout=30
            ).json()
            sharded = httpx.post(f"{url}/search", params=params, files={"file": image}, timeout=30)
            assert sharded.status_code == 200, sharded.text
            answer = sharded.json()
            assert answer["shards"] == 3 and answer["exact"]
            assert [r["id"] for r in answer["results"]] == [r["id"] for r in merged["results"]]
            for ours, theirs in zip(answer["results"], merged["results"], strict=True):
                assert ours["score"] == pytest.approx(theirs["score"], abs=1e-5)


def test_a_folder_and_a_floor_pass_through_even_where_a_shard_has_none(
    fanout, live_server, gallery
):
    url, _ = fanout
    image = (gallery / "odd/rgba.png").read_bytes()
    for params in ({"under": "odd/", "top_k": 20}, {"under": "plain", "min_score": 0.5}):
        merged = httpx.post(f"{live_server}/search", params=params, files={"file": image}).json()
        sharded = httpx.post(f"{url}/search", params=params, files={"file": image})
        assert sharded.status_code == 200, sharded.text
        answer = sharded.json()
        assert answer["under"] == merged["under"] and answer["min_score"] == merged["min_score"]
        assert [r["id"] for r in answer["results"]] == [r["id"] for r in merged["results"]]
    nowhere = httpx.post(f"{url}/search", params={"under": "none/"}, files={"file": image})
    assert nowhere.status_code == 404 and "under 'none/'" in nowhere.json()["detail"]


def test_the_fanout_passes_bad_requests_back_and_reports_shards_down(fanout, gallery):
    url, shard_urls = fanout
    image = next(gallery.glob("plain/*.png")).read_bytes()
    too_wide = httpx.post(f"{url}/search", params={"k_features": 33}, files={"file": image})
    assert too_wide.status_code == 422 and "k_features" in too_wide.json()["detail"]
    assert httpx.post(f"{url}/search", files={"file": b"not an image"}).status_code == 400
    assert httpx.post(f"{url}/search").status_code == 422
    health = httpx.get(f"{url}/health").json()
    assert health == {"status": "ok", "shards": 3}

    dead = f"http://127.0.0.1:{free_port()}"
    with TestClient(create_fanout_app([shard_urls[0], dead], timeout=5)) as client:
        down = client.get("/health")
        assert down.status_code == 503 and down.json()["shards_down"] == [dead]
        failed = client.post("/search", files={"file": image})
        assert failed.status_code == 502 and "did not answer" in failed.json()["detail"]
