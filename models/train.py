"""The training loop: two augmented views per image, one contrastive loss, AdamW + cosine.

Each epoch ends with a usable checkpoint and a resume state in the output directory, so a long
run can stop anywhere and continue with `resume=True`.
"""

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models.augment import AugmentConfig, augment
from models.checkpoint import save_checkpoint
from models.config import EncoderConfig
from models.datasets import channel_statistics, load_training_pixels
from models.device import resolve_device
from models.encoder import Encoder, normalize
from models.losses import make_loss
from models.resume import load_resume_state, save_resume_state

logger = logging.getLogger(__name__)

TARGET_STEPS = 2000


@dataclass(frozen=True)
class TrainConfig:
    """Recipe of one training run; stored in the checkpoint's config.json."""

    data: str = "fashion-mnist"
    loss: str = "tricl-nested"
    # None: as many epochs as make about TARGET_STEPS optimiser steps (at least one).
    epochs: int | None = None
    batch_size: int = 256
    learning_rate: float = 2e-3
    # The importance logits s learn by SGD, not AdamW: Adam moves every parameter by about lr
    # per step whatever its gradient, so all s_j with a steady sign rose in lockstep and S came
    # out flat. SGD moves each s_j by its own gradient, which is what ranks the dimensions.
    importance_learning_rate: float = 2.0
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5
    temperature: float = 0.2
    tau: float = 1.0
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 2:
            raise ValueError(
                f"batch size must be at least 2 (negatives are needed), got {self.batch_size}"
            )
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")


def train(
    config: TrainConfig,
    out: Path,
    *,
    encoder_config: EncoderConfig | None = None,
    augment_config: AugmentConfig | None = None,
    resume: bool = False,
) -> dict:
    """Train an encoder self-supervised and write its checkpoint to `out`; returns config.json.

    For an image folder the per-channel mean and std are measured on its pixels. With `resume`,
    training continues from the last finished epoch in `out` (same recipe required).
    """
    device = resolve_device(config.device)
    loss_fn = make_loss(config.loss, temperature=config.temperature, tau=config.tau)
    encoder_config = encoder_config or EncoderConfig()
    pixels = load_training_pixels(config.data, encoder_config)  # uint8 NxCxHxW
    overrides: dict = {"learn_importance": loss_fn.uses_importance}
    if config.data != "fashion-mnist":
        overrides["mean"], overrides["std"] = channel_statistics(pixels)
    encoder_config = replace(encoder_config, **overrides)
    augment_config = augment_config or AugmentConfig()
    if len(pixels) < config.batch_size:
        raise ValueError(
            f"{len(pixels)} training images are fewer than one batch of {config.batch_size}: "
            "lower --batch-size or add images"
        )
    steps_per_epoch = len(pixels) // config.batch_size
    epochs = config.epochs or max(1, math.ceil(TARGET_STEPS / steps_per_epoch))
    config = replace(config, epochs=epochs)

    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    torch.use_deterministic_algorithms(device.type == "cpu", warn_only=True)
    # channels_last is about 1.4x faster for these small convolutions on CPU.
    encoder = Encoder(encoder_config, seed=config.seed).to(
        device, memory_format=torch.channels_last
    )
    data = torch.from_numpy(pixels).to(device)
    generator = torch.Generator(device=device).manual_seed(config.seed)

    total_steps = steps_per_epoch * epochs
    warmup_steps = max(1, int(config.warmup_epochs * steps_per_epoch))
    network = [p for n, p in encoder.named_parameters() if n != "importance_logits"]
    optimizers = [
        torch.optim.AdamW(
            [
                {"params": [p for p in network if p.ndim > 1], "weight_decay": config.weight_decay},
                {"params": [p for p in network if p.ndim <= 1], "weight_decay": 0.0},
            ],
            lr=config.learning_rate,
        )
    ]
    if encoder_config.learn_importance:
        optimizers.append(
            torch.optim.SGD(
                [encoder.importance_logits], lr=config.importance_learning_rate, momentum=0.9
            )
        )
    schedulers = [
        torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: _warmup_cosine(step, warmup_steps, total_steps)
        )
        for optimizer in optimizers
    ]
    use_amp = device.type == "cuda"
    recipe = {**asdict(config), "augment": asdict(augment_config)}

    first_epoch, seconds_before, losses = 0, 0.0, []
    if resume:
        first_epoch, seconds_before, losses = _restore(
            out, recipe, encoder, optimizers, schedulers, generator
        )
        logger.info("resuming after epoch %d of %d", first_epoch, epochs)

    encoder.train()
    started = time.perf_counter()
    progress = tqdm(
        total=total_steps, initial=first_epoch * steps_per_epoch,
        desc=f"train {config.loss}", unit="step",
    )  # fmt: skip
    for epoch in range(first_epoch, epochs):
        order = torch.randperm(len(data), device=device, generator=generator)
        for step in range(steps_per_epoch):
            batch = (
                data[order[step * config.batch_size : (step + 1) * config.batch_size]].float()
                / 255.0
            )
            view1 = normalize(augment(batch, augment_config, generator), encoder_config)
            view2 = normalize(augment(batch, augment_config, generator), encoder_config)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                z = encoder(torch.cat([view1, view2]).contiguous(memory_format=torch.channels_last))
            z1, z2 = z.float().chunk(2)
            importance = encoder.dimension_importance()
            loss = loss_fn(z1, z2, importance)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}"
                )
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for optimizer, scheduler in zip(optimizers, schedulers, strict=True):
                optimizer.step()
                scheduler.step()
            losses.append(loss.item())
            progress.update()
            # max/min of S shows whether the importance is separating the dimensions.
            spread = (importance.max() / importance.min().clamp(min=1e-12)).item()
            progress.set_postfix(
                epoch=epoch + 1, loss=f"{losses[-1]:.3f}", S_spread=f"{spread:.2f}"
            )
        seconds = seconds_before + time.perf_counter() - started
        training = _summary(recipe, device, len(data), epoch + 1, steps_per_epoch, seconds, losses)
        encoder.eval()
        written = save_checkpoint(encoder, out, training=training)
        encoder.train()
        save_resume_state(
            {
                "recipe": recipe,
                "epoch": epoch + 1,
                "seconds": seconds,
                "losses": losses,
                "model": encoder.state_dict(),
                "optimizers": [optimizer.state_dict() for optimizer in optimizers],
                "schedulers": [scheduler.state_dict() for scheduler in schedulers],
                "generator": generator.get_state(),
            },
            out,
        )
    progress.close()
    encoder.eval()
    return written


def _summary(
    recipe: dict, device: torch.device, images: int, epochs_done: int, steps_per_epoch: int,
    seconds: float, losses: list[float],
) -> dict:  # fmt: skip
    """The `training` block of config.json after `epochs_done` epochs."""
    return {
        **recipe,
        "epochs_done": epochs_done,
        "device": device.type,
        "images": images,
        "steps": steps_per_epoch * epochs_done,
        "seconds": round(seconds, 1),
        "images_per_second": round(images * epochs_done / max(seconds, 1e-9), 1),
        "final_loss": round(float(np.mean(losses[-min(50, len(losses)) :])), 4),
        "torch": torch.__version__,
    }


def _restore(
    out: Path, recipe: dict, encoder: Encoder, optimizers: list, schedulers: list,
    generator: torch.Generator,
) -> tuple[int, float, list[float]]:  # fmt: skip
    """Load a resume state written after an epoch; refuses one from a different recipe."""
    state = load_resume_state(out)
    # The saved recipe went through JSON, where tuples become lists: compare it the same way.
    expected = json.loads(json.dumps(recipe))
    if state["recipe"] != expected:
        changed = sorted(k for k in expected if state["recipe"].get(k) != expected[k])
        raise ValueError(
            f"{out} was written by another recipe (differs in: {', '.join(changed)}); "
            "resume with the same options or train into a new --out"
        )
    encoder.load_state_dict(state["model"])
    for optimizer, saved in zip(optimizers, state["optimizers"], strict=True):
        # JSON keys are strings; the optimiser indexes its per-parameter state by int.
        saved["state"] = {int(k): v for k, v in saved["state"].items()}
        optimizer.load_state_dict(saved)
    for scheduler, saved in zip(schedulers, state["schedulers"], strict=True):
        scheduler.load_state_dict(saved)
    generator.set_state(state["generator"])
    return state["epoch"], state["seconds"], list(state["losses"])


def _warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
