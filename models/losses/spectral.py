"""Tri-factor spectral contrastive loss (tri-SCL): the form whose optimum the paper's theory
describes, with S holding the eigenvalues of the augmentation graph."""

import torch
from torch import nn


def second_moment_penalty(z: torch.Tensor) -> torch.Tensor:
    """||Z^T Z / N - I||_F^2 / D on the raw (not normalised) projections: zero only when every
    dimension has unit second moment and no two are correlated.

    Args:
        z: projections, NxD.
    """
    n, d = z.shape
    moment = z.T @ z / n  # DxD
    return (moment - torch.eye(d, device=z.device, dtype=z.dtype)).pow(2).sum() / d


def spectral_tri_loss(z1: torch.Tensor, z2: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """-2 E[z1^T S z2] + E[(z1^T S z2')^2]: positives are the two views of an image, z2' the
    second view of another image in the batch.

    With orthonormal features (unit second moment, uncorrelated), the minimiser puts the top
    eigenfunctions of the augmentation graph in z and their eigenvalues in S, so S ranks the
    dimensions and, where eigenvalues are distinct, two runs learn the same features up to sign
    (Zhang, Wang & Wang, NeurIPS 2023, Theorem 3.1 of "Tri-factor Contrastive Learning").

    Args:
        z1, z2: NxD projections of two views, not normalised.
        importance: D non-negative weights, the diagonal of S.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z1 and z2 must both be NxD, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    weighted = z1 * importance
    positive = (weighted * z2).sum(dim=1).mean()
    similarity = weighted @ z2.T  # NxN: z1_i^T S z2_j
    others = ~torch.eye(n, dtype=torch.bool, device=z1.device)
    negative = similarity[others].pow(2).mean()
    return -2 * positive + negative


class SpectralTriCLLoss(nn.Module):
    """tri-SCL plus `tau` times the second-moment penalty that keeps the features orthonormal.

    Unlike the NT-Xent form, the projections are used as they are (no normalisation), as the
    theory asks; retrieval still compares them by cosine over the first k dimensions.

    Args:
        tau: weight of the orthonormality penalty.

    >>> loss = SpectralTriCLLoss()
    >>> z1, z2 = torch.randn(8, 4), torch.randn(8, 4)
    >>> bool(torch.isfinite(loss(z1, z2, torch.ones(4))))
    True
    """

    uses_importance = True

    def __init__(self, tau: float = 1.0) -> None:
        super().__init__()
        self.tau = tau

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
        loss = spectral_tri_loss(z1, z2, importance)
        if self.tau:
            loss = loss + self.tau * second_moment_penalty(torch.cat([z1, z2]))
        return loss
