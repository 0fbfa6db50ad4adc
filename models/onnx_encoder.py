"""Embedding with ONNX Runtime: the query path of the service, without torch.

Reads the file `models/onnx_export.py` writes. numpy, onnxruntime and the checkpoint's
config.json are all it needs.
"""

import os
from pathlib import Path

import numpy as np
import onnxruntime

from models.config import EncoderConfig


class OnnxEncoder:
    """uint8 pixels NxHxWxC -> float32 embeddings, first `keep` of D importance-ordered columns.

    One intra-op thread per core the process may use (at most 4: a 28x28 forward pass gains
    nothing from more), and threads that sleep instead of spinning between calls, so a lone
    query does not fight other processes for the cores while it waits.
    """

    def __init__(self, path: Path, config: EncoderConfig, *, threads: int | None = None) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or min(4, len(os.sched_getaffinity(0)))
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.config = config

    def embed(self, pixels: np.ndarray, *, keep: int | None = None) -> np.ndarray:
        expected = (self.config.image_size, self.config.image_size, self.config.in_channels)
        if pixels.ndim != 4 or pixels.shape[1:] != expected:
            raise ValueError(f"pixels must be Nx{'x'.join(map(str, expected))}, got {pixels.shape}")
        (embedding,) = self.session.run(None, {"pixels": np.ascontiguousarray(pixels, np.uint8)})
        return embedding[:, :keep] if keep else embedding
