"""Index updates, and builds killed at any moment: the previous index always survives."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from indexer.__main__ import main
from models.checkpoint import SMALL_CNN_CHECKPOINT
from search.index_dir import load_index
from tests.helpers.commands import small_cnn_build
from tests.helpers.disk import small_disk
from tests.helpers.images import garment


def write(root, relative, seed):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(garment(seed)).save(path)


@pytest.fixture
def built(tmp_path):
    gallery, out = tmp_path / "gallery", tmp_path / "index"
    for i in range(12):
        write(gallery, f"a/item-{i:02d}.png", i)
    assert main(small_cnn_build(gallery, out, "--workers", "0")) == 0
    return gallery, out


def test_update_embeds_only_new_and_changed_files_and_keeps_the_rest_bit_identical(built, capsys):
    gallery, out = built
    before = load_index(out)
    (gallery / "a/item-03.png").unlink()  # deleted
    write(gallery, "a/item-05.png", 500)  # changed content, same name
    write(gallery, "b/new.png", 501)  # added
    capsys.readouterr()
    assert main(["update", "--gallery", str(gallery), "--out", str(out), "--workers", "0"]) == 0
    assert "(10 unchanged, 2 embedded, 1 removed, 0 skipped)" in capsys.readouterr().out
    after = load_index(out)
    assert "a/item-03.png" not in after.ids and "b/new.png" in after.ids
    for item in before.ids:
        if item in ("a/item-03.png", "a/item-05.png"):
            continue
        old_row, new_row = (
            before.vectors[before.ids.index(item)],
            after.vectors[after.ids.index(item)],
        )
        assert old_row.tobytes() == new_row.tobytes()  # bit for bit, not re-embedded
    changed = after.vectors[after.ids.index("a/item-05.png")]
    assert not np.array_equal(changed, before.vectors[before.ids.index("a/item-05.png")])
    assert after.hashes[after.ids.index("a/item-05.png")] != before.hashes[5]


def test_update_of_an_unchanged_gallery_embeds_nothing(built, capsys):
    gallery, out = built
    capsys.readouterr()
    assert main(["update", "--gallery", str(gallery), "--out", str(out), "--workers", "0"]) == 0
    assert "(12 unchanged, 0 embedded, 0 removed, 0 skipped)" in capsys.readouterr().out


def test_update_needs_an_index_to_update(tmp_path, capsys):
    (tmp_path / "g").mkdir()
    code = main(["update", "--gallery", str(tmp_path / "g"), "--out", str(tmp_path / "none")])
    assert code == 2 and "is not an index directory" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("command", ["build", "update"])
def test_killing_a_build_at_any_moment_leaves_a_loadable_index(built, tmp_path, command):
    gallery, out = built
    before = set(load_index(out).ids)
    replacement = tmp_path / "replacement"
    shutil.copytree(gallery, replacement)
    for i in range(12, 40):
        write(replacement, f"c/item-{i:02d}.png", i)
    after_ids = None
    arguments = [sys.executable, "-m", "indexer", command, "--gallery", str(replacement)]
    arguments += ["--out", str(out), "--workers", "0"]
    arguments += ["--model", str(SMALL_CNN_CHECKPOINT)] if command == "build" else []
    started = time.monotonic()
    subprocess.run(arguments, check=True, capture_output=True)  # how long a whole run takes
    duration = time.monotonic() - started
    after_ids = set(load_index(out).ids)
    assert after_ids != before
    # Back to the old gallery's index, then kill runs towards the new one at spread-out moments.
    assert main(small_cnn_build(gallery, out, "--workers", "0")) == 0
    outcomes = []
    for fraction in (0.2, 0.4, 0.6, 0.75, 0.85, 0.9, 0.95, 1.0):
        process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(duration * fraction)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        ids = set(load_index(out).ids)  # loads, checksums verified
        assert ids in (before, after_ids)
        outcomes.append("new" if ids == after_ids else "old")
        if ids == after_ids:
            assert main(small_cnn_build(gallery, out, "--workers", "0")) == 0
    print(f"{command}: killed at 8 moments, index afterwards: {outcomes}")
    # The next build clears what killed runs left behind.
    assert main(small_cnn_build(gallery, out, "--workers", "0")) == 0
    assert not list(out.parent.glob(".index.building-*"))


@pytest.mark.slow
def test_a_full_disk_fails_in_one_line_and_keeps_the_old_index(gallery, tmp_path):
    with small_disk(tmp_path / "small-disk", "size=8m") as disk:
        out = disk / "index"
        arguments = small_cnn_build(gallery, out, "--workers", "0")
        assert main([*arguments, "--keep", "8"]) == 0
        before = load_index(out)
        free = shutil.disk_usage(disk).free
        with open(disk / "filler", "wb") as stream:
            stream.write(b"\0" * (free - 64 * 1024))  # leaves too little for a second index
        result = subprocess.run(
            [sys.executable, "-m", "indexer", *arguments, "--keep", "32"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 2
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert errors == [f"error: could not write the index in {disk}: No space left on device"]
        assert "Traceback" not in result.stderr
        after = load_index(out)
        assert after.keep == 8 and after.ids == before.ids  # the old index, whole
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "index"]  # no staging left


@pytest.mark.slow
def test_a_read_only_disk_fails_in_one_line(gallery, tmp_path):
    with small_disk(tmp_path / "read-only", "size=1m,ro") as disk:
        result = subprocess.run(
            [sys.executable, "-m", "indexer", "build", "--model", str(SMALL_CNN_CHECKPOINT),
             "--gallery", str(gallery), "--out", str(disk / "index"), "--workers", "0"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            f"error: Read-only file system: {disk / 'index.lock'}"
        ]
