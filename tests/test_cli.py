"""Every command line answers --help without loading torch, Ray, FAISS, ONNX Runtime, SciPy,
matplotlib or the service app, and a second writer of an index is refused before any of them
loads: each is imported by the command that needs it."""

import json
import os
import subprocess
import sys

import pytest

import indexer.__main__ as indexer_cli
import models.__main__ as models_cli
from indexer.build import BuildConfig
from indexer.duplicates import DEFAULT_FEATURES, DEFAULT_THRESHOLD
from indexer.lock import writer_lock
from models.losses import LOSSES
from models.train import TrainConfig
from search.four_bit import FOUR_BIT_MODES
from tests.helpers.commands import COMMANDS, MEASUREMENTS, ROOT

HEAVY = ("torch", "ray", "faiss", "onnxruntime", "scipy", "matplotlib", "service.app")

# Runs `python -m COMMAND ARGS...` in this interpreter as `python -m` would, then prints on its
# last line the exit status and which of the heavy modules were loaded by then.
PROBE = """
import json, runpy, sys
command, heavy = sys.argv[1], sys.argv[2].split(",")
sys.argv = [command, *sys.argv[3:]]
try:
    runpy.run_module(command, run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as exit:
    code = exit.code or 0
print(json.dumps({"code": code, "loaded": [name for name in heavy if name in sys.modules]}))
"""


def run_command(command: str, *arguments: str) -> tuple[dict, subprocess.CompletedProcess]:
    """The probe's report and the finished process. The timeout only stops a hung run: how
    long --help takes on a quiet machine is measured, not asserted (a busy one varies)."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, command, ",".join(HEAVY), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), result


def test_every_benchmark_with_a_main_is_covered():
    assert {"evaluation.evaluate", "evaluation.compare", "bench.scaling"} <= set(MEASUREMENTS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_answers_without_loading_anything_heavy(command):
    report, result = run_command(command, "--help")
    assert report["code"] == 0, result.stderr
    assert f"usage: python -m {command}" in result.stdout
    assert report["loaded"] == []


def test_a_second_writer_is_refused_in_one_line_before_anything_heavy_loads(tmp_path):
    out, gallery = tmp_path / "index", tmp_path / "gallery"
    gallery.mkdir()
    with writer_lock(out):  # this process is the first writer
        report, result = run_command(
            "indexer", "build", "--gallery", str(gallery), "--out", str(out)
        )
    assert report["code"] == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"is being written by process {os.getpid()}" in lines[0] and "--wait" in lines[0]
    assert report["loaded"] == []
    assert not out.exists()


def test_the_indexer_command_line_has_the_library_defaults():
    """The command line repeats them so as not to import the modules that define them."""
    for name, value in indexer_cli.BUILD_DEFAULTS.items():
        assert getattr(BuildConfig, name) == value, name
    assert indexer_cli.FOUR_BIT_MODES == FOUR_BIT_MODES
    assert indexer_cli.DUPLICATE_THRESHOLD == DEFAULT_THRESHOLD
    assert indexer_cli.DUPLICATE_FEATURES == DEFAULT_FEATURES


def test_the_training_command_line_has_the_library_defaults():
    for name, value in models_cli.TRAIN_DEFAULTS.items():
        assert getattr(TrainConfig, name) == value, name
    assert set(models_cli.LOSS_NAMES) == set(LOSSES)
