import numpy as np
import pytest
import torch
from PIL import Image

from models.config import EncoderConfig
from models.encoder import normalize
from models.preprocess import to_pixels

GRAY = EncoderConfig()
RGB = EncoderConfig(in_channels=3, image_size=32, mean=(0.5,) * 3, std=(0.25,) * 3)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"])
@pytest.mark.parametrize("config", [GRAY, RGB], ids=["gray", "rgb"])
def test_every_mode_becomes_the_model_input_shape(mode, config):
    image = Image.new("L", (45, 17), 200).convert(mode)
    pixels = to_pixels(image, config)
    assert pixels.shape == (config.image_size, config.image_size, config.in_channels)
    assert pixels.dtype == np.uint8
    inputs = normalize(torch.from_numpy(pixels).permute(2, 0, 1)[None], config)
    assert inputs.dtype == torch.float32 and torch.isfinite(inputs).all()


def test_sixteen_bit_images_are_scaled_not_clipped():
    values = np.array([[0, 16384, 32768, 65535]], dtype=np.uint16).repeat(4, axis=0)
    pixels = to_pixels(Image.fromarray(values), EncoderConfig(image_size=8))
    # Pillow's own convert("L") would clip all of these to 255.
    row = pixels[4, :, 0]
    assert row.min() == 0 and row.max() >= 250 and len(set(row.tolist())) > 2


def test_transparent_pixels_become_black_background():
    image = Image.new("RGBA", (28, 28), (255, 255, 255, 0))
    assert to_pixels(image, GRAY).max() == 0


def test_non_square_images_are_padded_not_cropped():
    image = Image.new("L", (56, 28), 255)
    pixels = to_pixels(image, GRAY)[:, :, 0]
    assert pixels[14, :].min() == 255  # full width kept
    assert pixels[0, 14] == 0 and pixels[27, 14] == 0  # padded above and below
