"""Retrieval quality of an encoder at each feature budget: P@10 on Fashion-MNIST."""

import faiss
import numpy as np
import torch
from tqdm import tqdm

from models.encoder import Encoder
from models.preprocess import normalize


def embed_pixels(encoder: Encoder, pixels: np.ndarray, *, batch_size: int = 1024) -> np.ndarray:
    """uint8 NxCxHxW pixels -> float32 NxD embeddings in importance order."""
    device = next(encoder.parameters()).device
    chunks = []
    for start in tqdm(
        range(0, len(pixels), batch_size), desc="embedding", unit="batch", leave=False
    ):
        batch = torch.from_numpy(pixels[start : start + batch_size]).to(device)
        batch = normalize(batch, encoder.config).contiguous(memory_format=torch.channels_last)
        chunks.append(encoder.embed(batch).cpu().numpy())
    return np.concatenate(chunks).astype(np.float32)


def precision_at(
    xq: np.ndarray, yq: np.ndarray, xb: np.ndarray, yb: np.ndarray, budget: int, *, top: int = 10
) -> float:
    """Mean share of same-label items among the `top` cosine neighbours on `budget` dims."""
    queries = _unit_rows(xq[:, :budget])
    gallery = _unit_rows(xb[:, :budget])
    index = faiss.IndexFlatIP(budget)
    index.add(gallery)
    _, neighbours = index.search(queries, top)  # Q x top
    return float((yb[neighbours] == yq[:, None]).mean())


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)
