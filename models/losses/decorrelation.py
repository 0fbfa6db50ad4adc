"""Decorrelation penalty that keeps tri-factor features from collapsing onto each other."""

import torch
import torch.nn.functional as F


def decorrelation(z: torch.Tensor) -> torch.Tensor:
    """mean((Z^T Z / N - I)^2) over the L2-normalised rows of Z.

    Tri-factor contrastive learning adds this term so that the dimensions S weighs are
    (near) orthogonal: only then is each dimension's importance its own.

    Args:
        z: projections, NxD (normalised here).

    Returns:
        Scalar penalty, 0 only for uncorrelated unit-variance columns.
    """
    z = F.normalize(z, dim=1)
    n, d = z.shape
    covariance = z.T @ z / n  # DxD
    return (covariance - torch.eye(d, device=z.device, dtype=z.dtype)).pow(2).mean()
