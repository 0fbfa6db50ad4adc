import threading

import numpy as np
from PIL import Image

from models.checkpoint import SMALL_CNN_CHECKPOINT
from models.config import ONNX_FILE, EncoderConfig, read_config
from models.onnx_encoder import OnnxEncoder
from service.embedding import QueryEmbedder
from tests.helpers.images import garment


def default_encoder() -> OnnxEncoder:
    config = EncoderConfig.from_dict(read_config(SMALL_CNN_CHECKPOINT)["encoder"])
    return OnnxEncoder(SMALL_CNN_CHECKPOINT / ONNX_FILE, config)


def test_concurrent_queries_share_forward_passes_and_get_their_own_vectors():
    encoder = default_encoder()
    images = [Image.fromarray(garment(seed)) for seed in range(24)]
    alone = QueryEmbedder(encoder, 32, max_batch=1)
    expected = np.stack([alone.embed_one(image) for image in images])
    batches = []
    batched = QueryEmbedder(encoder, 32, max_batch=8, max_wait_ms=20, on_batch=batches.append)
    results = [None] * len(images)
    start = threading.Barrier(len(images))

    def ask(position: int) -> None:
        with batched.arriving():
            start.wait()
            results[position] = batched.embed_one(images[position])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_allclose(np.stack(results), expected, atol=1e-4)
    assert sum(batches) == 24 and max(batches) <= 8 and len(batches) < 24


def test_a_lone_query_does_not_wait_for_company():
    embedder = QueryEmbedder(default_encoder(), 16, max_batch=64, max_wait_ms=600_000)
    image = Image.fromarray(garment(0))
    embedder.embed_one(image)  # warm-up
    finished = threading.Event()
    threading.Thread(target=lambda: (embedder.embed_one(image), finished.set())).start()
    assert finished.wait(60)  # it would wait 10 minutes for others
