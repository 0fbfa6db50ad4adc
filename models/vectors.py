"""Vector helpers shared by evaluation, the indexer and the search engine."""

import numpy as np


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), as contiguous float32.

    Cosine similarity at budget k is the inner product of rows normalised over their first k
    columns, so every search path normalises through this one function.
    """
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, np.float32(1e-12)), dtype=np.float32)
