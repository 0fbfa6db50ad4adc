"""A training run's resume state as safetensors + JSON, like checkpoints: nothing is unpickled.

Every tensor of the state (weights, optimiser moments, the random generator) goes into
`resume.safetensors` under a dotted key; everything else (epoch, losses, learning-rate
schedules, optimiser settings) into `resume.json`, with {"tensor": key} where a tensor was.
"""

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

TENSORS_FILE = "resume.safetensors"
STATE_FILE = "resume.json"


def save_resume_state(state: dict, out: Path) -> None:
    """Write `state` (nested dicts and lists of tensors, numbers, strings) into `out`."""
    tensors: dict[str, torch.Tensor] = {}
    structure = _split(state, "", tensors)
    save_file(tensors, out / TENSORS_FILE)
    (out / STATE_FILE).write_text(json.dumps(structure) + "\n")


def load_resume_state(out: Path) -> dict:
    """The state `save_resume_state` wrote into `out`, tensors on the CPU."""
    if not (out / STATE_FILE).is_file() or not (out / TENSORS_FILE).is_file():
        raise FileNotFoundError(
            f"nothing to resume: {out} holds no {STATE_FILE} (train without --resume)"
        )
    tensors = load_file(out / TENSORS_FILE)
    return _join(json.loads((out / STATE_FILE).read_text()), tensors)


def _split(value: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().cpu().clone().contiguous()
        return {"tensor": key}
    if isinstance(value, dict):
        return {str(k): _split(v, f"{key}.{k}", tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split(v, f"{key}.{i}", tensors) for i, v in enumerate(value)]
    return value


def _join(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"tensor"}:
            return tensors[value["tensor"]]
        return {k: _join(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_join(v, tensors) for v in value]
    return value
