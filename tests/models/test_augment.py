from dataclasses import replace

import torch

from models.augment import AugmentConfig, augment

STILL = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_probability=0.0,
                      brightness=0.0, contrast=0.0, grayscale_probability=0.0)  # fmt: skip


def bar(size: int = 32) -> torch.Tensor:
    """One grey image, 1x3xSxS, with a bright horizontal bar through the middle."""
    image = torch.zeros(1, 3, size, size)
    image[:, :, size // 2 - 1 : size // 2 + 1, 4:-4] = 1.0
    return image


def test_views_stay_images_of_the_same_shape_and_range():
    pixels = torch.rand(6, 3, 24, 24)
    config = AugmentConfig(rotation=20.0, saturation=0.5)
    views = augment(pixels, config, torch.Generator().manual_seed(0))
    assert views.shape == pixels.shape
    assert views.min() >= 0.0 and views.max() <= 1.0


def test_rotation_turns_the_image_and_zero_rotation_leaves_it():
    image = bar()
    same = augment(image, STILL, torch.Generator().manual_seed(0))
    assert torch.allclose(same, image, atol=1e-5)
    turned = augment(image, replace(STILL, rotation=30.0), torch.Generator().manual_seed(1))
    rows = turned[0, 0].sum(dim=1)
    # The bar no longer lies in two rows: its light spreads over many.
    assert (rows > 0.5).sum() > 4


def test_saturation_moves_colours_towards_or_away_from_grey():
    red = torch.zeros(1, 3, 8, 8)
    red[:, 0] = 0.8
    red[:, 1:] = 0.2
    views = augment(red.repeat(16, 1, 1, 1), replace(STILL, saturation=0.9),
                    torch.Generator().manual_seed(2))  # fmt: skip
    spread = views[:, 0].mean(dim=(1, 2)) - views[:, 1].mean(dim=(1, 2))
    assert spread.min() < 0.6 * 0.6 and spread.max() > 0.6 * 1.4
