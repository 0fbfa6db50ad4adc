"""The one preprocessing path from a decoded image to the encoder's input pixels.

Training, the indexer and the service all go through `to_pixels`, so a query is transformed
exactly like the gallery and the training data were. Only numpy and Pillow: the service's
query path runs without torch.
"""

import numpy as np
from PIL import Image, ImageOps

from models.config import EncoderConfig

# 16- and 32-bit integer images are scaled down, not clipped (Pillow's convert("L") would clip).
_WIDE_INTEGER_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


def to_pixels(image: Image.Image, config: EncoderConfig) -> np.ndarray:
    """Decoded image of any mode and size -> uint8 array HxWxC at the model's input size.

    Transparency is composited onto black (the background of the training data); the image is
    scaled to fit the square input and padded, so no part of the object is cropped away.
    """
    image = _to_8bit_colour(image)
    target_mode = "L" if config.in_channels == 1 else "RGB"
    image = image.convert(target_mode)
    size = config.image_size
    if image.size != (size, size):
        method = Image.Resampling[config.resample.upper()]
        image = ImageOps.pad(image, (size, size), method=method, color=0)
    pixels = np.array(image, dtype=np.uint8)  # a writable copy, so torch can share it
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _to_8bit_colour(image: Image.Image) -> Image.Image:
    if image.mode in _WIDE_INTEGER_MODES:
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if values.max(initial=0) > 255 or image.mode != "I" else 255.0
        return Image.fromarray(np.clip(values / peak * 255.0, 0, 255).astype(np.uint8))
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray((np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode not in ("L", "RGB"):
        return image.convert("RGB")
    return image
