from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from models.checkpoint import SMALL_CNN_CHECKPOINT, load_checkpoint
from models.config import EncoderConfig, read_config
from models.encoder import normalize
from models.inference import embed_pixels, for_inference
from models.preprocess import to_pixels
from tests.helpers.images import garment

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


def test_a_copy_scaled_up_embeds_next_to_its_original():
    """A gallery image sent back at twice its size (a photo, a re-export) must come out of
    preprocessing close to the original; bilinear resizing blurred it enough to lose it."""
    encoder = for_inference(load_checkpoint(SMALL_CNN_CHECKPOINT)[0])
    shipped = EncoderConfig.from_dict(read_config(SMALL_CNN_CHECKPOINT)["encoder"])
    assert shipped.resample == "lanczos"
    originals = [Image.fromarray(garment(seed)) for seed in range(6)]
    scaled = [image.resize((56, 56), Image.Resampling.BICUBIC) for image in originals]

    def cosines(config: EncoderConfig) -> np.ndarray:
        pairs = [
            np.stack([to_pixels(a, config), to_pixels(b, config)])
            for a, b in zip(originals, scaled, strict=True)
        ]
        vectors = embed_pixels(encoder, np.concatenate(pairs)).reshape(len(pairs), 2, -1)
        vectors /= np.linalg.norm(vectors, axis=2, keepdims=True)
        return (vectors[:, 0] * vectors[:, 1]).sum(axis=1)

    lanczos, bilinear = cosines(shipped), cosines(replace(shipped, resample="bilinear"))
    assert (lanczos > bilinear).all(), (lanczos, bilinear)
    assert lanczos.min() >= 0.97, lanczos


def test_checkpoints_from_before_resample_keep_resizing_bilinearly():
    written_before = {"in_channels": 1, "image_size": 28}
    assert EncoderConfig.from_dict(written_before).resample == "bilinear"
    assert EncoderConfig().resample == "lanczos"
    with pytest.raises(ValueError, match="resample must be one of bilinear, lanczos, got 'cubic'"):
        EncoderConfig(resample="cubic")
