"""A demo gallery from Fashion-MNIST, so the product can be tried with nothing to find."""

from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from models.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist


def write_demo_gallery(
    out: Path, *, split: str = "test", count: int = 2000, root: Path | None = None
) -> int:
    """Write the first `count` images of a Fashion-MNIST split as PNGs in class folders.

    Files are named `<class>/<split>-<index>.png`, so every id says where the image came from.
    Returns the number of files written.
    """
    if count < 1:
        raise ValueError(f"--count must be at least 1, got {count}")
    images, labels = load_fashion_mnist(split, root)
    count = min(count, len(images))
    for name in FASHION_MNIST_CLASSES:
        (out / name).mkdir(parents=True, exist_ok=True)
    for position in tqdm(range(count), desc="writing", unit="img"):
        label = FASHION_MNIST_CLASSES[int(labels[position])]
        image = Image.fromarray(np.asarray(images[position]))
        image.save(out / label / f"{split}-{position:05d}.png")
    return count
