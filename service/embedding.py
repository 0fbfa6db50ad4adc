"""Query images -> embeddings, through the same preprocessing as the indexer."""

import numpy as np
import torch
from PIL import Image

from models.encoder import Encoder
from models.preprocess import preprocess


class QueryEmbedder:
    """Embeds query images with the index's own model, truncated to the index's `keep` dims."""

    def __init__(self, encoder: Encoder, keep: int) -> None:
        self.encoder = encoder.eval()
        self.keep = keep

    def embed(self, images: list[Image.Image]) -> np.ndarray:
        """Decoded images -> float32 B x keep in importance order."""
        batch = torch.stack([preprocess(image, self.encoder.config) for image in images])
        with torch.inference_mode():
            return self.encoder.embed(batch)[:, : self.keep].numpy()
