"""Architecture of an encoder: everything needed to rebuild it from a checkpoint."""

import json
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "config.json"
# The encoder exported for ONNX Runtime (models/onnx_export.py), beside its weights.
ONNX_FILE = "model.onnx"
RESAMPLING = ("bilinear", "lanczos")


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of the residual CNN, its projector, and the input it expects.

    `mean` and `std` hold one value per input channel; they normalise pixels in [0, 1] and are
    stored with the checkpoint so that indexing and search preprocess exactly as training did.
    """

    in_channels: int = 1
    image_size: int = 28
    widths: tuple[int, ...] = (16, 32, 64, 128)
    # Side of the grid the last feature map is average-pooled to: 1 keeps only what is in the
    # image, 2 also keeps where (top, bottom, left, right), which icons and drawings depend on.
    pool_grid: int = 1
    projector_hidden: int = 512
    embedding_dim: int = 128
    mean: tuple[float, ...] = (0.286,)
    std: tuple[float, ...] = (0.353,)
    # False for losses without a tri-factor (SimCLR): importance then stays flat and the
    # dimension order is the identity.
    learn_importance: bool = True
    # How an image of another size is resized to `image_size`. Lanczos keeps a copy that was
    # scaled up and back down close to its original (bilinear blurs it: the encoder's cosine
    # with the original fell to a median of 0.94); checkpoints written before this field resize
    # bilinearly, as they were indexed.
    resample: str = "lanczos"

    def __post_init__(self) -> None:
        if self.in_channels not in (1, 3):
            raise ValueError(
                f"in_channels must be 1 (grayscale) or 3 (RGB), got {self.in_channels}"
            )
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError("mean and std need one value per input channel")
        if self.image_size < 8:
            raise ValueError(f"image_size must be at least 8 pixels, got {self.image_size}")
        if self.pool_grid < 1:
            raise ValueError(f"pool_grid must be at least 1, got {self.pool_grid}")
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be positive, got {self.embedding_dim}")
        if self.resample not in RESAMPLING:
            raise ValueError(
                f"resample must be one of {', '.join(RESAMPLING)}, got {self.resample!r}"
            )

    @classmethod
    def from_dict(cls, values: dict) -> "EncoderConfig":
        """Rebuild from JSON, where tuples come back as lists. A config without `resample` was
        written before it existed, when every image was resized bilinearly."""
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        known.setdefault("resample", "bilinear")
        for name in ("widths", "mean", "std"):
            if name in known:
                known[name] = tuple(known[name])
        return cls(**known)


def read_config(checkpoint: Path) -> dict:
    """A checkpoint's config.json (model id, encoder shape, importance), without torch."""
    path = checkpoint / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint} is not a model checkpoint: no {CONFIG_FILE} in it")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
