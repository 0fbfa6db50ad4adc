"""Contrastive losses behind one interface: loss(z1, z2, importance) -> scalar."""

from collections.abc import Callable

from torch import nn

from models.losses.decorrelation import decorrelation
from models.losses.nested import budget_sizes, nested_nt_xent, prefix_sizes
from models.losses.ntxent import nt_xent
from models.losses.spectral import SpectralTriCLLoss, second_moment_penalty, spectral_tri_loss
from models.losses.tricl import MatryoshkaLoss, NestedTriCLLoss, SimCLRLoss, TriCLLoss

# Command-line name -> factory(temperature, tau).
LOSSES: dict[str, Callable[[float, float], nn.Module]] = {
    "tricl": lambda temperature, tau: TriCLLoss(temperature=temperature, tau=tau),
    "simclr": lambda temperature, tau: SimCLRLoss(temperature=temperature),
    "tricl-nested": lambda temperature, tau: NestedTriCLLoss(temperature=temperature, tau=tau),
    "mrl": lambda temperature, tau: MatryoshkaLoss(temperature=temperature),
    "tricl-spectral": lambda temperature, tau: SpectralTriCLLoss(tau=tau),
}


# Bumped whenever a loss's definition changes, and recorded in every checkpoint, so a model says
# which loss made it. tricl-nested 1: prefixes 2, 4, ..., D with S inside each, s by Adam;
# 2: every prefix up to 16, S only in the full tri-factor term, s by SGD.
LOSS_VERSIONS = {"tricl": 1, "simclr": 1, "tricl-nested": 2, "mrl": 1, "tricl-spectral": 1}


def make_loss(name: str, *, temperature: float, tau: float) -> nn.Module:
    """Build a loss by its command-line name."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name](temperature, tau)


__all__ = [
    "LOSSES",
    "LOSS_VERSIONS",
    "MatryoshkaLoss",
    "NestedTriCLLoss",
    "SimCLRLoss",
    "SpectralTriCLLoss",
    "TriCLLoss",
    "budget_sizes",
    "decorrelation",
    "make_loss",
    "nested_nt_xent",
    "nt_xent",
    "prefix_sizes",
    "second_moment_penalty",
    "spectral_tri_loss",
]
