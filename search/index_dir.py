"""The index directory contract (DESIGN.md), read: verify the files, map the vectors, read
the 4-bit codes. indexer/writing.py writes it.

manifest.json   what the index is (search/manifest.py): model, keep, count, importance,
                skipped files, the 4-bit budgets, checksums
vectors.npy     float32 [N, keep], columns in importance order, not normalised
ids.txt         N gallery-relative POSIX paths, utf-8
sha256.txt      N SHA-256 digests of the files' bytes, so an update re-embeds only what changed
codes-K.faiss   4-bit codes of the first K columns, one file per budget in manifest "four_bit"
                (large galleries only; search/four_bit.py)
model/          the checkpoint that made the vectors, with model.onnx that queries are embedded by
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from models.config import ONNX_FILE
from search.manifest import MANIFEST_FILE, Manifest, codes_file, read_manifest

VECTORS_FILE = "vectors.npy"
IDS_FILE = "ids.txt"
HASHES_FILE = "sha256.txt"
MODEL_DIR = "model"
# Every index holds these (the 4-bit codes' files are listed in the manifest). The ONNX file is
# what the service runs, so it is verified like the data (the weights are not read when serving).
CHECKSUMMED_FILES = (VECTORS_FILE, IDS_FILE, HASHES_FILE, f"{MODEL_DIR}/{ONNX_FILE}")


@dataclass(frozen=True)
class IndexModel:
    """An index's manifest and model folder, without its vectors or codes: what a process
    that only embeds queries (a cluster's ingress) reads."""

    path: Path
    manifest: Manifest

    @property
    def keep(self) -> int:
        return self.manifest.keep

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR


@dataclass(frozen=True)
class LoadedIndex(IndexModel):
    """An index directory read into memory (vectors mapped, not read)."""

    vectors: np.ndarray  # N x keep float32
    ids: list[str]
    hashes: list[str]  # per-item content digests (sha256.txt)
    codes: dict[int, faiss.IndexPQFastScan]  # budget -> its 4-bit codes (manifest "four_bit")


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
    codes = {
        budget.features: faiss.read_index(str(path / codes_file(budget.features)))
        for budget in manifest.four_bit
    }
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[1] != manifest.keep:
        raise ValueError(
            f"{VECTORS_FILE} has shape {vectors.shape}; expected N x {manifest.keep} float32"
        )
    if not len(ids) == len(hashes) == len(vectors) == manifest.count:
        raise ValueError(
            "vectors, ids, content hashes and manifest disagree on the number of items"
        )
    for features, held in codes.items():
        if held.ntotal != manifest.count or held.d != features:
            raise ValueError(f"{codes_file(features)} does not hold {manifest.count} x {features}")
    return LoadedIndex(path, manifest, vectors, ids, hashes, codes)


def _verify_checksums(path: Path, manifest: Manifest, *, under: str = "") -> None:
    """Every file the index must hold whose name starts with `under` (the fixed files, the 4-bit
    codes the manifest lists, anything else it has a checksum for) exists and matches."""
    codes = {codes_file(budget.features) for budget in manifest.four_bit}
    for name in sorted(set(CHECKSUMMED_FILES) | codes | set(manifest.checksums)):
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
