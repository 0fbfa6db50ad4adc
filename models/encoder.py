"""The encoder: backbone, projector and the learned diagonal importance S of triCL."""

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones import make_backbone
from models.config import EncoderConfig


def normalize(pixels: torch.Tensor, config: EncoderConfig) -> torch.Tensor:
    """uint8 or [0, 1] float pixels BxCxHxW -> normalised float input of the encoder."""
    if pixels.dtype == torch.uint8:
        pixels = pixels.float() / 255.0
    mean = torch.tensor(config.mean, device=pixels.device).view(1, -1, 1, 1)
    std = torch.tensor(config.std, device=pixels.device).view(1, -1, 1, 1)
    return (pixels - mean) / std


def make_projector(in_features: int, config: EncoderConfig) -> nn.Module:
    """Linear, or Linear-BN-ReLU-Linear with `projector_hidden` units: F -> D."""
    if config.projector_hidden == 0:
        return nn.Linear(in_features, config.embedding_dim)
    return nn.Sequential(
        nn.Linear(in_features, config.projector_hidden, bias=False),
        nn.BatchNorm1d(config.projector_hidden),
        nn.ReLU(inplace=True),
        nn.Linear(config.projector_hidden, config.embedding_dim),
    )


class Encoder(nn.Module):
    """Maps images to D-dimensional embeddings whose dimensions carry a learned importance.

    The importance of dimension j is softplus(s_j). Training with the tri-factor loss makes it
    rank dimensions by how much they matter, so `embed` returns them sorted: truncating its
    output to the first k columns keeps the k most important features.

    A pretrained backbone stays frozen (eval mode, its batch-norm statistics as trained) except
    for its last `config.finetuned_blocks` blocks.
    """

    def __init__(self, config: EncoderConfig, *, seed: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = make_backbone(config)
        self.projector = make_projector(self.backbone.out_features, config)
        # Small random init breaks the symmetry between dimensions without preferring any.
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
        initial = (
            0.01 * torch.randn(config.embedding_dim, generator=generator)
            if config.learn_importance
            else torch.zeros(config.embedding_dim)
        )
        self.importance_logits = nn.Parameter(initial, requires_grad=config.learn_importance)
        if config.pretrained is not None:
            trained = self.trained_backbone_prefixes()
            for name, parameter in self.backbone.named_parameters():
                parameter.requires_grad_(name.startswith(trained))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Projections in the model's own dimension order (for training). BxCxHxW -> BxD."""
        return self.projector(self.backbone(images))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Projections of backbone features (cached ones, for training the head). BxF -> BxD."""
        return self.projector(features)

    def train(self, mode: bool = True) -> "Encoder":
        """Training mode for the projector (and fine-tuned blocks); a pretrained backbone's
        batch norms keep their ImageNet statistics either way."""
        super().train(mode)
        if self.config.pretrained is not None:
            self.backbone.eval()
            trained = self.trained_backbone_prefixes()
            for name, module in self.backbone.named_modules():
                if (
                    mode
                    and f"{name}.".startswith(trained)
                    and not isinstance(module, nn.modules.batchnorm._BatchNorm)
                ):
                    module.training = True
        return self

    def trained_backbone_prefixes(self) -> tuple[str, ...]:
        """Backbone parameter prefixes that training changes (all of them for the small CNN)."""
        if self.config.pretrained is None:
            return ("",)
        return self.backbone.trainable_prefixes(self.config.finetuned_blocks)

    def stored_state_dict(self) -> dict[str, torch.Tensor]:
        """What a checkpoint holds: every trained tensor, not the frozen pretrained weights."""
        trained = tuple(f"backbone.{prefix}" for prefix in self.trained_backbone_prefixes())
        return {
            name: tensor
            for name, tensor in self.state_dict().items()
            if not name.startswith("backbone.") or (trained and name.startswith(trained))
        }

    def load_stored_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load what `stored_state_dict` returned; anything missing or extra is an error."""
        expected = self.stored_state_dict().keys()
        if missing := sorted(expected - state.keys()):
            raise ValueError(f"missing tensors: {', '.join(missing[:5])}")
        if unexpected := sorted(state.keys() - expected):
            raise ValueError(f"unexpected tensors: {', '.join(unexpected[:5])}")
        self.load_state_dict(state, strict=False)

    def dimension_importance(self) -> torch.Tensor:
        """softplus(s): the diagonal of S, one non-negative weight per dimension. -> D."""
        return F.softplus(self.importance_logits)

    def importance_order(self) -> torch.Tensor:
        """Permutation that sorts dimensions by decreasing importance (ties keep index order).

        Sorted by the logits on the CPU: softplus is monotonic, but its float32 rounding differs
        between devices, and near-equal importances then swapped columns between a GPU-built
        gallery and CPU-embedded queries.
        """
        return torch.argsort(self.importance_logits.detach().cpu(), descending=True, stable=True)

    @torch.inference_mode()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Embeddings with columns in importance order, not normalised. BxCxHxW -> BxD."""
        return self(images).float()[:, self.importance_order().to(images.device)]
