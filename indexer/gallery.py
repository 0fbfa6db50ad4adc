"""Reading gallery files: each file read once, its bytes both hashed and decoded.

`read_files` is the one decoding step of every build: DataLoader workers run it for the local
build, Ray Data tasks for the distributed one. Both hand on the same batch, a dict of
numpy arrays {position, sha256, failure, decoded, pixels}.
"""

import hashlib
import io
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from models.config import EncoderConfig
from models.imagefiles import open_image
from models.preprocess import to_pixels


def read_files(
    paths: list[str], config: EncoderConfig, *, unchanged: list[str] | None = None
) -> dict:
    """Hash and decode files to the model's input size, reading each one once.

    A file whose SHA-256 equals its entry in `unchanged` (an update's previous hash, "" for
    none) is hashed but not decoded. A file that cannot be read or decoded gets a reason in
    `failure` instead of raising, so one bad file never stops a build.

    Returns:
        sha256 (N, "" if unreadable), failure (N, "" if fine), decoded (N bools: pixels hold
        this file) and pixels (uint8 NxHxWxC, zeros where not decoded).
    """
    size, channels = config.image_size, config.in_channels
    pixels = np.zeros((len(paths), size, size, channels), dtype=np.uint8)
    digests, failures, decoded = [], [], np.zeros(len(paths), dtype=bool)
    for row, path in enumerate(paths):
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            digests.append("")
            failures.append(f"could not read: {error.strerror or error}")
            continue
        digest = hashlib.sha256(data).hexdigest()
        digests.append(digest)
        if unchanged is not None and unchanged[row] == digest:
            failures.append("")
            continue
        try:
            pixels[row] = to_pixels(open_image(io.BytesIO(data)), config)
        except Exception as error:  # any decoder failure is a per-file problem
            failures.append(describe_decode_error(error))
        else:
            failures.append("")
            decoded[row] = True
    return {
        "sha256": np.array(digests, dtype=object),
        "failure": np.array(failures, dtype=object),
        "decoded": decoded,
        "pixels": pixels,
    }


class GalleryFiles(Dataset):
    """Item i -> (i, path, the previous hash of that file or ""), for `read_files` in workers."""

    def __init__(self, files: list[Path], unchanged: list[str]) -> None:
        self.files = files
        self.unchanged = unchanged

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, position: int) -> tuple[int, str, str]:
        return position, str(self.files[position]), self.unchanged[position]


class ReadBatch:
    """collate_fn of the local build: read a batch of files in the worker that collates it."""

    def __init__(self, config: EncoderConfig) -> None:
        self.config = config

    def __call__(self, items: list[tuple[int, str, str]]) -> dict:
        positions, paths, unchanged = zip(*items, strict=True)
        batch = read_files(list(paths), self.config, unchanged=list(unchanged))
        return {"position": np.array(positions), **batch}


def describe_decode_error(error: Exception) -> str:
    """A short reason for the manifest, without paths or stack traces."""
    name = type(error).__name__
    if name == "UnidentifiedImageError":
        return "not a readable image (unknown or corrupt format)"
    if isinstance(error, OSError) and "truncated" in str(error):
        return "truncated image data"
    if name == "DecompressionBombError":
        return "image has too many pixels (decompression bomb guard)"
    return f"could not decode: {name}: {str(error).split(' (')[0][:200]}"
