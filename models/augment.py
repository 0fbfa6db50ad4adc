"""Batched, on-device augmentations: two random views of every image in one pass."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Strength of each augmentation; every image in a batch draws its own parameters."""

    # Area of the crop as a share of the image; above 1 zooms out onto a black margin.
    crop_scale: tuple[float, float] = (0.25, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_probability: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    grayscale_probability: float = 0.2
    # Largest rotation either way, in degrees; 0 keeps images upright.
    rotation: float = 0.0
    # Colour saturation scaled by 1 +- this (RGB only); 0 leaves it.
    saturation: float = 0.0


def augment(
    pixels: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """Random resized crop, rotation, horizontal flip, brightness, contrast (and saturation and
    grayscale for RGB).

    Args:
        pixels: BxCxHxW floats in [0, 1] on the training device.
        config: augmentation strengths.
        generator: random source on the same device, so a seed fixes every view.

    Returns:
        BxCxHxW floats in [0, 1].
    """
    b, c, h, w = pixels.shape
    device = pixels.device

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(b, device=device, generator=generator)

    # Random resized crop + flip as one affine sampling grid per image.
    area = uniform(*config.crop_scale)
    log_ratio = uniform(*torch.log(torch.tensor(config.crop_ratio)).tolist())
    ratio = torch.exp(log_ratio)
    crop_w = torch.sqrt(area * ratio)
    crop_h = torch.sqrt(area / ratio)
    if config.crop_scale[1] <= 1.0:  # cropping only: stay inside the image
        crop_w, crop_h = crop_w.clamp(max=1.0), crop_h.clamp(max=1.0)
    centre_x = (1 - crop_w) * uniform(-1.0, 1.0)
    centre_y = (1 - crop_h) * uniform(-1.0, 1.0)
    flip = torch.where(uniform(0.0, 1.0) < config.flip_probability, -1.0, 1.0)
    # Drawn only when asked for, so recipes without rotation keep their random stream.
    angle = torch.deg2rad(uniform(-config.rotation, config.rotation)) if config.rotation else 0.0
    cos, sin = torch.cos(torch.as_tensor(angle)), torch.sin(torch.as_tensor(angle))
    theta = torch.zeros(b, 2, 3, device=device)
    theta[:, 0, 0] = crop_w * flip * cos
    theta[:, 0, 1] = -crop_h * sin
    theta[:, 0, 2] = centre_x
    theta[:, 1, 0] = crop_w * flip * sin
    theta[:, 1, 1] = crop_h * cos
    theta[:, 1, 2] = centre_y
    grid = F.affine_grid(theta, [b, c, h, w], align_corners=False)
    views = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # Photometric jitter: x * brightness, then contrast around each image's mean.
    brightness = uniform(1 - config.brightness, 1 + config.brightness).view(b, 1, 1, 1)
    contrast = uniform(1 - config.contrast, 1 + config.contrast).view(b, 1, 1, 1)
    views = views * brightness
    mean = views.mean(dim=(1, 2, 3), keepdim=True)
    views = (views - mean) * contrast + mean

    if c == 3 and config.saturation > 0:
        saturation = uniform(1 - config.saturation, 1 + config.saturation).view(b, 1, 1, 1)
        gray = views.mean(dim=1, keepdim=True)
        views = (views - gray) * saturation + gray

    if c == 3 and config.grayscale_probability > 0:
        gray = views.mean(dim=1, keepdim=True).expand_as(views)
        to_gray = (uniform(0.0, 1.0) < config.grayscale_probability).view(b, 1, 1, 1)
        views = torch.where(to_gray, gray, views)
    return views.clamp(0.0, 1.0)
