"""Optimisers and learning-rate schedules shared by every training loop."""

import math

import torch

from models.encoder import Encoder

# Fine-tuned pretrained blocks move at this fraction of the head's learning rate, so the
# ImageNet features they start from are adjusted rather than overwritten.
BACKBONE_LR_SCALE = 0.1


def make_optimizers(
    encoder: Encoder, *, learning_rate: float, weight_decay: float, importance_learning_rate: float
) -> list[torch.optim.Optimizer]:
    """AdamW for the network's trained parameters, SGD for the importance logits s.

    s learns by SGD, not AdamW: Adam moves every parameter by about lr per step whatever its
    gradient, so all s_j with a steady sign rose in lockstep and S came out flat. SGD moves each
    s_j by its own gradient, which is what ranks the dimensions.
    """
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    pretrained = encoder.config.pretrained is not None
    for name, parameter in encoder.named_parameters():
        if name == "importance_logits" or not parameter.requires_grad:
            continue
        in_backbone = pretrained and name.startswith("backbone.")
        groups.setdefault((in_backbone, parameter.ndim > 1), []).append(parameter)
    optimizers: list[torch.optim.Optimizer] = [
        torch.optim.AdamW(
            [
                {
                    "params": parameters,
                    "lr": learning_rate * (BACKBONE_LR_SCALE if in_backbone else 1.0),
                    "weight_decay": weight_decay if decayed else 0.0,
                }
                for (in_backbone, decayed), parameters in sorted(groups.items())
            ],
            lr=learning_rate,
        )
    ]
    if encoder.config.learn_importance:
        optimizers.append(
            torch.optim.SGD([encoder.importance_logits], lr=importance_learning_rate, momentum=0.9)
        )
    return optimizers


def make_schedulers(
    optimizers: list[torch.optim.Optimizer], *, warmup_steps: int, total_steps: int
) -> list[torch.optim.lr_scheduler.LambdaLR]:
    """Linear warm-up over `warmup_steps`, then cosine decay to 0 at `total_steps`."""
    return [
        torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, warmup_steps, total_steps)
        )
        for optimizer in optimizers
    ]


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """The learning-rate factor at `step`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
