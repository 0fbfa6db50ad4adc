"""Finding and decoding image files, shared by folder training and the indexer."""

import os
from pathlib import Path
from typing import BinaryIO

from PIL import Image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def list_image_files(root: Path) -> list[Path]:
    """Image files below `root` (recursive, by suffix), sorted by their relative POSIX path.

    Sorting makes gallery ids and row order independent of the filesystem's listing order.
    Hidden files and folders are left out.
    """
    found = []
    for folder, subfolders, names in os.walk(root, followlinks=False):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(folder, name))
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def open_image(source: Path | BinaryIO) -> Image.Image:
    """Decode a file (or its bytes) fully, first frame of animations; raises if it is corrupt."""
    with Image.open(source) as image:
        image.seek(0)
        image.load()
        return image.copy()
