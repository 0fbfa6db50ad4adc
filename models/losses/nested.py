"""Nested (Matryoshka) NT-Xent: the contrastive loss averaged over prefixes of the dimensions."""

import torch

from models.losses.ntxent import nt_xent


def prefix_sizes(dim: int, smallest: int) -> list[int]:
    """Powers of two from `smallest` below `dim`, then `dim` itself: e.g. 8, 16, 32, 64, 128."""
    sizes = []
    size = smallest
    while size < dim:
        sizes.append(size)
        size *= 2
    return [*sizes, dim]


def budget_sizes(dim: int, *, every_up_to: int = 16) -> list[int]:
    """Every size 1..every_up_to (the small budgets callers pick), then doubling up to `dim`.

    Every small size has its own term so that dimension j sits in one more prefix than
    dimension j + 1: with powers of two only, dimensions 3 and 4 (5..8, 9..16) saw exactly the
    same prefixes, got the same gradient on their importance, and tied.
    """
    sizes = list(range(1, min(every_up_to, dim) + 1))
    size = every_up_to * 2
    while size < dim:
        sizes.append(size)
        size *= 2
    return sorted({*sizes, dim})


def nested_nt_xent(
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    order: torch.Tensor,
    sizes: list[int],
    temperature: float,
) -> torch.Tensor:
    """Mean of NT-Xent over the prefixes order[:m] of the dimensions, m in `sizes`.

    Each prefix is normalised on its own, exactly as cosine search at budget m will see it, so
    every budget is trained for directly (Kusupati et al., 2022, "Matryoshka Representation
    Learning"). `order` ranks the dimensions: the identity for MRL, the importance order for
    nested triCL.

    Args:
        z1, z2: NxD projections of two views.
        order: permutation of the D dimensions, most important first.
        sizes: prefix sizes, e.g. `prefix_sizes(D, 8)` or `budget_sizes(D)`.
        temperature: softmax temperature.
    """
    losses = []
    for size in sizes:
        kept = order[:size]
        losses.append(nt_xent(z1[:, kept], z2[:, kept], temperature=temperature))
    return torch.stack(losses).mean()
