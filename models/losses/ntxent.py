"""NT-Xent (InfoNCE over 2N-2 negatives), optionally with a diagonal tri-factor in the middle."""

import functools

import torch
import torch.nn.functional as F


def nt_xent(
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    temperature: float,
    importance: torch.Tensor | None = None,
) -> torch.Tensor:
    """Normalised-temperature cross-entropy of SimCLR, or its tri-factor form.

    Each of the 2N projections is L2-normalised; its positive is the other view of the same
    image and the remaining 2N-2 projections are negatives. With `importance` = diag(S) the
    similarity of anchor i and sample j is (z_i * S) . z_j / temperature (Zhang et al., 2023,
    "Tri-factor Contrastive Learning"); without it, the plain z_i . z_j / temperature.

    Args:
        z1: projections of the first views, NxD.
        z2: projections of the second views, NxD.
        temperature: softmax temperature, > 0.
        importance: non-negative weight per dimension, D; None for the 2-factor loss.

    Returns:
        Scalar mean loss over the 2N anchors.

    >>> z1, z2 = torch.randn(8, 4), torch.randn(8, 4)
    >>> bool(nt_xent(z1, z2, temperature=0.2) > 0)
    True
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z1 and z2 must both be NxD, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # 2NxD
    anchors = z if importance is None else z * importance
    logits = anchors @ z.T / temperature  # 2Nx2N
    self_pairs, positives = _pairs(n, z.device)
    return F.cross_entropy(logits.masked_fill(self_pairs, float("-inf")), positives)


@functools.cache
def _pairs(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2Nx2N mask of each sample with itself and each anchor's positive, made once per
    batch size: a nested loss asks for them about twenty times a step."""
    self_pairs = torch.eye(2 * n, dtype=torch.bool, device=device)
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(device)
    return self_pairs, positives
