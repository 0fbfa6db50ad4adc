"""Backbones by name: what turns normalised pixels into the features the projector reads."""

from torch import nn

from models.backbones.small_cnn import ResidualCNN
from models.config import EncoderConfig


def make_backbone(config: EncoderConfig) -> nn.Module:
    """The backbone `config` names, with pretrained weights loaded; has `out_features`."""
    if config.pretrained is None:
        return ResidualCNN(config.in_channels, config.widths, config.pool_grid)
    from models.backbones.efficientnet_lite import EfficientNetLite

    return EfficientNetLite(config)


__all__ = ["ResidualCNN", "make_backbone"]
