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


def test_concurrent_queries_each_get_their_own_vector():
    embedder = QueryEmbedder(default_encoder(), 32)
    images = [Image.fromarray(garment(seed)) for seed in range(24)]
    expected = np.stack([embedder.embed_one(image) for image in images])
    results = [None] * len(images)
    start = threading.Barrier(len(images))

    def ask(position: int) -> None:
        start.wait()
        results[position] = embedder.embed_one(images[position])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_allclose(np.stack(results), expected, atol=1e-4)


def test_a_batch_goes_through_the_model_in_passes_of_at_most_max_batch():
    passes = []
    embedder = QueryEmbedder(default_encoder(), 32, max_batch=8, on_batch=passes.append)
    images = [Image.fromarray(garment(seed)) for seed in range(20)]
    vectors = embedder.embed_many([embedder.preprocess(image) for image in images])
    alone = np.stack([embedder.embed_one(image) for image in images])
    np.testing.assert_allclose(vectors, alone, atol=1e-4)
    assert passes[:3] == [8, 8, 4]
