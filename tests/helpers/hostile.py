"""Every kind of bad request a client might send, with the answer it must get.

One table for the tests over real HTTP (tests/service/test_hostile.py) and docs/reliability.md.
Parameters are checked against the test index (keep 32) and the default settings.
"""

import io

import numpy as np
from PIL import Image

from tests.helpers.images import garment, png_bytes


def encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def bomb_png() -> bytes:
    """A 20,000 x 20,000 PNG of a few tens of kilobytes: 400 M pixels once decoded."""
    return encoded(Image.new("1", (20_000, 20_000)), "PNG")


def animated_gif() -> bytes:
    frames = [Image.fromarray(garment(seed)).convert("P") for seed in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


JPEG = encoded(Image.fromarray(garment(7)).convert("RGB"), "JPEG")
PNG = png_bytes(garment(7))
UPLOADS = [
    ("zero-byte file", b"", 400, "the uploaded file is empty"),
    ("random bytes", bytes(range(256)) * 4, 400, "not an image in a supported format"),
    ("text file named .png", b"hello, this is text", 400, "not an image in a supported format"),
    ("truncated JPEG", JPEG[: len(JPEG) // 2], 400, "corrupt or truncated"),
    ("truncated PNG", PNG[: len(PNG) // 2], 400, "corrupt or truncated"),
    ("PNG missing its end", PNG[:-30], 400, "corrupt or truncated"),
    ("JPEG header then zeros", b"\xff\xd8\xff\xe0" + b"\x00" * 100, 400, "not an image"),
    ("20,000 x 20,000 PNG", bomb_png(), 413, "at most 40,000,000 pixels"),
    ("animated GIF", animated_gif(), 200, None),
    ("CMYK JPEG", encoded(Image.fromarray(garment(8)).convert("CMYK"), "JPEG"), 200, None),
    ("16-bit PNG", png_bytes(garment(9).astype(np.uint16) * 257), 200, None),
    ("palette PNG", encoded(Image.fromarray(garment(10)).convert("P"), "PNG"), 200, None),
    ("RGBA PNG", encoded(Image.fromarray(garment(11)).convert("RGBA"), "PNG"), 200, None),
]
PARAMETERS = [
    ({"k_features": 0}, "k_features must be an integer from 1 to 32, got 0"),
    ({"k_features": -1}, "k_features must be an integer from 1 to 32, got -1"),
    ({"k_features": 33}, "k_features must be an integer from 1 to 32, got 33"),
    ({"k_features": "1.5"}, "k_features: Input should be a valid integer"),
    ({"k_features": "abc"}, "k_features: Input should be a valid integer"),
    ({"k_features": "9" * 40}, "k_features must be an integer from 1 to 32"),
    ({"k_features": 10**30}, f"k_features must be an integer from 1 to 32, got {10**30}"),
    ({"top_k": 0}, "top_k must be an integer from 1 to 1000, got 0"),
    ({"top_k": 1001}, "top_k must be an integer from 1 to 1000, got 1001"),
    ({"top_k": 10**9}, "top_k must be an integer from 1 to 1000"),
    (
        {"k_features": 8, "rerank_features": 8},
        "rerank_features must be an integer above k_features (8) and at most 32, got 8",
    ),
    (
        {"k_features": 8, "rerank_features": 33},
        "rerank_features must be an integer above k_features (8) and at most 32, got 33",
    ),
    (
        {"k_features": 8, "rerank_features": 32, "shortlist": 5},
        "shortlist must be an integer from top_k (10) to 10000, got 5",
    ),
]
