"""Query images -> embeddings, through the same preprocessing as the indexer.

Each search request embeds its own image, on its own thread, in a forward pass of one image:
requests already run side by side, and each pass uses one core. Embedding concurrent requests
together was measured and dropped: on the pretrained backbone it served 0.71x the queries per
second of passes of one image at concurrency 32 (one batch at a time keeps one core busy), and
no more at concurrency 1 (docs/performance.md, "Embedding concurrent queries together").
A batch request (POST /search/batch) is a batch already: its images go through the model in
passes of at most `max_batch`. Stages are recorded into the request's own times
(service.timing), not passed in.
"""

import time
from collections.abc import Callable
from typing import Protocol

import numpy as np
from PIL import Image

from models.config import EncoderConfig
from models.preprocess import to_pixels
from service import timing


class PixelEncoder(Protocol):
    """What embeds the queries: `models.onnx_encoder.OnnxEncoder`, over the index's model.onnx."""

    config: EncoderConfig

    def embed(self, pixels: np.ndarray, *, keep: int | None = None) -> np.ndarray: ...


class QueryEmbedder:
    """Embeds query images with the index's own model, truncated to the index's `keep` dims."""

    def __init__(
        self,
        encoder: PixelEncoder,
        keep: int,
        *,
        max_batch: int = 64,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:
        self.encoder = encoder
        self.keep = keep
        self.max_batch = max_batch
        self.on_batch = on_batch

    def embed_one(self, image: Image.Image) -> np.ndarray:
        """One decoded image -> float32 keep-vector in importance order; records the
        "preprocess" and "forward" stages of the request being served."""
        with timing.stage("preprocess"):
            pixels = self.preprocess(image)
        started = time.perf_counter()
        self.on_batch(1)
        vector = self._forward([pixels])[0]
        timing.record("forward", time.perf_counter() - started)
        return vector

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """The model's input for one decoded image (the indexer's own preprocessing)."""
        return to_pixels(image, self.encoder.config)

    def embed_many(self, pixels: list[np.ndarray]) -> np.ndarray:
        """Preprocessed images -> len(pixels) x keep, in passes of at most `max_batch` images."""
        passes = []
        for start in range(0, len(pixels), self.max_batch):
            chunk = pixels[start : start + self.max_batch]
            self.on_batch(len(chunk))
            passes.append(self._forward(chunk))
        return np.concatenate(passes) if passes else np.zeros((0, self.keep), np.float32)

    def _forward(self, pixels: list[np.ndarray]) -> np.ndarray:
        return self.encoder.embed(np.stack(pixels), keep=self.keep)
