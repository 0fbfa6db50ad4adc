"""The gallery as a torch Dataset: files decoded to model-sized pixels in DataLoader workers."""

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from models.config import EncoderConfig
from models.imagefiles import open_image
from models.preprocess import to_pixels


class GalleryImages(Dataset):
    """Item i -> (i, uint8 pixels HxWxC or None, reason it failed or None).

    A file that cannot be decoded comes back as a reason instead of raising, so one corrupt
    image never stops a build.
    """

    def __init__(self, files: list[Path], config: EncoderConfig) -> None:
        self.files = files
        self.config = config

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, position: int) -> tuple[int, np.ndarray | None, str | None]:
        try:
            return position, to_pixels(open_image(self.files[position]), self.config), None
        except Exception as error:  # any decoder failure is a per-file problem
            return position, None, describe_decode_error(error)


def collate_decoded(items: list[tuple[int, np.ndarray | None, str | None]]) -> dict:
    """Stack the decoded pixels of a batch (uint8 NxHxWxC) and keep the failures aside."""
    decoded = [(position, pixels) for position, pixels, _ in items if pixels is not None]
    return {
        "positions": [position for position, _ in decoded],
        "pixels": torch.from_numpy(np.stack([pixels for _, pixels in decoded]))
        if decoded
        else None,
        "failures": [(position, reason) for position, _, reason in items if reason is not None],
    }


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
