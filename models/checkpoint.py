"""Checkpoint directories: safetensors weights plus a config.json that describes them.

Nothing is unpickled on load: the architecture comes from JSON and the tensors from
safetensors, so a checkpoint from anywhere cannot run code. A checkpoint on a pretrained
backbone holds only what training changed (the head, and fine-tuned blocks if any); it names
the backbone and the digests of its weights, which are loaded from the installed package.
"""

import hashlib
import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from models.config import CONFIG_FILE, ONNX_FILE, WEIGHTS_FILE, EncoderConfig
from models.encoder import Encoder

CHECKPOINT_FORMAT = 1
# A head on the pretrained backbone trained on a broad corpus of photos, icons, logos and
# garments: what `indexer build` embeds with when no model is named.
GENERAL_CHECKPOINT = Path(__file__).parent / "general"
# The demo's model: the best measured on Fashion-MNIST (a head on the pretrained backbone).
FASHION_MNIST_CHECKPOINT = Path(__file__).parent / "fashion-mnist"
# The small CNN trained from scratch on Fashion-MNIST: fast to load and run (the tests use it).
SMALL_CNN_CHECKPOINT = Path(__file__).parent / "fashion-mnist-small-cnn"
DEFAULT_CHECKPOINT = GENERAL_CHECKPOINT


def save_checkpoint(encoder: Encoder, out: Path, *, training: dict) -> dict:
    """Write weights and config.json into `out` (created); returns the config written."""
    out.mkdir(parents=True, exist_ok=True)
    (out / ONNX_FILE).unlink(missing_ok=True)  # exported from other weights: the indexer re-exports
    state = {
        name: tensor.detach().cpu().contiguous()
        for name, tensor in encoder.stored_state_dict().items()
    }
    save_file(state, out / WEIGHTS_FILE)
    weights_sha256 = hashlib.sha256((out / WEIGHTS_FILE).read_bytes()).hexdigest()
    importance = encoder.dimension_importance().detach().cpu()
    config = {
        "format": CHECKPOINT_FORMAT,
        "id": f"{training.get('loss', 'model')}-{weights_sha256[:12]}",
        "weights_sha256": weights_sha256,
        "encoder": _jsonable(encoder.config.__dict__),
        "backbone": _describe_backbone(encoder.config),
        "importance": [round(float(value), 6) for value in importance],
        "importance_order": encoder.importance_order().tolist(),
        "training": training,
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return config


def load_checkpoint(path: Path) -> tuple[Encoder, dict]:
    """Rebuild the encoder (eval mode, CPU) and return it with its config.json contents."""
    config_path, weights_path = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not config_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(
            f"{path} is not a model checkpoint: expected {CONFIG_FILE} and {WEIGHTS_FILE} in it"
        )
    try:
        config = json.loads(config_path.read_text())
        encoder_config = EncoderConfig.from_dict(config["encoder"])
        _check_backbone(config, encoder_config)
        encoder = Encoder(encoder_config)
        encoder.load_stored_state_dict(load_file(weights_path))
    except (ValueError, KeyError, RuntimeError) as error:
        raise ValueError(
            f"checkpoint {path} is unreadable or does not match its config: {error}"
        ) from error
    encoder.eval()
    return encoder, config


def _describe_backbone(config: EncoderConfig) -> dict:
    """The backbone's name and, when pretrained, the digests of the weights it was built on."""
    weights = config.pretrained
    if weights is None:
        return {"name": config.backbone}
    return {
        "name": config.backbone,
        "package": weights.package,
        "source_sha256": weights.source_sha256,
        "state_sha256": weights.state_sha256,
    }


def _check_backbone(config: dict, encoder_config: EncoderConfig) -> None:
    """Refuse a checkpoint whose head was trained on other pretrained weights than these."""
    recorded = config.get("backbone", {"name": encoder_config.backbone})
    if recorded != _describe_backbone(encoder_config):
        raise ValueError(
            f"its head was trained on backbone weights {recorded}, "
            f"but this installation pins {_describe_backbone(encoder_config)}"
        )


def _jsonable(values: dict) -> dict:
    return {
        key: list(value) if isinstance(value, tuple) else value for key, value in values.items()
    }
