"""Serving gallery files: only items of the index, only from inside the gallery folder."""

import io
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from PIL import Image

from models.imagefiles import open_image
from search.plan import ItemNotFound


class GalleryFiles:
    """Maps index ids to files below the gallery root, refusing anything that leads outside.

    An id is served only if it is a line of ids.txt, and only if its file, with every
    symbolic link resolved, still lies inside the gallery folder: `..`, absolute paths, their
    encoded forms and links out of the gallery all end in ItemNotFound (404).
    """

    def __init__(self, root: Path | None, rows: dict[str, int]) -> None:
        self.root = root.resolve() if root is not None and root.is_dir() else None
        self.rows = rows  # id -> row, the search core's
        self.thumbnail = lru_cache(maxsize=4096)(self._thumbnail)

    def holds(self, item_id: str) -> bool:
        return item_id in self.rows

    def path(self, item_id: str) -> Path:
        if not self.holds(item_id):
            raise ItemNotFound(f"no gallery item with id {item_id!r}")
        if self.root is None:
            raise ItemNotFound("the gallery folder is not available to the service")
        candidate = (self.root / item_id).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            raise ItemNotFound(f"no gallery item with id {item_id!r}")
        return candidate

    def _thumbnail(self, item_id: str, size: int) -> bytes:
        """PNG fitting size x size, aspect kept; cached, since result grids repeat items.

        Small images (28 x 28 garments) are scaled up with nearest neighbours, pixels kept sharp.
        """
        image = open_image(self.path(item_id))
        if image.mode not in ("L", "RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        scale = size / max(image.size)
        new_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        method = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
        buffer = io.BytesIO()
        image.resize(new_size, resample=method).save(buffer, format="PNG")
        return buffer.getvalue()


class SharedGalleryFiles(GalleryFiles):
    """The gallery folder as a cluster's ingress serves it: which ids are items is asked of
    the shards (`holds`); the folder must be readable where the ingress runs."""

    def __init__(self, root: Path | None, holds: Callable[[str], bool]) -> None:
        super().__init__(root, [])
        self._holds = holds

    def holds(self, item_id: str) -> bool:
        return self._holds(item_id)
