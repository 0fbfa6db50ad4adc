"""The README's commands work when pasted: every ```bash block runs, in order, in one shell,
against a demo service as `scripts/demo.sh` leaves it (a folder holding imgs/ and index/
built with the demo's model, the service on a port, .venv beside them). Blocks fenced ```sh are
shown only: setting up, long training, servers that do not return."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from bench.http import running_service
from indexer.build import BuildConfig, build_index
from indexer.demo import write_demo_gallery
from models.checkpoint import FASHION_MNIST_CHECKPOINT

pytestmark = pytest.mark.slow  # a real service

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
DEMO_PORT = "localhost:8000"
MARK = "=== README block"


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def test_the_readme_shows_commands_that_are_run_here():
    blocks = bash_blocks(README.read_text())
    assert len(blocks) >= 2
    assert any("source .venv/bin/activate" in block for block in blocks)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A folder laid out as the demo leaves the repository: imgs/, index/ and .venv."""
    folder = tmp_path_factory.mktemp("demo")
    write_demo_gallery(folder / "imgs", split="test", count=200)
    build_index(
        BuildConfig(
            gallery=folder / "imgs", model=FASHION_MNIST_CHECKPOINT, out=folder / "index", workers=0
        )
    )
    (folder / ".venv").symlink_to(ROOT / ".venv")
    return folder


def test_every_bash_block_of_the_readme_runs_against_the_demo(demo: Path):
    """In one shell, as a reader pastes them one after another."""
    blocks = bash_blocks(README.read_text())
    with running_service(demo / "index", {}) as (url, _):
        port = url.rsplit(":", 1)[1]
        script = "".join(f"echo '{MARK} {number}'\n{block}" for number, block in enumerate(blocks))
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script.replace(DEMO_PORT, f"localhost:{port}")],
            cwd=demo,
            capture_output=True,
            text=True,
            timeout=300,
            # The client's default address is the demo's; TRICL_URL moves it to this port.
            env={**os.environ, "TRICL_URL": url},
        )
    assert result.returncode == 0, f"failed:\n{result.stdout}\n{result.stderr}"
    answers = result.stdout.split(MARK)[1:]
    assert len(answers) == len(blocks)
    for block, answer in zip(blocks, answers, strict=True):
        printed = answer.split("\n", 1)[1].strip()
        assert printed, f"{block}\nprinted nothing"
        assert "error" not in printed.lower(), f"{block}\nanswered:\n{printed}"
