"""Tri-factor contrastive loss (triCL) and its 2-factor baseline (SimCLR)."""

import torch
from torch import nn

from models.losses.decorrelation import decorrelation
from models.losses.nested import budget_sizes, nested_nt_xent, prefix_sizes
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
        loss = self.contrastive(z1, z2, importance)
        if self.tau:
            loss = loss + self.tau * decorrelation(torch.cat([z1, z2]))
        return loss

    def contrastive(
        self, z1: torch.Tensor, z2: torch.Tensor, importance: torch.Tensor
    ) -> torch.Tensor:
        """The tri-factor NT-Xent term alone."""
        return nt_xent(z1, z2, temperature=self.temperature, importance=importance)


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


class NestedTriCLLoss(TriCLLoss):
    """triCL whose dimensions are ordered by S and trained, in that order, for every budget.

    The loss has three parts: NT-Xent with plain cosine over each importance-ordered prefix
    (sizes 1..16, then 32, 64, ..., D: each is normalised on its own, exactly as search at that
    budget sees it), the paper's tri-factor NT-Xent over all D dimensions, from which S learns,
    and the decorrelation penalty on Z.

    Why not weigh the prefixes by S as well: with S inside every term, the dimensions of a
    leading group co-adapt until their importances tie (they are interchangeable under a
    rotation), the rest fall silent, and search quality stopped growing past k = 8. Here S
    sees only the full tri-factor similarity, and is divided by its mean there so it ranks
    dimensions instead of acting as a learned inverse temperature.

    Args:
        temperature: softmax temperature of NT-Xent.
        tau: weight of the decorrelation penalty.
    """

    def contrastive(
        self, z1: torch.Tensor, z2: torch.Tensor, importance: torch.Tensor
    ) -> torch.Tensor:
        order = torch.argsort(importance.detach(), descending=True, stable=True)
        prefixes = nested_nt_xent(
            z1, z2, order=order, sizes=budget_sizes(z1.shape[1]), temperature=self.temperature
        )
        relative = importance / importance.mean()
        return prefixes + nt_xent(z1, z2, temperature=self.temperature, importance=relative)


class MatryoshkaLoss(nn.Module):
    """NT-Xent averaged over the leading prefixes 8, 16, ..., D in index order (MRL baseline).

    Args:
        temperature: softmax temperature of NT-Xent.
        smallest: smallest prefix; the others double up to D.
    """

    uses_importance = False

    def __init__(self, temperature: float = 0.2, smallest: int = 8) -> None:
        super().__init__()
        self.temperature = temperature
        self.smallest = smallest

    def forward(
        self, z1: torch.Tensor, z2: torch.Tensor, importance: torch.Tensor | None = None
    ) -> torch.Tensor:
        order = torch.arange(z1.shape[1], device=z1.device)
        return nested_nt_xent(
            z1,
            z2,
            order=order,
            sizes=prefix_sizes(z1.shape[1], self.smallest),
            temperature=self.temperature,
        )
