"""The encoder as an ONNX file, so queries can be embedded by ONNX Runtime without torch.

The exported graph takes what `to_pixels` makes, uint8 pixels NxHxWxC, and returns all D
dimensions in importance order: normalisation and the column order live inside it, so the
service needs nothing but the file and `to_pixels`.
"""

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from models.encoder import Encoder, normalize


class _PixelsToEmbedding(nn.Module):
    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("order", encoder.importance_order().clone())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        inputs = normalize(pixels.permute(0, 3, 1, 2), self.encoder.config)
        return self.encoder(inputs)[:, self.order]


def export_onnx(encoder: Encoder, path: Path) -> None:
    """Write `encoder` to `path` as ONNX: uint8 NxHxWxC "pixels" -> float32 NxD "embedding",
    any N. Moves the encoder to the CPU."""
    config = encoder.config
    module = _PixelsToEmbedding(encoder.cpu().eval()).eval()
    example = torch.zeros(
        2, config.image_size, config.image_size, config.in_channels, dtype=torch.uint8
    )
    batch = torch.export.Dim("batch", min=1, max=65536)
    # The exporter narrates each stage on stdout and warns about operators this model never uses.
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                input_names=["pixels"],
                output_names=["embedding"],
                dynamic_shapes={"pixels": {0: batch}},
                verbose=False,
            )
        program.save(str(path))
    finally:
        quiet.setLevel(level)
