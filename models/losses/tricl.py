"""Tri-factor contrastive loss (triCL) and its 2-factor baseline (SimCLR)."""

import torch
from torch import nn

from models.losses.decorrelation import decorrelation
from models.losses.ntxent import nt_xent


class TriCLLoss(nn.Module):
    """NT-Xent with similarity z_i^T S z_j plus a decorrelation penalty.

    Zhang, Wang & Wang, "Tri-factor Contrastive Learning with Explicit Feature Importance",
    NeurIPS 2023 (arXiv 2310.18904). The learned diagonal S ranks the embedding dimensions;
    the penalty (weight `tau`) keeps them decorrelated so that ranking is meaningful.

    Args:
        temperature: softmax temperature of NT-Xent.
        tau: weight of the decorrelation penalty; 0 turns it off.

    Shapes:
        z1, z2: NxD projections of two views; importance: D, non-negative.

    >>> loss = TriCLLoss()
    >>> z1, z2 = torch.randn(8, 4), torch.randn(8, 4)
    >>> bool(loss(z1, z2, torch.ones(4)) > 0)
    True
    """

    uses_importance = True

    def __init__(self, temperature: float = 0.2, tau: float = 1.0) -> None:
        super().__init__()
        self.temperature = temperature
        self.tau = tau

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
        loss = nt_xent(z1, z2, temperature=self.temperature, importance=importance)
        if self.tau:
            loss = loss + self.tau * decorrelation(torch.cat([z1, z2]))
        return loss


class SimCLRLoss(nn.Module):
    """Plain 2-factor NT-Xent (Chen et al., 2020): the baseline without importance.

    Args:
        temperature: softmax temperature of NT-Xent.

    Shapes:
        z1, z2: NxD projections of two views; importance is accepted and ignored, so both
        losses share one training loop.
    """

    uses_importance = False

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(
        self, z1: torch.Tensor, z2: torch.Tensor, importance: torch.Tensor | None = None
    ) -> torch.Tensor:
        return nt_xent(z1, z2, temperature=self.temperature)
