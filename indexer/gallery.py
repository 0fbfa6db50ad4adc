"""The gallery as a torch Dataset: files decoded and preprocessed in DataLoader workers."""

from pathlib import Path

import torch
from torch.utils.data import Dataset

from models.config import EncoderConfig
from models.imagefiles import open_image
from models.preprocess import preprocess


class GalleryImages(Dataset):
    """Item i -> (i, encoder input CxHxW or None, reason it failed or None).

    A file that cannot be decoded comes back as a reason instead of raising, so one corrupt
    image never stops a build.
    """

    def __init__(self, files: list[Path], config: EncoderConfig) -> None:
        self.files = files
        self.config = config

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, position: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            return position, preprocess(open_image(self.files[position]), self.config), None
        except Exception as error:  # any decoder failure is a per-file problem
            return position, None, describe_decode_error(error)


def collate_decoded(items: list[tuple[int, torch.Tensor | None, str | None]]) -> dict:
    """Stack the decoded inputs of a batch and keep the failures aside."""
    decoded = [(position, tensor) for position, tensor, _ in items if tensor is not None]
    return {
        "positions": [position for position, _ in decoded],
        "inputs": torch.stack([tensor for _, tensor in decoded]) if decoded else None,
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
