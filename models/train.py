"""Training: a small CNN end to end on images, or a triCL head on a frozen pretrained backbone.

The small CNN sees two augmented views of each image every step. A head on a pretrained
backbone trains on cached backbone features of several views per image (models/features.py),
thousands of steps in minutes on a CPU; with `finetune`, the backbone's last blocks are then
trained together with the head on images, in bfloat16 (meant for a GPU).

Each stage writes a usable checkpoint and a resume state into the output directory as it goes,
so a long run can stop anywhere and continue with `resume=True`.
"""

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models.augment import AugmentConfig, augment
from models.checkpoint import save_checkpoint
from models.config import EncoderConfig, read_config
from models.datasets import channel_statistics, load_training_pixels
from models.device import resolve_device
from models.encoder import Encoder, normalize
from models.features import FEATURES_FILE, view_features
from models.losses import LOSS_VERSIONS, make_loss
from models.optim import make_optimizers, make_schedulers
from models.resume import load_resume_state, save_resume_state

logger = logging.getLogger(__name__)

# Optimiser steps when the recipe does not say: on images (about 20 minutes for the small CNN
# on two cores), and on cached features (a head's step costs a fraction of a second).
TARGET_STEPS = 2000
HEAD_STEPS = 2000
# Fine-tuning trains lite0's last two stages (5 of its 16 blocks) and its head convolution.
FINETUNED_BLOCKS = 5
# A head run writes its checkpoint and resume state this often (an image run: every epoch).
HEAD_SAVE_EVERY = 500


@dataclass(frozen=True)
class TrainConfig:
    """Recipe of one training run; stored in the checkpoint's config.json."""

    data: str = "fashion-mnist"
    loss: str = "tricl-nested"
    # On images: None trains as many epochs as make about TARGET_STEPS optimiser steps.
    epochs: int | None = None
    # On cached features (a pretrained backbone): None trains HEAD_STEPS steps.
    steps: int | None = None
    batch_size: int = 256
    learning_rate: float = 2e-3
    importance_learning_rate: float = 2.0
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5
    temperature: float = 0.2
    tau: float = 1.0
    seed: int = 0
    device: str = "auto"
    # Views per image whose backbone features are cached (the first is the image itself).
    views: int = 4
    # After the head, train the pretrained backbone's last blocks too (on images, bfloat16).
    finetune: bool = False
    # Head only: the share of pairs whose second view is of one of the image's `neighbours`
    # nearest images by frozen backbone features rather than of the image itself. Without
    # them the first dimensions learn each image's own details and lose what it depicts:
    # a head's k = 4 fell below PCA of the frozen features (docs/results.md).
    neighbour_positives: float = 0.5
    neighbours: int = 5

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.batch_size < 2:
            raise ValueError(
                f"batch size must be at least 2 (negatives are needed), got {self.batch_size}"
            )
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if self.views < 2:
            raise ValueError(f"views must be at least 2, got {self.views}")


@dataclass
class _Stage:
    """One optimisation stage: its name, length, and where its resume state says it stood."""

    name: str
    total_steps: int
    save_every: int
    first_step: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # recorded in config.json's "training"


def train(
    config: TrainConfig,
    out: Path,
    *,
    encoder_config: EncoderConfig | None = None,
    augment_config: AugmentConfig | None = None,
    resume: bool = False,
) -> dict:
    """Train an encoder self-supervised and write its checkpoint to `out`; returns config.json.

    For the small CNN on an image folder, the per-channel mean and std are measured on its
    pixels (a pretrained backbone keeps its own). With `resume`, training continues from the
    last state saved in `out` (same recipe required).
    """
    device = resolve_device(config.device)
    loss_fn = make_loss(config.loss, temperature=config.temperature, tau=config.tau)
    encoder_config = encoder_config or EncoderConfig()
    if config.finetune and encoder_config.pretrained is None:
        raise ValueError("--finetune trains a pretrained backbone: choose one with --backbone")
    pixels = load_training_pixels(config.data, encoder_config)  # uint8 NxCxHxW
    overrides: dict = {"learn_importance": loss_fn.uses_importance}
    if config.data != "fashion-mnist" and encoder_config.pretrained is None:
        overrides["mean"], overrides["std"] = channel_statistics(pixels)
    encoder_config = replace(encoder_config, **overrides)
    augment_config = augment_config or AugmentConfig()
    if encoder_config.pretrained is not None and 2 <= len(pixels) < config.batch_size:
        logger.info("%d images: a batch holds them all", len(pixels))
        config = replace(config, batch_size=len(pixels))
    if len(pixels) < config.batch_size:
        raise ValueError(
            f"{len(pixels)} training images are fewer than one batch of {config.batch_size}: "
            "lower --batch-size or add images"
        )
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    torch.use_deterministic_algorithms(device.type == "cpu", warn_only=True)
    recipe = {**asdict(config), "augment": asdict(augment_config)}
    saved = load_resume_state(out) if resume else None
    if saved is not None and "stage" not in saved:
        raise ValueError(f"{out} holds a resume state of an older version: train into a new --out")

    encoder = Encoder(encoder_config, seed=config.seed)
    if encoder_config.pretrained is None:
        return _train_on_images(
            encoder, pixels, loss_fn, config, augment_config, recipe, out, device, saved
        )
    if saved is None or saved["stage"] == "head":
        written = _train_head(encoder, pixels, loss_fn, config, augment_config, recipe, out,
                              device, saved)  # fmt: skip
        saved = None
        if not config.finetune:
            return written
    finetuned = Encoder(replace(encoder_config, finetuned_blocks=FINETUNED_BLOCKS))
    finetuned.load_state_dict(encoder.state_dict())
    return _train_on_images(
        finetuned, pixels, loss_fn, config, augment_config, recipe, out, device, saved,
        stage_name="finetune",
    )  # fmt: skip


def _train_on_images(
    encoder: Encoder, pixels: np.ndarray, loss_fn, config: TrainConfig,
    augment_config: AugmentConfig, recipe: dict, out: Path, device: torch.device,
    saved: dict | None, *, stage_name: str = "images",
) -> dict:  # fmt: skip
    """Two augmented views of every image per step through the whole network; one epoch per
    save."""
    steps_per_epoch = len(pixels) // config.batch_size
    epochs = config.epochs or max(1, math.ceil(TARGET_STEPS / steps_per_epoch))
    recipe = {**recipe, "epochs": epochs}
    stage = _Stage(stage_name, steps_per_epoch * epochs, save_every=steps_per_epoch)
    # channels_last is about 1.4x faster for small convolutions on CPU.
    encoder.to(device, memory_format=torch.channels_last)
    data = torch.from_numpy(pixels).to(device)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    # A pretrained backbone computes in bfloat16 (on a GPU); the small CNN only on a GPU.
    dtype = torch.bfloat16 if device.type == "cuda" or stage_name == "finetune" else None

    def next_views(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = _epoch_batch(step, steps_per_epoch, len(data), config, device)
        batch = data[rows]
        batch = batch.float() / 255.0
        view1 = normalize(augment(batch, augment_config, generator), encoder.config)
        view2 = normalize(augment(batch, augment_config, generator), encoder.config)
        both = torch.cat([view1, view2]).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            z = encoder(both)
        return z.float().chunk(2)

    def summary(steps: int) -> dict:
        return {"epochs_done": steps // steps_per_epoch, "images": len(data),
                "images_per_second": round(len(data) * (steps / steps_per_epoch)
                                           / max(stage.seconds, 1e-9), 1)}  # fmt: skip

    return _optimise(encoder, loss_fn, next_views, stage, config, recipe, out, device,
                     generator, saved, summary)  # fmt: skip


def _train_head(
    encoder: Encoder, pixels: np.ndarray, loss_fn, config: TrainConfig,
    augment_config: AugmentConfig, recipe: dict, out: Path, device: torch.device,
    saved: dict | None,
) -> dict:  # fmt: skip
    """The projector and S on cached backbone features: two of each image's views per step."""
    started = time.perf_counter()
    features = view_features(
        pixels, encoder, augment_config, views=config.views, seed=config.seed, device=device,
        cache=out / FEATURES_FILE,
    )  # fmt: skip
    feature_seconds = round(time.perf_counter() - started, 1)
    total_steps = config.steps or HEAD_STEPS
    stage = _Stage("head", total_steps, save_every=min(HEAD_SAVE_EVERY, total_steps))
    encoder.to(device)
    features = features.to(device)
    count, views = features.shape[:2]
    steps_per_epoch = count // config.batch_size
    generator = torch.Generator(device=device).manual_seed(config.seed)

    neighbours = None
    # A gallery smaller than neighbours + 1 images offers fewer neighbours to each image.
    neighbour_count = min(config.neighbours, count - 1)
    if config.neighbour_positives and neighbour_count > 0:
        neighbours = _nearest_neighbours(features[:, 0], neighbour_count)

    def next_views(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = _epoch_batch(step, steps_per_epoch, count, config, device)
        first = torch.randint(views, (len(rows),), device=device, generator=generator)
        # A different second view: shifted by 1..views-1 places.
        shift = torch.randint(1, views, (len(rows),), device=device, generator=generator)
        second = (first + shift) % views
        partners = rows
        if neighbours is not None:
            pick = torch.randint(neighbours.shape[1], (len(rows),), device=device,
                                 generator=generator)  # fmt: skip
            swap = torch.rand(len(rows), device=device, generator=generator)
            partners = torch.where(swap < config.neighbour_positives,
                                   neighbours[rows, pick], rows)  # fmt: skip
        z = encoder.head(torch.cat([features[rows, first], features[partners, second]]).float())
        return z.chunk(2)

    def summary(steps: int) -> dict:
        return {"images": count, "views": views, "feature_seconds": feature_seconds,
                "backbone": encoder.config.backbone}  # fmt: skip

    return _optimise(encoder, loss_fn, next_views, stage, config, recipe, out, device,
                     generator, saved, summary)  # fmt: skip


def _nearest_neighbours(features: torch.Tensor, count: int) -> torch.Tensor:
    """NxF features -> Nxcount rows of each row's nearest other rows by cosine."""
    unit = torch.nn.functional.normalize(features.float(), dim=1)
    nearest = []
    for start in range(0, len(unit), 1024):
        similarity = unit[start : start + 1024] @ unit.T
        similarity[torch.arange(len(similarity)), torch.arange(start, start + len(similarity))] = -2
        nearest.append(similarity.topk(count, dim=1).indices)
    return torch.cat(nearest)


def _optimise(
    encoder: Encoder, loss_fn, next_views: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    stage: _Stage, config: TrainConfig, recipe: dict, out: Path, device: torch.device,
    generator: torch.Generator, saved: dict | None, summary: Callable[[int], dict],
) -> dict:  # fmt: skip
    """The steps of one stage: loss, backward, AdamW (and SGD for s), checkpoints as it goes."""
    optimizers = make_optimizers(
        encoder, learning_rate=config.learning_rate, weight_decay=config.weight_decay,
        importance_learning_rate=config.importance_learning_rate,
    )  # fmt: skip
    warmup = max(1, int(config.warmup_epochs * stage.save_every)) if stage.name != "head" else (
        max(1, stage.total_steps // 20)
    )  # fmt: skip
    schedulers = make_schedulers(optimizers, warmup_steps=warmup, total_steps=stage.total_steps)
    if saved is not None and saved["stage"] == stage.name:
        _check_recipe(saved, recipe, out)
        _restore(saved, encoder, optimizers, schedulers, generator)
        stage.first_step, stage.seconds = saved["step"], saved["seconds"]
        stage.losses = list(saved["losses"])
        logger.info("resuming %s after step %d of %d", stage.name, stage.first_step,
                    stage.total_steps)  # fmt: skip

    encoder.train()
    started = time.perf_counter() - stage.seconds
    written: dict = {}
    progress = tqdm(total=stage.total_steps, initial=stage.first_step,
                    desc=f"train {stage.name} ({config.loss})", unit="step")  # fmt: skip
    for step in range(stage.first_step, stage.total_steps):
        z1, z2 = next_views(step)
        importance = encoder.dimension_importance()
        loss = loss_fn(z1, z2, importance)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at {stage.name} step {step + 1}")
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for optimizer, scheduler in zip(optimizers, schedulers, strict=True):
            optimizer.step()
            scheduler.step()
        stage.losses.append(loss.item())
        progress.update()
        # max/min of S shows whether the importance is separating the dimensions.
        spread = (importance.max() / importance.min().clamp(min=1e-12)).item()
        progress.set_postfix(loss=f"{stage.losses[-1]:.3f}", S_spread=f"{spread:.2f}")
        done = step + 1
        if done % stage.save_every == 0 or done == stage.total_steps:
            stage.seconds = time.perf_counter() - started
            encoder.eval()
            training = {**recipe, "loss_version": LOSS_VERSIONS[config.loss],
                        "stage": stage.name, "steps": done, "device": device.type,
                        "seconds": round(stage.seconds, 1), **summary(done),
                        "final_loss": round(float(np.mean(stage.losses[-50:])), 4),
                        "torch": torch.__version__}  # fmt: skip
            written = save_checkpoint(encoder, out, training=training)
            encoder.train()
            save_resume_state(
                {
                    "recipe": recipe,
                    "stage": stage.name,
                    "step": done,
                    "seconds": stage.seconds,
                    "losses": stage.losses,
                    "model": encoder.stored_state_dict(),
                    "optimizers": [optimizer.state_dict() for optimizer in optimizers],
                    "schedulers": [scheduler.state_dict() for scheduler in schedulers],
                    "generator": generator.get_state(),
                },
                out,
            )
    progress.close()
    encoder.eval()
    return written or read_config(out)  # resumed after its last step: nothing left to do


def _epoch_batch(
    step: int, steps_per_epoch: int, count: int, config: TrainConfig, device: torch.device
) -> torch.Tensor:
    """Rows of the batch at `step`: each epoch is its own seeded permutation of the rows, so a
    run resumed in the middle of an epoch draws the same batches as one that never stopped."""
    epoch, within = divmod(step, steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    order = torch.randperm(count, generator=generator).to(device)
    return order[within * config.batch_size : (within + 1) * config.batch_size]


def _check_recipe(saved: dict, recipe: dict, out: Path) -> None:
    """Refuse to resume a run written by another recipe."""
    # The saved recipe went through JSON, where tuples become lists: compare it the same way.
    expected = json.loads(json.dumps(recipe))
    if saved["recipe"] != expected:
        changed = sorted(k for k in expected if saved["recipe"].get(k) != expected[k])
        raise ValueError(
            f"{out} was written by another recipe (differs in: {', '.join(changed)}); "
            "resume with the same options or train into a new --out"
        )


def _restore(
    saved: dict, encoder: Encoder, optimizers: list, schedulers: list,
    generator: torch.Generator,
) -> None:  # fmt: skip
    """Load weights, optimiser moments, schedules and the random state of a resume state."""
    encoder.load_stored_state_dict(saved["model"])
    for optimizer, state in zip(optimizers, saved["optimizers"], strict=True):
        # JSON keys are strings; the optimiser indexes its per-parameter state by int.
        state["state"] = {int(k): v for k, v in state["state"].items()}
        optimizer.load_state_dict(state)
    for scheduler, state in zip(schedulers, saved["schedulers"], strict=True):
        scheduler.load_state_dict(state)
    generator.set_state(saved["generator"])
