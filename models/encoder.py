"""The encoder: backbone, projector and the learned diagonal importance S of triCL."""

import torch
import torch.nn.functional as F
from torch import nn

from models.backbone import ResidualCNN
from models.config import EncoderConfig


def normalize(pixels: torch.Tensor, config: EncoderConfig) -> torch.Tensor:
    """uint8 or [0, 1] float pixels BxCxHxW -> normalised float input of the encoder."""
    if pixels.dtype == torch.uint8:
        pixels = pixels.float() / 255.0
    mean = torch.tensor(config.mean, device=pixels.device).view(1, -1, 1, 1)
    std = torch.tensor(config.std, device=pixels.device).view(1, -1, 1, 1)
    return (pixels - mean) / std


class Encoder(nn.Module):
    """Maps images to D-dimensional embeddings whose dimensions carry a learned importance.

    The importance of dimension j is softplus(s_j). Training with the tri-factor loss makes it
    rank dimensions by how much they matter, so `embed` returns them sorted: truncating its
    output to the first k columns keeps the k most important features.
    """

    def __init__(self, config: EncoderConfig, *, seed: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = ResidualCNN(config.in_channels, config.widths, config.pool_grid)
        self.projector = nn.Sequential(
            nn.Linear(self.backbone.out_features, config.projector_hidden, bias=False),
            nn.BatchNorm1d(config.projector_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.projector_hidden, config.embedding_dim),
        )
        # Small random init breaks the symmetry between dimensions without preferring any.
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
        initial = (
            0.01 * torch.randn(config.embedding_dim, generator=generator)
            if config.learn_importance
            else torch.zeros(config.embedding_dim)
        )
        self.importance_logits = nn.Parameter(initial, requires_grad=config.learn_importance)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Projections in the model's own dimension order (for training). BxCxHxW -> BxD."""
        return self.projector(self.backbone(images))

    def dimension_importance(self) -> torch.Tensor:
        """softplus(s): the diagonal of S, one non-negative weight per dimension. -> D."""
        return F.softplus(self.importance_logits)

    def importance_order(self) -> torch.Tensor:
        """Permutation that sorts dimensions by decreasing importance (ties keep index order).

        Sorted by the logits on the CPU: softplus is monotonic, but its float32 rounding differs
        between devices, and near-equal importances then swapped columns between a GPU-built
        gallery and CPU-embedded queries.
        """
        return torch.argsort(self.importance_logits.detach().cpu(), descending=True, stable=True)

    @torch.inference_mode()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Embeddings with columns in importance order, not normalised. BxCxHxW -> BxD."""
        return self(images).float()[:, self.importance_order().to(images.device)]
