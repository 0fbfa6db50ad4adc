"""`python -m service.cluster` on a real Ray cluster of two nodes on this machine: the same
answers as one `python -m service` over the merged index, and queries survive a shard replica
killed under them, and a new generation of shards rolls out with no failed or mixed answer."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import httpx
import pytest

from bench.http import running_cluster, wait_healthy
from indexer.build import BuildConfig, build_index
from indexer.shards import load_shards, split_index
from models.checkpoint import SMALL_CNN_CHECKPOINT
from search.index_dir import load_index

pytestmark = pytest.mark.slow  # a two-node Ray cluster and nine Serve replicas

NODES = 2
ADMIN = {"TRICL_ADMIN_KEY": "admin-key"}


@pytest.fixture(scope="module")
def shards(index_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster") / "shards"
    split_index(load_index(index_dir), root, 2)
    return root


@pytest.fixture(scope="module")
def nodes():
    """A Ray cluster of two nodes on this machine; yields its address."""
    started = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.ray_nodes", str(NODES)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield started.stdout.readline().strip()
    finally:
        started.stdin.close()
        started.wait(timeout=60)


@pytest.fixture(scope="module")
def cluster(shards, nodes):
    """The cluster command with 2 replicas per deployment, on two Ray nodes; yields its URL."""
    with running_cluster(shards, replicas=2, address=nodes, env=ADMIN) as url:
        yield url


def same_answer(ours: dict, theirs: dict) -> None:
    assert [r["id"] for r in ours["results"]] == [r["id"] for r in theirs["results"]]
    for mine, other in zip(ours["results"], theirs["results"], strict=True):
        assert mine["score"] == pytest.approx(other["score"], abs=1e-5)
    assert ours["exact"] == theirs["exact"]


@pytest.mark.parametrize(
    "params",
    [
        {"k_features": 2, "top_k": 23},
        {"k_features": 16},
        {"k_features": 32, "top_k": 5},
        {"k_features": 4, "rerank_features": 32, "shortlist": 6, "top_k": 4},
        {"k_features": 8, "under": "plain/"},
        {"k_features": 8, "min_score": 0.8, "top_k": 20},
    ],
)
def test_the_cluster_answers_like_one_service(cluster, live_server, gallery, params):
    for item in ("odd/rgba.png", "plain/item-03.png", "odd/scan.tiff"):
        upload = {"file": (item, (gallery / item).read_bytes())}
        one = httpx.post(f"{live_server}/search", params=params, files=upload, timeout=30).json()
        spread = httpx.post(f"{cluster}/search", params=params, files=upload, timeout=60)
        assert spread.status_code == 200, spread.text
        same_answer(spread.json(), one)


def test_batch_vector_similar_and_errors_are_the_services(cluster, live_server, gallery, index_dir):
    files = [("files", ("a.png", (gallery / "plain/item-01.png").read_bytes()))]
    files.append(("files", ("b.png", b"not an image")))
    one = httpx.post(f"{live_server}/search/batch", files=files, timeout=30).json()
    spread = httpx.post(f"{cluster}/search/batch", files=files, timeout=60).json()
    assert spread["results"] == one["results"]
    vector = load_index(index_dir).vectors[4].tolist()
    ours = httpx.post(f"{cluster}/search/vector", json={"vector": vector}, timeout=60).json()
    theirs = httpx.post(f"{live_server}/search/vector", json={"vector": vector}, timeout=30)
    same_answer(ours, theirs.json())
    similar = "/items/odd/name with spaces é.png/similar"
    same_answer(
        httpx.get(f"{cluster}{similar}", timeout=60).json(),
        httpx.get(f"{live_server}{similar}", timeout=30).json(),
    )
    for method, route, request in (
        ("POST", "/search", {"params": {"k_features": 99}, "files": files[:1]}),
        ("POST", "/search", {"params": {"under": "none"}, "files": files[:1]}),
        ("POST", "/search", {"files": files[1:]}),
        ("GET", "/items/nope.png/similar", {}),
        ("POST", "/search/vector", {"json": {"vector": [1.0]}, "params": {"k_features": 2}}),
    ):
        ours = httpx.request(method, f"{cluster}{route}", timeout=60, **request)
        theirs = httpx.request(method, f"{live_server}{route}", timeout=30, **request)
        assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json())
    info = httpx.get(f"{cluster}/info", timeout=30).json()
    assert info["count"] == 23 and len(info["shards"]) == 2
    health = httpx.get(f"{cluster}/health", timeout=30).json()
    assert health["status"] == "ok"
    assert {name: state["replicas"] for name, state in health["deployments"].items()} == {
        name: {"RUNNING": 2} for name in ("ClusterIngress", "shard-0", "shard-1")
    }


def test_gallery_routes_and_the_page_are_the_services(cluster, live_server):
    """Images, thumbnails, near-duplicate groups across shards, feature examples merged from
    every shard, the page, and their errors: byte for byte what one service answers (the
    index version aside: the cluster's names each shard's). An admin reload is refused with
    the command that rolls out a new index."""
    routes = [
        "/",
        "/items/plain/item-03.png",
        "/items/odd/name with spaces é.png?size=64",
        "/items/odd/scan.tiff?size=16",
        "/duplicates?threshold=0.9",
        "/duplicates?threshold=0.95&k_features=4",
        "/features/1/examples?n=4",
        "/features/32/examples?n=50",
        "/items/nope.png",
        "/items/%2e%2e/%2e%2e/etc/passwd?size=32",
        "/items/plain/item-03.png?size=9000",
        "/duplicates?threshold=2",
        "/features/33/examples",
    ]
    for route in routes:
        ours = httpx.get(f"{cluster}{route}", timeout=120)
        theirs = httpx.get(f"{live_server}{route}", timeout=60)
        assert ours.status_code == theirs.status_code, route
        assert ours.headers["content-type"] == theirs.headers["content-type"], route
        if ours.headers["content-type"] != "application/json":
            assert ours.content == theirs.content, route
            continue
        mine, other = ours.json(), theirs.json()
        if "index_version" in other:
            assert mine.pop("index_version") != other.pop("index_version")
        assert mine == other, route
    refused = httpx.post(f"{cluster}/admin/reload", timeout=30)
    assert refused.status_code == 401 and "admin key" in refused.json()["detail"]
    kept = httpx.post(f"{cluster}/admin/reload", headers={"X-Admin-Key": "admin-key"}, timeout=30)
    assert kept.status_code == 409
    assert "python -m service.cluster --shards NEW_FOLDER" in kept.json()["detail"]
    groups = httpx.get(f"{cluster}/duplicates", params={"threshold": 0.9}, timeout=60).json()
    assert groups["groups"], "the test gallery has near-duplicates at 0.9"
    examples = httpx.get(f"{cluster}/features/1/examples", params={"n": 50}, timeout=60).json()
    assert len(examples["highest"]) == 23  # every item, from both shards


def replica_pids(deployment: str) -> list[int]:
    """Replica processes of a deployment; Ray appends the method a replica is running (its
    health check, a request) to the process title while it runs."""
    listed = subprocess.run(
        ["pgrep", "-f", rf"ServeReplica:tricl-[0-9a-f]+:{deployment}(\.[A-Za-z_()]+)?$"],
        capture_output=True,
        text=True,
    )
    return [int(pid) for pid in listed.stdout.split()]


@contextmanager
def queries_meanwhile(url: str, image: bytes):
    """Searches one after another in a thread while the block runs; yields the list their
    answers go into: (status, the index version or the error's sentence)."""
    stop = threading.Event()
    answers: list[tuple[int, str]] = []

    def ask() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                response = client.post(
                    f"{url}/search", params={"k_features": 8}, files={"file": image}
                )
                body = response.json()
                answers.append(
                    (response.status_code, body.get("index_version", body.get("detail")))
                )

    worker = threading.Thread(target=ask)
    worker.start()
    try:
        yield answers
    finally:
        stop.set()
        worker.join(timeout=120)


def test_a_killed_shard_replica_is_replaced_without_failed_queries(cluster, gallery):
    pids = replica_pids("shard-1")
    assert len(pids) == 2
    # Ray's default would be nice 15: starved beside any normal-priority work.
    assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in pids} == {0}
    with queries_meanwhile(cluster, (gallery / "plain/item-02.png").read_bytes()) as answers:
        os.kill(pids[0], signal.SIGKILL)
        wait_for(
            lambda: len(replica_pids("shard-1")) == 2 and pids[0] not in replica_pids("shard-1")
        )
        wait_healthy(cluster, timeout=120)
    assert len(answers) > 5 and {status for status, _ in answers} == {200}


def test_with_no_replica_left_queries_get_503_with_a_sentence(cluster, gallery):
    image = (gallery / "plain/item-02.png").read_bytes()
    with queries_meanwhile(cluster, image) as answers:
        for pid in replica_pids("shard-0"):
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: len(replica_pids("shard-0")) == 2)
        wait_healthy(cluster, timeout=180)
        final = httpx.post(f"{cluster}/search", files={"file": image}, timeout=60)
        assert final.status_code == 200
    refused = [detail for status, detail in answers if status != 200]
    assert {status for status, _ in answers} <= {200, 503}  # never a 500 or a hang
    assert all("did not answer" in detail and "retry shortly" in detail for detail in refused)


def wait_for(condition, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_a_new_generation_rolls_out_without_failed_or_mixed_answers(
    cluster, nodes, shards, gallery, tmp_path
):
    smaller = tmp_path / "gallery"
    shutil.copytree(gallery, smaller)
    for item in ("plain/item-00.png", "plain/item-01.png", "odd/bitmap.bmp"):
        (smaller / item).unlink()
    rebuilt = tmp_path / "index"
    build_index(BuildConfig(gallery=smaller, model=SMALL_CNN_CHECKPOINT, out=rebuilt, keep=32))
    new_shards = tmp_path / "shards"
    split_index(load_index(rebuilt), new_shards, 2)
    old_version = httpx.get(f"{cluster}/info", timeout=30).json()["index_version"]
    new_version = ",".join(shard.version for shard in load_shards(new_shards))

    port = cluster.rsplit(":", 1)[1]
    command = [sys.executable, "-m", "service.cluster", "--shards", str(new_shards)]
    # One replica each: the last test of the module, and half the processes to start.
    command += ["--address", nodes, "--replicas", "1", "--port", port]
    with queries_meanwhile(cluster, (gallery / "plain/item-05.png").read_bytes()) as answers:
        rolled = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rolled.returncode == 0, rolled.stderr[-2000:]
    assert "rolled out tricl-" in rolled.stdout
    assert {status for status, _ in answers} == {200}
    assert {version for _, version in answers} <= {old_version, new_version}
    assert len(answers) > 10 and (200, new_version) in answers
    info = httpx.get(f"{cluster}/info", timeout=30).json()
    assert info["count"] == 20 and info["index_version"] == new_version
    query = {"file": (gallery / "odd/la.png").read_bytes()}
    after = httpx.post(f"{cluster}/search", files=query, timeout=60)
    assert after.json()["index_version"] == new_version
