"""Choosing where tensors live: the GPU when one is there, the CPU otherwise."""

import torch


def resolve_device(name: str) -> torch.device:
    """ "auto" -> cuda if available else cpu; "cuda" without a GPU is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA GPU is available")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)
