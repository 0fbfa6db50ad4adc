"""Writing an index directory (search/index_dir.py lists its files) atomically: complete on
disk before it replaces an earlier one, never half written."""

import ctypes
import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from models.config import MODEL_FILES, ONNX_FILE
from search.four_bit import four_bit_budgets
from search.index_dir import (
    CHECKSUMMED_FILES,
    HASHES_FILE,
    IDS_FILE,
    MODEL_DIR,
    VECTORS_FILE,
    file_sha256,
)
from search.manifest import INDEX_FORMAT, MANIFEST_FILE, FourBitBudget, Manifest, codes_file


def write_index(
    out: Path,
    *,
    vectors: np.ndarray,
    ids: list[str],
    hashes: list[str],
    manifest: Manifest,
    model_dir: Path,
    four_bit: str = "auto",
) -> Manifest:
    """Write a complete index to a sibling temporary directory, then move it to `out`.

    The 4-bit codes of the fast budgets are trained and calibrated here, once, when `four_bit`
    asks for them ("auto": above FOUR_BIT_ABOVE items; "always"; "never"), so that no search
    process trains anything. The manifest written is `manifest` with the codes' budgets and
    the files' checksums. An interrupted build leaves only the temporary directory behind; an
    index already at `out` is replaced only once the new one is complete on disk. Returns the
    manifest written.
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
        started = time.perf_counter()
        budgets = four_bit_budgets(vectors, four_bit)
        seconds = round(time.perf_counter() - started, 2) if budgets else None
        build = dataclasses.replace(manifest.build, four_bit=four_bit, index_seconds=seconds)
        for codes in budgets:
            faiss.write_index(codes.codes, str(staging / codes_file(codes.features)))
        (staging / MODEL_DIR).mkdir()
        for name in MODEL_FILES:  # not a training run's caches or resume state
            if (model_dir / name).is_file():
                shutil.copyfile(model_dir / name, staging / MODEL_DIR / name)
        written = dataclasses.replace(
            manifest,
            format=INDEX_FORMAT,
            build=build,
            four_bit=tuple(FourBitBudget(codes.features, codes.shortlist) for codes in budgets),
            checksums={
                name: file_sha256(staging / name)
                for name in [*CHECKSUMMED_FILES, *(codes_file(codes.features) for codes in budgets)]
            },
        )
        (staging / MANIFEST_FILE).write_text(written.to_json())
        _fsync_tree(staging)
        _replace_directory(staging, out)
        return written
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError):  # a full or read-only disk: the old index stays as it was
            message = f"could not write the index in {out.parent}: {error.strerror or error}"
            raise ValueError(message) from error
        raise


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
