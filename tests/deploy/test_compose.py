"""The compose deployment for real, with podman: build the image, index a gallery with the
one-shot indexer, serve it, search through the published port, rebuild and hot-reload, tear down.

Needs podman (scripts/container-engine sets it up; scripts/test.sh runs it) and podman-compose
(in the test extra).
The images are built in the background while the rest of the suite runs (image_builds.py).
Deselect with `pytest -m "not container"`.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from bench.http import free_port, wait_healthy
from tests.deploy.deployment_files import COMPOSE_FILE, ROOT, SCALE_FILE
from tests.deploy.image_builds import BUILDS, TAG
from tests.helpers.images import garment

pytestmark = pytest.mark.container

PODMAN_COMPOSE = Path(sys.executable).with_name("podman-compose")  # from the test extra
ADMIN_KEY = "deploy-test-admin"
MEASURES = ROOT / "artifacts" / "deploy.json"


def podman(*arguments: str, timeout: float = 120, check: bool = True, env=None):
    result = subprocess.run(
        ["podman", *arguments], capture_output=True, text=True, timeout=timeout, env=env
    )
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def write_images(folder: Path, seeds: range) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        Image.fromarray(np.stack([garment(seed)] * 3, axis=-1)).save(folder / f"item-{seed}.png")


@pytest.fixture(scope="module")
def measures():
    found: dict = {}
    yield found
    MEASURES.parent.mkdir(exist_ok=True)
    MEASURES.write_text(json.dumps(found, indent=2) + "\n")


@pytest.fixture(scope="module")
def images(measures: dict) -> None:
    try:
        built = BUILDS.wait()  # started when collection finished (tests/conftest.py)
    except RuntimeError as error:
        pytest.fail(str(error))
    indexer, service = built["tricl-retrieval"], built["tricl-retrieval-service"]
    balancer = built["tricl-retrieval-lb"]
    # Seconds while other tests ran beside the build: an upper bound on a build alone.
    measures["build_seconds"], measures["image_bytes"] = indexer.seconds, indexer.size_bytes
    measures["service_build_seconds"] = service.seconds
    measures["service_image_bytes"] = service.size_bytes
    measures["lb_build_seconds"], measures["lb_image_bytes"] = balancer.seconds, balancer.size_bytes


def test_the_service_image_is_a_fraction_of_the_indexer_image(images, measures):
    # Without torch: at most 40% of the 1.54 GB single image the service ran in before.
    assert measures["service_image_bytes"] < 0.4 * 1.54e9
    assert measures["service_image_bytes"] < 0.4 * measures["image_bytes"]


@pytest.fixture(scope="module")
def deployment(images: None, tmp_path_factory: pytest.TempPathFactory):
    """A compose project of its own (own volume and network), removed with `down -v` at the end."""
    root = tmp_path_factory.mktemp("deploy")
    gallery = root / "gallery"
    write_images(gallery / "first", range(12))
    env_file = root / "service.env"
    env_file.write_text(f"TRICL_ADMIN_KEY={ADMIN_KEY}\nTRICL_MAX_TOP_K=50\n")
    project = f"tricltest{os.getpid()}"
    environment = {
        **os.environ,
        "GALLERY_DIR": str(gallery),
        "PUBLISH_PORT": str(free_port()),
        "IMAGE_TAG": TAG,
        "ENV_FILE": str(env_file),
        "INDEX_WORKERS": "1",
    }

    def compose(*arguments: str, scaled: bool = False) -> subprocess.CompletedProcess:
        files = [COMPOSE_FILE, SCALE_FILE] if scaled else [COMPOSE_FILE]
        return subprocess.run(
            [
                str(PODMAN_COMPOSE),
                *(f"--file={path}" for path in files),
                f"--project-name={project}",
                *arguments,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=environment,
            cwd=ROOT,
        )

    try:
        yield {
            "compose": compose,
            "gallery": gallery,
            "project": project,
            "url": f"http://127.0.0.1:{environment['PUBLISH_PORT']}",
        }
    finally:
        compose("down", "--volumes", scaled=True)
        left = podman("volume", "ls", "--format", "{{.Name}}", check=False).stdout.split()
        assert not [name for name in left if name.startswith(project)], "down -v left volumes"


def run_indexer(deployment: dict, *command: str) -> str:
    """The one-shot indexer: its own command (build), or `command` instead, as the README does."""
    result = deployment["compose"]("--profile", "indexer", "run", "--rm", "indexer", *command)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


UPDATE = ("python", "-m", "indexer", "update", "--gallery", "/gallery", "--out", "/data/index")


def api_containers(project: str) -> list[str]:
    names = podman(
        "ps", "--filter", f"label=io.podman.compose.project={project}", "--format", "{{.Names}}"
    ).stdout.split()
    return sorted(name for name in names if "_api_" in name)


def search(url: str, image: Path, k_features: int) -> dict:
    response = httpx.post(
        f"{url}/search",
        params={"k_features": k_features, "top_k": 5},
        files={"file": (image.name, image.read_bytes(), "image/png")},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_index_serve_search_rebuild_and_reload(deployment: dict, measures: dict):
    url, gallery = deployment["url"], deployment["gallery"]
    assert "indexed 12 images" in run_indexer(deployment)

    started = time.monotonic()
    result = deployment["compose"]("up", "-d", "api")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_healthy(url, timeout=180)
    measures["up_to_healthy_seconds"] = round(time.monotonic() - started, 2)
    (container,) = api_containers(deployment["project"])
    assert podman("healthcheck", "run", container, check=False).returncode == 0
    assert podman("exec", container, "id", "-u").stdout.strip() != "0"

    query = gallery / "first" / "item-3.png"
    answer = search(url, query, k_features=8)
    assert answer["k_features"] == 8 and answer["exact"]
    assert [hit["rank"] for hit in answer["results"]] == [1, 2, 3, 4, 5]
    assert answer["results"][0]["id"] == "first/item-3.png"
    info = httpx.get(f"{url}/info", timeout=10).json()
    assert info["count"] == 12
    too_many = httpx.post(  # TRICL_MAX_TOP_K=50 came from the env file
        f"{url}/search", params={"top_k": 51}, files={"file": query.read_bytes()}, timeout=30
    )
    assert too_many.status_code == 422 and "50" in too_many.json()["detail"]
    thumbnail = httpx.get(f"{url}/items/first/item-3.png", params={"size": 32}, timeout=10)
    assert thumbnail.status_code == 200  # the gallery volume is there for the page

    # The gallery grows: update the index with the one-shot indexer, reload without a restart.
    write_images(gallery / "second", range(100, 104))
    assert "16 images (12 unchanged, 4 embedded, 0 removed" in run_indexer(deployment, *UPDATE)
    assert httpx.get(f"{url}/info", timeout=10).json()["count"] == 12  # still the old one
    reload = deployment["compose"]("exec", "api", "python", "-m", "service.control", "reload")
    assert reload.returncode == 0, reload.stdout + reload.stderr
    assert httpx.get(f"{url}/info", timeout=10).json()["count"] == 16
    new = search(url, gallery / "second" / "item-101.png", k_features=16)
    assert new["results"][0]["id"] == "second/item-101.png"
    assert new["index_version"] != answer["index_version"]


def test_replicas_behind_the_load_balancer_share_the_index(deployment: dict):
    """docker/compose.scale.yml: two api replicas, nginx in front, one read-only index volume."""
    url, gallery = deployment["url"], deployment["gallery"]
    deployment["compose"]("down")  # the single api gives its port to the load balancer
    result = deployment["compose"]("up", "-d", scaled=True)
    assert result.returncode == 0, result.stdout + result.stderr
    wait_healthy(url, timeout=180)
    replicas = api_containers(deployment["project"])
    assert len(replicas) == 2
    for replica in replicas:  # both answer before the load balancer's spread is sampled
        deadline = time.monotonic() + 180
        while podman("healthcheck", "run", replica, check=False).returncode != 0:
            assert time.monotonic() < deadline, f"{replica} did not become healthy"
            time.sleep(0.5)
    # nginx skips a replica for 2 s after it refused a connection at start
    wait_healthy(url, timeout=180)
    served_by = set()
    deadline = time.monotonic() + 10  # longer than nginx skips a replica that refused at start
    while len(served_by) < 2 and time.monotonic() < deadline:
        response = httpx.get(f"{url}/info", timeout=10)
        assert response.status_code == 200, response.text
        served_by.add(response.headers["X-Served-By"])
        count = response.json()["count"]
        time.sleep(0.05)
    assert len(served_by) == 2, f"one replica answered everything: {served_by}"

    write_images(gallery / "third", range(200, 202))
    run_indexer(deployment, *UPDATE)
    for number in (1, 2):  # each replica loads the new index itself
        reload = deployment["compose"](
            "exec",
            "--index",
            str(number),
            "api",
            "python",
            "-m",
            "service.control",
            "reload",
            scaled=True,
        )
        assert reload.returncode == 0, reload.stdout + reload.stderr
    counts = {httpx.get(f"{url}/info", timeout=10).json()["count"] for _ in range(10)}
    assert counts == {count + 2}
    answer = search(url, gallery / "third" / "item-201.png", k_features=8)
    assert answer["results"][0]["id"] == "third/item-201.png"
