"""Shared fixtures: a small generated gallery in many formats, an index built from it, a
running service and a local Ray. The images themselves come from tests/helpers/images.py."""

from pathlib import Path

import pytest

from bench.http import running_service
from indexer.build import BuildConfig, build_index
from models.checkpoint import SMALL_CNN_CHECKPOINT
from tests.helpers.images import write_gallery


@pytest.fixture(scope="session")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gallery")
    write_gallery(root)
    return root


@pytest.fixture(scope="session")
def index_dir(gallery: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("built") / "index"
    build_index(
        BuildConfig(gallery=gallery, model=SMALL_CNN_CHECKPOINT, out=out, keep=32, workers=0)
    )
    return out


@pytest.fixture(scope="session")
def live_server(index_dir: Path):
    """`python -m service` on a free loopback port, serving the test index; yields its URL."""
    with running_service(index_dir, {}) as (url, _):
        yield url


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray on two CPUs, shared by the tests of the Ray engine and its benchmark."""
    import ray  # the ray extra is part of the test extra

    # Its own Ray: never the cluster another test process may have started on this machine.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.hookimpl(trylast=True)  # after `-m "not container"` has deselected them
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Container tests last, their image builds started now: the builds overlap the rest."""
    container = [item for item in items if item.get_closest_marker("container")]
    if container:
        from tests.deploy.image_builds import BUILDS

        items[:] = [item for item in items if item not in container] + container
        BUILDS.start()
