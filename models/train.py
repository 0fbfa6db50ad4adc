"""The training loop: two augmented views per image, one contrastive loss, AdamW + cosine."""

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models.augment import AugmentConfig, augment
from models.checkpoint import save_checkpoint
from models.config import EncoderConfig
from models.datasets import load_training_pixels
from models.device import resolve_device
from models.encoder import Encoder
from models.losses import make_loss
from models.preprocess import normalize

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Recipe of one training run; stored in the checkpoint's config.json."""

    data: str = "fashion-mnist"
    loss: str = "tricl-nested"
    epochs: int = 3
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5
    temperature: float = 0.2
    tau: float = 1.0
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.epochs < 1:
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
) -> dict:
    """Train an encoder self-supervised and write its checkpoint to `out`; returns config.json."""
    device = resolve_device(config.device)
    loss_fn = make_loss(config.loss, temperature=config.temperature, tau=config.tau)
    encoder_config = encoder_config or EncoderConfig()
    encoder_config = EncoderConfig.from_dict(
        {**encoder_config.__dict__, "learn_importance": loss_fn.uses_importance}
    )
    augment_config = augment_config or AugmentConfig()

    pixels = load_training_pixels(config.data, encoder_config)  # uint8 NxCxHxW
    if len(pixels) < config.batch_size:
        raise ValueError(
            f"{len(pixels)} training images are fewer than one batch of {config.batch_size}: "
            "lower --batch-size or add images"
        )
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    torch.use_deterministic_algorithms(device.type == "cpu", warn_only=True)
    # channels_last is about 1.4x faster for these small convolutions on CPU.
    encoder = Encoder(encoder_config, seed=config.seed).to(
        device, memory_format=torch.channels_last
    )
    data = torch.from_numpy(pixels).to(device)
    generator = torch.Generator(device=device).manual_seed(config.seed)

    steps_per_epoch = len(data) // config.batch_size
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = max(1, int(config.warmup_epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW(
        [
            {
                "params": [p for n, p in encoder.named_parameters() if p.ndim > 1],
                "weight_decay": config.weight_decay,
            },
            {
                "params": [
                    p for n, p in encoder.named_parameters() if p.ndim <= 1 and p.requires_grad
                ],
                "weight_decay": 0.0,
            },
        ],
        lr=config.learning_rate,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _warmup_cosine(step, warmup_steps, total_steps)
    )
    use_amp = device.type == "cuda"

    encoder.train()
    started = time.perf_counter()
    seen = 0
    losses = []
    progress = tqdm(total=total_steps, desc=f"train {config.loss}", unit="step")
    for epoch in range(config.epochs):
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
            loss = loss_fn(z1, z2, encoder.dimension_importance())
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            seen += len(batch)
            losses.append(loss.item())
            progress.update()
            progress.set_postfix(
                epoch=epoch + 1,
                loss=f"{losses[-1]:.3f}",
                img_s=f"{seen / (time.perf_counter() - started):.0f}",
            )
    progress.close()
    seconds = time.perf_counter() - started

    encoder.eval()
    training = {
        **asdict(config),
        "augment": asdict(augment_config),
        "device": device.type,
        "images": len(data),
        "steps": total_steps,
        "seconds": round(seconds, 1),
        "images_per_second": round(seen / seconds, 1),
        "final_loss": round(float(np.mean(losses[-min(50, len(losses)) :])), 4),
        "torch": torch.__version__,
    }
    return save_checkpoint(encoder.cpu(), out, training=training)


def _warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
