"""EfficientNet-Lite up to its global average pool: ImageNet features for the triCL head.

The architecture is the reference implementation's (`efficientnet-lite-pytorch`, which the
weights package was converted for). Its convolutions pad like TensorFlow's "SAME", computed
once for the input size, so the network is built for the one working size it will see.
"""

import torch
from torch import nn

from models.backbones.weights import pretrained_state
from models.config import EncoderConfig


class EfficientNetLite(nn.Module):
    """Pooled features of a pretrained EfficientNet-Lite: BxCxSxS -> BxF (F = 1280 for lite0).

    Args:
        config: the encoder's config; its `backbone` names the network and its weights,
            `image_size` is the side S every input has.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as error:
            raise ValueError(
                f"the {config.backbone} backbone needs its architecture package: "
                "pip install 'tricl-retrieval[indexer]' (or use --backbone small-cnn)"
            ) from error
        weights = config.pretrained
        network = EfficientNet.from_name(config.backbone, image_size=config.image_size)
        del network._fc, network._dropout  # the classifier: retrieval reads the pool before it
        network.load_state_dict(pretrained_state(config.backbone, weights))
        self.network = network
        self.out_features = weights.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BxCxSxS -> BxFxS/32xS/32 -> BxF
        return self.network.extract_features(x).mean(dim=(2, 3))

    def trainable_prefixes(self, blocks: int) -> tuple[str, ...]:
        """Parameter name prefixes of the last `blocks` blocks and the head convolution: what
        fine-tuning trains (and a checkpoint stores); everything before stays pretrained."""
        if blocks <= 0:
            return ()
        total = len(self.network._blocks)
        if blocks > total:
            raise ValueError(f"{blocks} blocks to fine-tune, but the backbone has {total}")
        return (
            *(f"network._blocks.{index}." for index in range(total - blocks, total)),
            "network._conv_head.",
            "network._bn1.",
        )
