"""Query images -> embeddings, through the same preprocessing as the indexer.

Concurrent queries are embedded together: one forward pass over 32 images costs far less than
32 passes over one. There is no worker thread to hand images to: each request queues its
pixels, and whichever request finds the model idle runs it, in its own thread, for everything
queued (at most `max_batch`), while the others wait for their rows. While other requests are
still decoding their uploads (inside `arriving()`) it first waits up to `max_wait_ms` for
them; a lone request never waits and pays no hand-over, so its latency is that of embedding it
alone. Stages are recorded into the request's own times (service.timing), not passed in.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


class _Slot:
    __slots__ = ("error", "forward_seconds", "pixels", "vector")

    def __init__(self, pixels: np.ndarray) -> None:
        self.pixels = pixels
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None
        self.forward_seconds = 0.0


class QueryEmbedder:
    """Embeds query images with the index's own model, truncated to the index's `keep` dims.

    `max_batch=1` embeds each request alone, one image per forward pass.
    """

    def __init__(
        self,
        encoder: PixelEncoder,
        keep: int,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 2.0,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:
        self.encoder = encoder
        self.keep = keep
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch
        self._changed = threading.Condition()
        self._queue: list[_Slot] = []
        self._running = False
        self._arriving = 0
        self._announced = threading.local()  # this thread's Arrival, inside arriving()

    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Mark this thread's request as one that will ask for an embedding soon (while it
        decodes its upload), so that a batch about to run waits briefly for it."""
        arrival = Arrival(self)
        self._announced.arrival = arrival
        try:
            yield
        finally:
            self._announced.arrival = None
            arrival.done()

    def embed_one(self, image: Image.Image) -> np.ndarray:
        """One decoded image -> float32 keep-vector in importance order.

        Records "preprocess", "forward" (the pass that embedded this image, shared with the
        rest of its batch) and "batching" (waiting for the model or for other arrivals).
        """
        with timing.stage("preprocess"):
            pixels = self.preprocess(image)
        started = time.perf_counter()
        if self.max_batch == 1:
            self.on_batch(1)
            vector = self._forward([pixels])[0]
            timing.record("forward", time.perf_counter() - started)
            return vector
        slot = _Slot(pixels)
        arrival = getattr(self._announced, "arrival", None)
        with self._changed:
            if arrival is not None:
                arrival.done_locked()
            self._queue.append(slot)
            self._changed.notify_all()
        while True:
            with self._changed:
                while slot.vector is None and slot.error is None and self._running:
                    self._changed.wait()
                if slot.vector is not None or slot.error is not None:
                    break
                self._running = True
            self._run_batch()
        timing.record("forward", slot.forward_seconds)
        timing.record("batching", time.perf_counter() - started - slot.forward_seconds)
        if slot.error is not None:
            raise slot.error
        return slot.vector

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """The model's input for one decoded image (the indexer's own preprocessing)."""
        return to_pixels(image, self.encoder.config)

    def embed_many(self, pixels: list[np.ndarray]) -> np.ndarray:
        """Preprocessed images -> len(pixels) x keep, in passes of at most `max_batch` images.

        A batch request is a batch already: it skips the hand-over between requests.
        """
        passes = []
        for start in range(0, len(pixels), self.max_batch):
            chunk = pixels[start : start + self.max_batch]
            self.on_batch(len(chunk))
            passes.append(self._forward(chunk))
        return np.concatenate(passes) if passes else np.zeros((0, self.keep), np.float32)

    def _forward(self, pixels: list[np.ndarray]) -> np.ndarray:
        return self.encoder.embed(np.stack(pixels), keep=self.keep)

    def _run_batch(self) -> None:
        """Called holding the model (`_running`): wait briefly for arrivals, embed, hand out."""
        with self._changed:
            deadline = time.monotonic() + self.max_wait
            while len(self._queue) < self.max_batch and self._arriving > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
        if not batch:
            with self._changed:
                self._running = False
                self._changed.notify_all()
            return
        try:
            self.on_batch(len(batch))
            started = time.perf_counter()
            vectors = self._forward([slot.pixels for slot in batch])
        except Exception as error:  # handed to every request in the batch
            for slot in batch:
                slot.error = error
        else:
            seconds = time.perf_counter() - started
            for slot, vector in zip(batch, vectors, strict=True):
                slot.vector, slot.forward_seconds = vector, seconds
        finally:
            with self._changed:
                self._running = False
                self._changed.notify_all()


class Arrival:
    """One announced request; counted until its pixels are queued or it gives up."""

    def __init__(self, embedder: QueryEmbedder) -> None:
        self._embedder = embedder
        self._counted = True
        with embedder._changed:
            embedder._arriving += 1

    def done(self) -> None:
        with self._embedder._changed:
            self.done_locked()

    def done_locked(self) -> None:
        if self._counted:
            self._embedder._arriving -= 1
            self._counted = False
            self._embedder._changed.notify_all()
