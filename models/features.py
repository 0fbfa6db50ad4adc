"""Backbone features of augmented views, computed once so a head can train on them for long.

A frozen backbone gives the same features for the same pixels every time, so the costly part
of training a head (the backbone's forward pass) is paid once: each image is seen as `views`
views (the first exactly as the indexer and the service will see it, the rest augmented), and
their features are kept in memory and in the output directory. Head training then draws two
views of each image per step from this cache, thousands of steps in minutes on a CPU.
"""

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from models.augment import AugmentConfig, augment
from models.encoder import Encoder, normalize
from models.inference import exact_float32

logger = logging.getLogger(__name__)

FEATURES_FILE = "features.safetensors"


def view_features(
    pixels: np.ndarray,
    encoder: Encoder,
    augment_config: AugmentConfig,
    *,
    views: int,
    seed: int,
    device: torch.device,
    cache: Path | None = None,
    batch_size: int = 128,
) -> torch.Tensor:
    """Backbone features of `views` views of every image: uint8 NxCxHxW -> float16 NxVxF.

    View 0 is the image itself; views 1.. are augmented with `augment_config`. The result is
    read from `cache` when that file was made from the same pixels, backbone and recipe, and
    written there otherwise.
    """
    if views < 2:
        raise ValueError(f"views must be at least 2 (two are contrasted), got {views}")
    fingerprint = _fingerprint(pixels, encoder, augment_config, views, seed)
    if cache is not None and (found := _read_cache(cache, fingerprint)) is not None:
        logger.info("backbone features of %d x %d views read from %s", len(pixels), views, cache)
        return found
    extract = _feature_extractor(encoder, device)
    generator = torch.Generator(device=device).manual_seed(seed)
    features = torch.empty(len(pixels), views, encoder.backbone.out_features, dtype=torch.float16)
    with tqdm(total=len(pixels) * views, desc="backbone features", unit="view") as progress:
        for start in range(0, len(pixels), batch_size):
            batch = torch.from_numpy(pixels[start : start + batch_size]).to(device)
            for view in range(views):
                seen = batch if view == 0 else _augmented(batch, augment_config, generator)
                features[start : start + len(batch), view] = extract(seen).to(torch.float16)
                progress.update(len(batch))
    if cache is not None:
        _write_cache(cache, features, fingerprint)
    return features


def _augmented(
    batch: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """An augmented view as uint8 pixels, rounded like any image the service decodes."""
    views = augment(batch.float() / 255.0, config, generator)
    return (views * 255.0).round().to(torch.uint8)


def _feature_extractor(encoder: Encoder, device: torch.device):
    """uint8 BxCxHxW on `device` -> float32 BxF on the CPU: ONNX Runtime on a CPU (several
    times faster than torch there), the backbone itself on a GPU."""
    if device.type == "cpu":
        from models.onnx_encoder import OnnxEncoder
        from models.onnx_export import export_backbone_onnx

        with tempfile.TemporaryDirectory(prefix="tricl-backbone-") as work:
            path = Path(work) / "backbone.onnx"
            export_backbone_onnx(encoder, path)
            runtime = OnnxEncoder(path, encoder.config, threads=len(os.sched_getaffinity(0)))

        def extract(pixels: torch.Tensor) -> torch.Tensor:
            nhwc = pixels.permute(0, 2, 3, 1).contiguous().numpy()
            return torch.from_numpy(runtime.embed(nhwc))

        return extract

    backbone = encoder.backbone.to(device).eval()

    def extract_on_gpu(pixels: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), exact_float32():
            return backbone(normalize(pixels, encoder.config)).float().cpu()

    return extract_on_gpu


def _fingerprint(
    pixels: np.ndarray, encoder: Encoder, augment_config: AugmentConfig, views: int, seed: int
) -> str:
    """Names what the features depend on: the pixels, the backbone and the views' recipe."""
    digest = hashlib.sha256(np.ascontiguousarray(pixels).data)
    config = encoder.config
    recipe = {
        "shape": list(pixels.shape),
        # What the backbone's output depends on; the head's shape does not matter here.
        "input": [config.backbone, config.image_size, config.mean, config.std, config.resample],
        "finetuned_blocks": config.finetuned_blocks,
        "augment": asdict(augment_config),
        "views": views,
        "seed": seed,
    }
    digest.update(json.dumps(recipe, sort_keys=True, default=list).encode())
    return digest.hexdigest()


def _read_cache(path: Path, fingerprint: str) -> torch.Tensor | None:
    if not path.is_file():
        return None
    with safe_open(path, framework="pt") as stored:
        if (stored.metadata() or {}).get("fingerprint") != fingerprint:
            logger.info("%s was made from other images or another recipe: recomputing", path)
            return None
    return load_file(path)["features"]


def _write_cache(path: Path, features: torch.Tensor, fingerprint: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    save_file({"features": features}, temporary, metadata={"fingerprint": fingerprint})
    temporary.replace(path)
