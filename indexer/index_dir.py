"""The index directory contract (DESIGN.md): writing it atomically and reading it back.

manifest.json  what the index is (indexer/manifest.py): model, keep, count, importance,
               skipped files, the search structure, checksums
vectors.npy    float32 [N, keep], columns in importance order, not normalised
ids.txt        N gallery-relative POSIX paths, utf-8
sha256.txt     N SHA-256 digests of the files' bytes, so an update re-embeds only what changed
index.faiss    inner-product FAISS index over unit rows of one budget (manifest "index"):
               exact flat over all `keep` columns by default, or IVF/HNSW/IVF-PQ at a small budget
model/         the checkpoint that made the vectors, with model.onnx that queries are embedded by
"""

import ctypes
import dataclasses
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from indexer.manifest import INDEX_FORMAT, MANIFEST_FILE, Manifest, StructureInfo, read_manifest
from indexer.retrieval import BuiltStructure, apply_search_params, build_structure
from models.config import MODEL_FILES, ONNX_FILE
from models.vectors import unit_rows

VECTORS_FILE = "vectors.npy"
IDS_FILE = "ids.txt"
HASHES_FILE = "sha256.txt"
FAISS_FILE = "index.faiss"
MODEL_DIR = "model"
# Every index holds these. The ONNX file is what the service runs, so it is verified like the
# data (the weights are not read when serving).
CHECKSUMMED_FILES = (VECTORS_FILE, IDS_FILE, HASHES_FILE, FAISS_FILE, f"{MODEL_DIR}/{ONNX_FILE}")


@dataclass(frozen=True)
class LoadedIndex:
    """An index directory read into memory."""

    path: Path
    manifest: Manifest
    vectors: np.ndarray  # N x keep float32
    ids: list[str]
    structure: faiss.Index  # index.faiss: search structure over unit rows of one budget
    hashes: list[str]  # per-item content digests (sha256.txt)

    @property
    def keep(self) -> int:
        return self.manifest.keep

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def structure_info(self) -> StructureInfo:
        """What index.faiss is: type, features, params, recall_at_10, exact."""
        return self.manifest.index

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR


def write_index(
    out: Path,
    *,
    vectors: np.ndarray,
    ids: list[str],
    hashes: list[str],
    manifest: Manifest,
    model_dir: Path,
    structure: BuiltStructure | None = None,
) -> None:
    """Write a complete index to a sibling temporary directory, then move it to `out`.

    `structure` defaults to an exact flat index over all columns; the manifest written is
    `manifest` with the structure's description and the files' checksums. An interrupted build
    leaves only the temporary directory behind; an index already at `out` is replaced only
    once the new one is complete on disk.
    """
    if vectors.ndim != 2 or vectors.shape[0] != len(ids):
        raise ValueError(f"{vectors.shape[0]} vectors for {len(ids)} ids")
    if len(hashes) != len(ids):
        raise ValueError(f"{len(hashes)} content hashes for {len(ids)} ids")
    if not (model_dir / ONNX_FILE).is_file():
        raise ValueError(f"{model_dir} has no {ONNX_FILE}, which the service embeds queries with")
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_staging(out)
    try:
        staging = Path(
            tempfile.mkdtemp(prefix=f".{out.name}.building-{os.getpid()}-", dir=out.parent)
        )
    except OSError as error:
        raise ValueError(f"could not write in {out.parent}: {error.strerror or error}") from error
    try:
        np.save(staging / VECTORS_FILE, np.ascontiguousarray(vectors, dtype=np.float32))
        (staging / IDS_FILE).write_text("".join(f"{item}\n" for item in ids), encoding="utf-8")
        (staging / HASHES_FILE).write_text("".join(f"{digest}\n" for digest in hashes))
        if structure is None:
            structure = build_structure(unit_rows(vectors), "flat")
        faiss.write_index(structure.index, str(staging / FAISS_FILE))
        (staging / MODEL_DIR).mkdir()
        for name in MODEL_FILES:  # not a training run's caches or resume state
            if (model_dir / name).is_file():
                shutil.copyfile(model_dir / name, staging / MODEL_DIR / name)
        written = dataclasses.replace(
            manifest,
            format=INDEX_FORMAT,
            index=StructureInfo(
                type=structure.type,
                features=structure.features,
                exact=structure.exact,
                params=structure.params,
                recall_at_10=structure.recall_at_10,
            ),
            checksums={name: file_sha256(staging / name) for name in CHECKSUMMED_FILES},
        )
        (staging / MANIFEST_FILE).write_text(written.to_json())
        _fsync_tree(staging)
        _replace_directory(staging, out)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError):  # a full or read-only disk: the old index stays as it was
            message = f"could not write the index in {out.parent}: {error.strerror or error}"
            raise ValueError(message) from error
        raise


@dataclass(frozen=True)
class IndexModel:
    """An index's manifest and model folder, without its vectors or search structure: what a
    process that only embeds queries (a cluster's ingress) reads."""

    path: Path
    manifest: Manifest

    @property
    def keep(self) -> int:
        return self.manifest.keep

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR


def load_index_model(path: Path) -> IndexModel:
    """Read the manifest and verify the model's files only; the rest of the index (gigabytes
    in a large shard) is verified by whoever loads it."""
    manifest = read_manifest(path)
    _verify_checksums(path, manifest, under=f"{MODEL_DIR}/")
    return IndexModel(path, manifest)


def load_index(path: Path) -> LoadedIndex:
    """Read and verify an index directory; raises ValueError naming what is wrong."""
    manifest = read_manifest(path)
    _verify_checksums(path, manifest)
    # Mapped, not read: pages a search never touches (a budget served by compressed codes, the
    # rows outside a shortlist) stay on disk, and the kernel can drop the rest under pressure.
    vectors = np.load(path / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
    ids = (path / IDS_FILE).read_text(encoding="utf-8").splitlines()
    hashes = (path / HASHES_FILE).read_text().splitlines()
    structure = faiss.read_index(str(path / FAISS_FILE), faiss.IO_FLAG_MMAP_IFC)
    apply_search_params(structure, manifest.index.params)
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[1] != manifest.keep:
        raise ValueError(
            f"{VECTORS_FILE} has shape {vectors.shape}; expected N x {manifest.keep} float32"
        )
    if not len(ids) == len(hashes) == len(vectors) == structure.ntotal == manifest.count:
        raise ValueError(
            "vectors, ids, content hashes, FAISS index and manifest disagree on the number of items"
        )
    if structure.d != manifest.index.features:
        raise ValueError(f"{FAISS_FILE} covers {structure.d} features, the manifest says otherwise")
    return LoadedIndex(path, manifest, vectors, ids, structure, hashes)


def _verify_checksums(path: Path, manifest: Manifest, *, under: str = "") -> None:
    """Every checksummed file whose name starts with `under` is listed, exists and matches."""
    for name in sorted(set(CHECKSUMMED_FILES) | set(manifest.checksums)):
        if not name.startswith(under):
            continue
        if name not in manifest.checksums:
            raise ValueError(f"{MANIFEST_FILE} holds no checksum for {name}")
        if not (path / name).is_file():
            raise ValueError(f"index file {name} is missing")
        if file_sha256(path / name) != manifest.checksums[name]:
            raise ValueError(f"index file {name} does not match its checksum: the index is corrupt")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
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


def _remove_abandoned_staging(out: Path) -> None:
    """Delete temporary directories of earlier builds into `out` whose process is gone (killed).

    Each staging directory carries its builder's process id; one whose process still runs is
    another build in progress and is left alone.
    """
    for leftover in out.parent.glob(f".{out.name}.building-*"):
        pid = leftover.name.removeprefix(f".{out.name}.building-").split("-", 1)[0]
        if not pid.isdigit() or process_exists(int(pid)):
            continue
        shutil.rmtree(leftover, ignore_errors=True)


def process_exists(pid: int) -> bool:
    """Whether a process with this pid is running (perhaps another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_replaceable(target: Path) -> None:
    """Refuse to overwrite anything but an empty folder or an earlier index."""
    if target.exists() and not target.is_dir():
        raise ValueError(f"{target} exists and is not a directory; choose another --out")
    if target.is_dir() and not (target / MANIFEST_FILE).is_file() and any(target.iterdir()):
        raise ValueError(f"{target} exists and is not an index directory; refusing to replace it")


def _replace_directory(new: Path, target: Path) -> None:
    """Put `new` at `target` in one atomic step, then delete the old `target`.

    With an existing target the two directories are exchanged by renameat2(RENAME_EXCHANGE),
    so at every instant `target` is either the whole old index or the whole new one, even if
    the process is killed. Where the kernel or filesystem cannot exchange, the old directory
    is moved aside first (a moment without `target`).
    """
    check_replaceable(target)
    if not target.exists():
        new.rename(target)
        return
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # `new` now holds the old index
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    retired.rmdir()
    target.rename(retired)
    new.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where that is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    return result == 0
