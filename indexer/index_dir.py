"""The index directory contract (DESIGN.md): writing it atomically and reading it back.

manifest.json  what the index is: model, keep, count, importance, skipped files, checksums
vectors.npy    float32 [N, keep], columns in importance order, not normalised
ids.txt        N gallery-relative POSIX paths, utf-8
index.faiss    inner-product FAISS index over unit rows of one budget (manifest "index"):
               exact flat over all `keep` columns by default, or IVF/HNSW/IVF-PQ at a small budget
model/         the checkpoint that made the vectors, so queries embed the same way
"""

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from indexer.ann import BuiltStructure, apply_search_params, build_structure
from models.vectors import unit_rows

INDEX_FORMAT = 1
MANIFEST_FILE = "manifest.json"
VECTORS_FILE = "vectors.npy"
IDS_FILE = "ids.txt"
FAISS_FILE = "index.faiss"
MODEL_DIR = "model"
CHECKSUMMED_FILES = (VECTORS_FILE, IDS_FILE, FAISS_FILE)


@dataclass(frozen=True)
class LoadedIndex:
    """An index directory read into memory."""

    path: Path
    manifest: dict
    vectors: np.ndarray  # N x keep float32
    ids: list[str]
    structure: faiss.Index  # index.faiss: search structure over unit rows of one budget

    @property
    def keep(self) -> int:
        return int(self.manifest["keep"])

    @property
    def structure_info(self) -> dict:
        """{"type", "features", "params", "recall_at_10", "exact"} of index.faiss."""
        return self.manifest["index"]

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR


def write_index(
    out: Path,
    *,
    vectors: np.ndarray,
    ids: list[str],
    manifest: dict,
    model_dir: Path,
    structure: BuiltStructure | None = None,
) -> None:
    """Write a complete index to a sibling temporary directory, then move it to `out`.

    `structure` defaults to an exact flat index over all columns. An interrupted build leaves
    only the temporary directory behind; an index already at `out` is replaced only once the
    new one is complete on disk.
    """
    if vectors.ndim != 2 or vectors.shape[0] != len(ids):
        raise ValueError(f"{vectors.shape[0]} vectors for {len(ids)} ids")
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        np.save(staging / VECTORS_FILE, np.ascontiguousarray(vectors, dtype=np.float32))
        (staging / IDS_FILE).write_text("".join(f"{item}\n" for item in ids), encoding="utf-8")
        if structure is None:
            structure = build_structure(unit_rows(vectors), "flat")
        faiss.write_index(structure.index, str(staging / FAISS_FILE))
        shutil.copytree(model_dir, staging / MODEL_DIR)
        checksums = {name: _sha256(staging / name) for name in CHECKSUMMED_FILES}
        full_manifest = {
            "format": INDEX_FORMAT,
            **manifest,
            "index": {
                "type": structure.type,
                "features": structure.features,
                "exact": structure.exact,
                "params": structure.params,
                "recall_at_10": structure.recall_at_10,
            },
            "checksums": checksums,
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(full_manifest, indent=2) + "\n")
        _fsync_tree(staging)
        _replace_directory(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def load_index(path: Path) -> LoadedIndex:
    """Read and verify an index directory; raises ValueError naming what is wrong."""
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ValueError(f"{path} is not an index directory (no {MANIFEST_FILE}); build one first")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{MANIFEST_FILE} is not valid JSON: {error}") from error
    if manifest.get("format") != INDEX_FORMAT:
        raise ValueError(
            f"index format {manifest.get('format')!r} is not supported (expected {INDEX_FORMAT})"
        )
    for name, expected in manifest.get("checksums", {}).items():
        if not (path / name).is_file():
            raise ValueError(f"index file {name} is missing")
        if _sha256(path / name) != expected:
            raise ValueError(f"index file {name} does not match its checksum: the index is corrupt")
    vectors = np.load(path / VECTORS_FILE, allow_pickle=False)
    ids = (path / IDS_FILE).read_text(encoding="utf-8").splitlines()
    structure = faiss.read_index(str(path / FAISS_FILE))
    # Indexes written before index types existed hold an exact flat index over every column.
    manifest.setdefault(
        "index",
        {
            "type": "flat",
            "features": manifest["keep"],
            "exact": True,
            "params": {},
            "recall_at_10": 1.0,
        },
    )
    apply_search_params(structure, manifest["index"]["params"])
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[1] != manifest["keep"]:
        raise ValueError(
            f"{VECTORS_FILE} has shape {vectors.shape}; expected N x {manifest['keep']} float32"
        )
    if not len(ids) == len(vectors) == structure.ntotal == manifest["count"]:
        raise ValueError("vectors, ids, FAISS index and manifest disagree on the number of items")
    if structure.d != manifest["index"]["features"]:
        raise ValueError(f"{FAISS_FILE} covers {structure.d} features, the manifest says otherwise")
    return LoadedIndex(path, manifest, vectors, ids, structure)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    for folder, _, names in os.walk(root):
        for name in names:
            with open(Path(folder, name), "rb") as stream:
                os.fsync(stream.fileno())


def check_replaceable(target: Path) -> None:
    """Refuse to overwrite anything but an empty folder or an earlier index."""
    if target.exists() and not target.is_dir():
        raise ValueError(f"{target} exists and is not a directory; choose another --out")
    if target.is_dir() and not (target / MANIFEST_FILE).is_file() and any(target.iterdir()):
        raise ValueError(f"{target} exists and is not an index directory; refusing to replace it")


def _replace_directory(new: Path, target: Path) -> None:
    """Move `new` to `target`, moving any old `target` aside first and deleting it after."""
    check_replaceable(target)
    if not target.exists():
        new.rename(target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    retired.rmdir()
    target.rename(retired)
    new.rename(target)
    shutil.rmtree(retired, ignore_errors=True)
