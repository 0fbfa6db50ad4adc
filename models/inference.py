"""uint8 pixels -> importance-ordered float32 embeddings: the one forward pass for inference.

The local and the Ray index builds, evaluation and the service's queries all embed through
`embed_pixels`, so a gallery vector and a query vector of the same image are computed alike.
"""

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from models.config import ONNX_FILE
from models.encoder import Encoder, normalize
from models.onnx_encoder import OnnxEncoder


def for_inference(encoder: Encoder, device: torch.device | str = "cpu") -> Encoder:
    """The encoder in eval mode on `device`, weights channels-last (about 1.4x faster on CPU)."""
    return encoder.eval().to(device, memory_format=torch.channels_last)


def exact_float32() -> contextlib.AbstractContextManager:
    """Full float32 convolutions on GPUs, so gallery vectors match the service's CPU queries.

    bfloat16 autocast and TF32 convolutions (cuDNN's default) moved some gallery vectors far
    from their CPU embedding (cosine down to -0.12 on Fashion-MNIST); the model is small
    enough that decoding, not the float32 forward pass, bounds the build.
    """
    return torch.backends.cudnn.flags(enabled=True, allow_tf32=False)


def embed_pixels(
    encoder: Encoder,
    pixels: np.ndarray | torch.Tensor,
    *,
    keep: int | None = None,
    batch_size: int = 1024,
) -> np.ndarray:
    """uint8 NxHxWxC pixels (as `to_pixels` makes them) -> float32 Nxkeep embeddings.

    Columns are in importance order and not normalised; `keep` (default all D) cuts them to
    the first `keep`. The pixels go to the encoder's device in chunks of `batch_size`.

    >>> from models.config import EncoderConfig
    >>> encoder = for_inference(Encoder(EncoderConfig(embedding_dim=8)))
    >>> embed_pixels(encoder, np.zeros((2, 28, 28, 1), np.uint8), keep=4).shape
    (2, 4)
    """
    if pixels.ndim != 4 or pixels.shape[3] != encoder.config.in_channels:
        raise ValueError(
            f"pixels must be NxHxWx{encoder.config.in_channels}, got {tuple(pixels.shape)}"
        )
    keep = keep or encoder.config.embedding_dim
    device = next(encoder.parameters()).device
    pixels = torch.as_tensor(pixels)
    chunks = []
    with torch.inference_mode(), exact_float32():
        for start in range(0, len(pixels), batch_size):
            # NHWC permuted to NCHW is already channels-last in memory: no copy.
            batch = pixels[start : start + batch_size].to(device).permute(0, 3, 1, 2)
            embedded = encoder.embed(normalize(batch, encoder.config))
            chunks.append(embedded[:, :keep].cpu().numpy())
    if not chunks:
        return np.empty((0, keep), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def fast_encoder(checkpoint: Path) -> OnnxEncoder:
    """The checkpoint's encoder under ONNX Runtime on every core, for embedding many images
    on a CPU (several times faster than torch for the pretrained backbone); exported to a
    temporary file when the checkpoint has no ONNX file."""
    from models.checkpoint import load_checkpoint
    from models.onnx_export import export_onnx

    encoder, _ = load_checkpoint(checkpoint)
    threads = len(os.sched_getaffinity(0))
    if (checkpoint / ONNX_FILE).is_file():
        return OnnxEncoder(checkpoint / ONNX_FILE, encoder.config, threads=threads)
    with tempfile.TemporaryDirectory(prefix="tricl-model-") as work:
        export_onnx(encoder, Path(work) / ONNX_FILE)
        return OnnxEncoder(Path(work) / ONNX_FILE, encoder.config, threads=threads)


def embed_in_batches(encoder, pixels: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """`encoder.embed` over uint8 NxHxWxC pixels in batches of `batch_size`."""
    chunks = [encoder.embed(pixels[i : i + batch_size]) for i in range(0, len(pixels), batch_size)]
    return np.concatenate(chunks) if chunks else np.empty((0, 0), np.float32)
