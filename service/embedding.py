"""Query images -> embeddings, through the same preprocessing as the indexer.

Concurrent queries are embedded together: one forward pass over 32 images costs far less than
32 passes over one. A single worker thread owns the model; each request preprocesses its image
in its own thread and hands the tensor over. The worker takes whatever has queued up and, while
other requests are still decoding their uploads, waits up to `max_wait_ms` for them, so a lone
request never waits at all.
"""

import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image

from models.encoder import Encoder
from models.preprocess import preprocess


class QueryEmbedder:
    """Embeds query images with the index's own model, truncated to the index's `keep` dims.

    `max_batch=1` embeds each request in its own thread, one image per forward pass.
    """

    def __init__(
        self,
        encoder: Encoder,
        keep: int,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 2.0,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:
        self.encoder = encoder.eval()
        self.keep = keep
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch
        self._pending: queue.Queue[tuple[torch.Tensor, Future] | None] = queue.Queue()
        self._arriving = 0
        self._arriving_lock = threading.Lock()
        self._worker = None
        if max_batch > 1:
            self._worker = threading.Thread(target=self._run, name="query-embedder", daemon=True)
            self._worker.start()

    @contextmanager
    def arriving(self) -> Iterator["Arrival"]:
        """Mark a request that will ask for an embedding soon (while it decodes its upload)."""
        arrival = Arrival(self)
        try:
            yield arrival
        finally:
            arrival.done()

    def embed_one(self, image: Image.Image, arrival: "Arrival | None" = None) -> np.ndarray:
        """One decoded image -> float32 keep-vector in importance order."""
        tensor = preprocess(image, self.encoder.config)
        if self._worker is None:
            self.on_batch(1)
            return self._forward([tensor])[0]
        done: Future = Future()
        self._pending.put((tensor, done))
        if arrival is not None:
            arrival.done()  # queued now: the worker need not wait for it any more
        return done.result()

    def embed(self, images: list[Image.Image]) -> np.ndarray:
        """Decoded images -> float32 B x keep in importance order, in one forward pass."""
        return self._forward([preprocess(image, self.encoder.config) for image in images])

    def close(self) -> None:
        if self._worker is not None:
            self._pending.put(None)
            self._worker.join()
            self._worker = None

    def _forward(self, tensors: list[torch.Tensor]) -> np.ndarray:
        with torch.inference_mode():
            return self.encoder.embed(torch.stack(tensors))[:, : self.keep].numpy()

    def _run(self) -> None:
        while (first := self._pending.get()) is not None:
            batch = [first]
            stopping = self._gather(batch)
            self.on_batch(len(batch))
            try:
                vectors = self._forward([tensor for tensor, _ in batch])
            except Exception as error:
                for _, done in batch:
                    done.set_exception(error)
            else:
                for (_, done), vector in zip(batch, vectors, strict=True):
                    done.set_result(vector)
            if stopping:
                return

    def _gather(self, batch: list) -> bool:
        """Add queued requests to `batch`; True if the queue said to stop."""
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                item = self._pending.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if self._arriving == 0 or remaining <= 0:
                    return False
                try:
                    item = self._pending.get(timeout=remaining)
                except queue.Empty:
                    return False
            if item is None:
                return True
            batch.append(item)
        return False


class Arrival:
    """One announced request; counted until its tensor is queued or it gives up."""

    def __init__(self, embedder: QueryEmbedder) -> None:
        self._embedder = embedder
        self._counted = True
        with embedder._arriving_lock:
            embedder._arriving += 1

    def done(self) -> None:
        with self._embedder._arriving_lock:
            if self._counted:
                self._embedder._arriving -= 1
                self._counted = False
