"""Retrieval metrics at a feature budget: P@10 and mAP@100 by exact cosine search."""

from pathlib import Path

import faiss
import numpy as np
import torch
from tqdm import tqdm

from models.datasets import load_fashion_mnist
from models.encoder import Encoder
from models.preprocess import normalize
from models.vectors import unit_rows

SPLITS = ("test", "val")
VALIDATION_SIZE = 10_000


def load_split(
    split: str, root: Path | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Queries and gallery (uint8 images, labels) for "test" or "val".

    test: the 10,000 test images against the 60,000 training images.
    val: the last 10,000 training images against the first 50,000, for choosing recipes
    without looking at the test queries.
    """
    train_images, train_labels = load_fashion_mnist("train", root)
    if split == "test":
        test_images, test_labels = load_fashion_mnist("test", root)
        return test_images, test_labels, train_images, train_labels
    if split == "val":
        cut = len(train_images) - VALIDATION_SIZE
        return train_images[cut:], train_labels[cut:], train_images[:cut], train_labels[:cut]
    raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


def embed_pixels(encoder: Encoder, pixels: np.ndarray, *, batch_size: int = 1024) -> np.ndarray:
    """uint8 NxCxHxW pixels -> float32 NxD embeddings in importance order."""
    device = next(encoder.parameters()).device
    encoder = encoder.to(memory_format=torch.channels_last)
    chunks = []
    for start in tqdm(
        range(0, len(pixels), batch_size), desc="embedding", unit="batch", leave=False
    ):
        batch = torch.from_numpy(pixels[start : start + batch_size]).to(device)
        batch = normalize(batch, encoder.config).contiguous(memory_format=torch.channels_last)
        chunks.append(encoder.embed(batch).cpu().numpy())
    return np.concatenate(chunks).astype(np.float32)


def retrieval_metrics(
    xq: np.ndarray, yq: np.ndarray, xb: np.ndarray, yb: np.ndarray, budget: int
) -> dict[str, float]:
    """P@10 and mAP@100 of exact cosine search on the first `budget` columns.

    AP@100 of a query = sum over ranks r <= 100 of P@r * rel(r), divided by min(R, 100), where
    R is the number of gallery items with the query's label; mAP@100 is its mean.
    """
    depth = min(100, len(xb))
    index = faiss.IndexFlatIP(budget)
    index.add(unit_rows(xb[:, :budget]))
    _, I = index.search(unit_rows(xq[:, :budget]), depth)  # Q x depth
    relevant = yb[I] == yq[:, None]
    precision_at_rank = np.cumsum(relevant, axis=1) / np.arange(1, depth + 1)
    per_label = np.bincount(yb, minlength=int(max(yb.max(), yq.max())) + 1)
    denominators = np.minimum(per_label[yq], depth)
    average_precision = (precision_at_rank * relevant).sum(axis=1) / np.maximum(denominators, 1)
    return {
        "p_at_10": float(relevant[:, :10].mean()),
        "map_at_100": float(average_precision.mean()),
    }
