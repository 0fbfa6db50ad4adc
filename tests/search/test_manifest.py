"""manifest.json: read into one typed record, written back the same, every problem named."""

import dataclasses
import json
import shutil
import subprocess
import sys

import pytest

from indexer.__main__ import main
from search.index_dir import load_index, load_index_model
from search.manifest import INDEX_FORMAT, MANIFEST_FILE, BuildRecord, read_manifest
from tests.helpers.indexes import older_format_copy


def with_document(index_dir, out, change):
    """A copy of the index whose manifest.json is the JSON object `change` makes of it."""
    shutil.copytree(index_dir, out)
    document = read_manifest(index_dir).to_document()
    change(document)
    (out / MANIFEST_FILE).write_text(json.dumps(document))
    return out


def test_a_manifest_reads_back_as_written_under_the_contracts_names(index_dir):
    manifest = read_manifest(index_dir)
    assert manifest == load_index(index_dir).manifest
    assert (index_dir / MANIFEST_FILE).read_text() == manifest.to_json()
    document = json.loads(manifest.to_json())
    contract = {"format", "model", "keep", "count", "importance", "created", "skipped"}
    assert contract <= set(document) and document["format"] == INDEX_FORMAT == 3
    assert {"four_bit", "checksums", "gallery", "metric", "build"} <= set(document)


def test_every_build_figure_is_written_and_read_back(index_dir, tmp_path):
    figures = BuildRecord(
        engine="ray", seconds=1.5, images_per_second=2.5, embedded=3, reused=0, device="cpu",
        runtime="torch", batch_size=4, index_seconds=0.0, four_bit="always", actors=5, shard=0,
        shards=6,
    )  # fmt: skip
    assert None not in dataclasses.asdict(figures).values()
    out = tmp_path / "index"
    shutil.copytree(index_dir, out)
    written = dataclasses.replace(read_manifest(index_dir), build=figures)
    (out / MANIFEST_FILE).write_text(written.to_json())
    assert read_manifest(out).build == figures


def test_an_older_format_is_refused_with_the_command_that_rebuilds_it(index_dir, tmp_path):
    old = older_format_copy(index_dir, tmp_path / "old")
    sentence = (
        "index format 1 is no longer read: rebuild it with "
        f"python -m indexer build --gallery GALLERY --out {old}"
    )
    for load in (read_manifest, load_index, load_index_model):
        with pytest.raises(ValueError) as refused:
            load(old)
        assert str(refused.value) == sentence


def test_updating_an_index_of_an_older_format_names_the_rebuild(
    index_dir, gallery, tmp_path, capsys
):
    old = older_format_copy(index_dir, tmp_path / "old")
    assert main(["update", "--gallery", str(gallery), "--out", str(old), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: index format 1 is no longer read: rebuild it with python -m")
    assert len(err.splitlines()) == 1


def test_a_newer_or_missing_format_is_refused(index_dir, tmp_path):
    newer = older_format_copy(index_dir, tmp_path / "newer", index_format=4)
    with pytest.raises(ValueError, match=r"^manifest\.json: format must be 3, got 4 \("):
        read_manifest(newer)
    missing = with_document(index_dir, tmp_path / "missing", lambda d: d.pop("format"))
    with pytest.raises(ValueError, match=r"^manifest\.json: format is missing$"):
        read_manifest(missing)


def test_each_problem_in_a_manifest_is_one_line_naming_its_field(index_dir, tmp_path):
    def spoil(document):
        document["keep"] = -3
        document["model"]["embedding_dim"] = "128"
        del document["created"]
        document["skipped"][1]["reason"] = 5
        document["four_bit"] = [{"features": 16, "shortlist": "long"}]
        document["checksums"]["ids.txt"] = "abc"

    spoilt = with_document(index_dir, tmp_path / "index", spoil)
    with pytest.raises(ValueError) as refused:
        read_manifest(spoilt)
    assert str(refused.value).splitlines() == [
        'manifest.json: model.embedding_dim must be a positive integer, got "128"',
        "manifest.json: keep must be a positive integer, got -3",
        "manifest.json: created is missing",
        "manifest.json: skipped[1].reason must be a non-empty string, got 5",
        'manifest.json: four_bit[0].shortlist must be a positive integer, got "long"',
        "manifest.json: checksums['ids.txt'] must be a SHA-256 hex digest, got \"abc\"",
    ]


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            lambda d: d.update(importance=d["importance"][:5]),
            "manifest.json: importance must hold keep (32) values, got 5",
        ),
        (
            lambda d: d["importance"].reverse(),
            "manifest.json: importance must be in decreasing order (largest first)",
        ),
        (
            lambda d: d.update(keep=200, importance=[1.0] * 200),
            "manifest.json: keep (200) must not exceed model.embedding_dim (128)",
        ),
        (
            lambda d: d.update(four_bit=[{"features": 33, "shortlist": 100}]),
            "manifest.json: four_bit[0].features (33) must not exceed keep (32)",
        ),
        (lambda d: d.pop("model"), "manifest.json: model is missing"),
        (lambda d: d.update(four_bit={}), "manifest.json: four_bit must be a list, got {}"),
        (
            lambda d: d.update(four_bit=[{"features": 16, "shortlist": 64}] * 2),
            "manifest.json: four_bit[1].features (16) is listed twice",
        ),
    ],
)
def test_fields_that_disagree_are_refused(index_dir, tmp_path, change, line):
    spoilt = with_document(index_dir, tmp_path / "index", change)
    with pytest.raises(ValueError) as refused:
        read_manifest(spoilt)
    assert str(refused.value).startswith(line)


def test_every_index_file_must_have_a_checksum(index_dir, tmp_path):
    unlisted = with_document(
        index_dir, tmp_path / "index", lambda d: d["checksums"].pop("model/model.onnx")
    )
    for load in (load_index, load_index_model):
        with pytest.raises(ValueError, match=r"manifest\.json holds no checksum for model/model"):
            load(unlisted)


def test_reading_a_manifest_needs_neither_torch_nor_faiss_nor_numpy(index_dir):
    probe = (
        "import sys; sys.modules['torch'] = None; "
        "from pathlib import Path; from search.manifest import read_manifest; "
        f"print(read_manifest(Path({str(index_dir)!r})).keep, "
        "sorted(m for m in ('faiss', 'numpy', 'torch') if sys.modules.get(m)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["32", "[]"]
