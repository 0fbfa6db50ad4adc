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


def make_loss(name: str, *, temperature: float, tau: float) -> nn.Module:
    """Build a loss by its command-line name."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name](temperature, tau)


__all__ = [
    "LOSSES",
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
