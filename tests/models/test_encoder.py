import torch

from models.checkpoint import SMALL_CNN_CHECKPOINT, load_checkpoint
from models.config import EncoderConfig
from models.encoder import Encoder


def test_importance_order_follows_the_logits_where_softplus_rounds_them_equal():
    encoder = Encoder(EncoderConfig(embedding_dim=4), seed=0)
    with torch.no_grad():
        # softplus of both -111 and -110 underflows to 0 in float32; the logits still differ.
        encoder.importance_logits.copy_(torch.tensor([-111.0, -110.0, 3.0, 1.0]))
    assert encoder.dimension_importance()[0] == encoder.dimension_importance()[1] == 0
    assert encoder.importance_order().tolist() == [2, 3, 1, 0]


def test_embed_returns_columns_in_the_stored_importance_order():
    encoder, config = load_checkpoint(SMALL_CNN_CHECKPOINT)
    images = torch.rand(3, 1, 28, 28)
    with torch.inference_mode():
        raw = encoder(images)
    assert torch.equal(encoder.embed(images), raw[:, config["importance_order"]])
