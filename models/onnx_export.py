"""The encoder as an ONNX file, so queries can be embedded by ONNX Runtime without torch.

The exported graph takes what `to_pixels` makes, uint8 pixels NxHxWxC, and returns all D
dimensions in importance order: normalisation and the column order live inside it, so the
service needs nothing but the file and `to_pixels`. The backbone alone is exported the same
way for the feature pass of head training.
"""

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from models.config import EncoderConfig
from models.encoder import Encoder, normalize


class _PixelsToEmbedding(nn.Module):
    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("order", encoder.importance_order().clone())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        inputs = normalize(pixels.permute(0, 3, 1, 2), self.encoder.config)
        return self.encoder(inputs)[:, self.order]


class _PixelsToFeatures(nn.Module):
    def __init__(self, backbone: nn.Module, config: EncoderConfig) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = config

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone(normalize(pixels.permute(0, 3, 1, 2), self.config))


def export_onnx(encoder: Encoder, path: Path) -> None:
    """Write `encoder` to `path` as ONNX: uint8 NxHxWxC "pixels" -> float32 NxD "embedding",
    any N. Moves the encoder to the CPU."""
    module = _PixelsToEmbedding(encoder.cpu().eval()).eval()
    _export(module, encoder.config, path, output="embedding")


def export_backbone_onnx(encoder: Encoder, path: Path) -> None:
    """Write the encoder's backbone to `path`: uint8 NxHxWxC "pixels" -> float32 NxF
    "features", any N."""
    module = _PixelsToFeatures(encoder.cpu().eval().backbone, encoder.config).eval()
    _export(module, encoder.config, path, output="features")


def _export(module: nn.Module, config: EncoderConfig, path: Path, *, output: str) -> None:
    """Export with a dynamic batch axis and the one input size the encoder was built for."""
    example = torch.zeros(
        2, config.image_size, config.image_size, config.in_channels, dtype=torch.uint8
    )
    batch = torch.export.Dim("batch", min=1, max=65536)
    # The exporter narrates each stage on stdout and warns about operators this model never uses.
    quiet = [logging.getLogger(name) for name in ("torch.onnx", "onnx_ir", "onnxscript")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                input_names=["pixels"],
                output_names=[output],
                dynamic_shapes={"pixels": {0: batch}},
                verbose=False,
            )
        program.save(str(path))
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
