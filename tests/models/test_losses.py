import math

import pytest
import torch
import torch.nn.functional as F

from models.config import EncoderConfig
from models.encoder import Encoder
from models.losses import (
    SimCLRLoss,
    SpectralTriCLLoss,
    TriCLLoss,
    decorrelation,
    make_loss,
    nt_xent,
    second_moment_penalty,
)


def reference_nt_xent(z1, z2, temperature, importance=None):
    """A plain loop over anchors, written straight from the definition."""
    z = torch.cat([F.normalize(z1, dim=1), F.normalize(z2, dim=1)])
    weights = torch.ones(z.shape[1]) if importance is None else importance
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        logits = [(z[i] * weights * z[j]).sum() / temperature for j in range(2 * n) if j != i]
        others = [j for j in range(2 * n) if j != i]
        total += -logits[others.index(positive)] + torch.logsumexp(torch.stack(logits), 0)
    return total / (2 * n)


def test_nt_xent_matches_reference_with_and_without_importance():
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 5), torch.randn(6, 5)
    importance = F.softplus(torch.randn(5))
    assert torch.allclose(
        nt_xent(z1, z2, temperature=0.2), reference_nt_xent(z1, z2, 0.2), atol=1e-5
    )
    assert torch.allclose(
        nt_xent(z1, z2, temperature=0.5, importance=importance),
        reference_nt_xent(z1, z2, 0.5, importance),
        atol=1e-5,
    )


def reference_spectral_tri(z1, z2, importance, tau):
    """tri-SCL term by term: -2 E[z1^T S z2] over positives, E[(z1^T S z2')^2] over the other
    images, tau * ||E[z z^T] - I||_F^2 / D over both views."""
    n, d = z1.shape
    positive = sum((z1[i] * importance * z2[i]).sum() for i in range(n)) / n
    negative = sum(
        ((z1[i] * importance * z2[j]).sum()) ** 2 for i in range(n) for j in range(n) if i != j
    ) / (n * (n - 1))
    z = torch.cat([z1, z2])
    moment = sum(torch.outer(row, row) for row in z) / len(z)
    penalty = ((moment - torch.eye(d)) ** 2).sum() / d
    return -2 * positive + negative + tau * penalty


def test_spectral_tricl_matches_reference():
    torch.manual_seed(3)
    z1, z2 = torch.randn(7, 5), torch.randn(7, 5)
    importance = F.softplus(torch.randn(5))
    for tau in (0.0, 0.5):
        assert torch.allclose(
            SpectralTriCLLoss(tau=tau)(z1, z2, importance),
            reference_spectral_tri(z1, z2, importance, tau),
            atol=1e-5,
        )


def test_second_moment_penalty_is_zero_for_orthonormal_columns():
    q, _ = torch.linalg.qr(torch.randn(64, 4))  # orthonormal columns: Q^T Q = I
    assert second_moment_penalty(q * 8.0).abs() < 1e-5  # scaled so that Q^T Q / 64 = I
    assert second_moment_penalty(q) > 0.5


def test_tricl_with_unit_importance_and_no_penalty_equals_simclr():
    torch.manual_seed(1)
    z1, z2 = torch.randn(16, 8), torch.randn(16, 8)
    tricl = TriCLLoss(temperature=0.2, tau=0.0)(z1, z2, torch.ones(8))
    simclr = SimCLRLoss(temperature=0.2)(z1, z2)
    assert torch.allclose(tricl, simclr)


def test_tricl_adds_the_decorrelation_penalty_times_tau():
    torch.manual_seed(2)
    z1, z2 = torch.randn(16, 8), torch.randn(16, 8)
    s = torch.ones(8)
    difference = TriCLLoss(tau=3.0)(z1, z2, s) - TriCLLoss(tau=0.0)(z1, z2, s)
    assert torch.allclose(difference, 3.0 * decorrelation(torch.cat([z1, z2])))


def test_decorrelation_is_zero_only_when_normalised_columns_are_orthonormal():
    # With unit-norm rows Z^T Z / N = I is reachable only for D = 1.
    assert decorrelation(torch.tensor([[2.0], [-3.0], [0.5]])) == 0
    spread = torch.eye(4).repeat(2, 1)  # uncorrelated columns, each with mean square 1/4
    collapsed = torch.ones(8, 4)  # every column the same
    assert torch.allclose(decorrelation(spread), torch.tensor((4 * 0.75**2) / 16))
    assert decorrelation(collapsed) > decorrelation(spread)


def test_gradient_reaches_importance_logits():
    encoder = Encoder(EncoderConfig(widths=(8, 16), projector_hidden=32, embedding_dim=8))
    views = torch.randn(16, 1, 28, 28)
    z1, z2 = encoder(views).chunk(2)
    TriCLLoss()(z1, z2, encoder.dimension_importance()).backward()
    assert encoder.importance_logits.grad is not None
    assert encoder.importance_logits.grad.abs().sum() > 0


def test_simclr_encoder_keeps_flat_importance_and_identity_order():
    encoder = Encoder(EncoderConfig(embedding_dim=8, learn_importance=False))
    assert not encoder.importance_logits.requires_grad
    assert torch.equal(encoder.importance_order(), torch.arange(8))
    assert torch.allclose(encoder.dimension_importance(), torch.full((8,), math.log(2)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_importance_order_is_a_permutation_sorted_by_importance(seed):
    encoder = Encoder(EncoderConfig(embedding_dim=32), seed=seed)
    order = encoder.importance_order()
    assert sorted(order.tolist()) == list(range(32))
    importance = encoder.dimension_importance().detach()[order]
    assert torch.all(importance[:-1] >= importance[1:])


def test_embed_returns_columns_in_importance_order():
    encoder = Encoder(
        EncoderConfig(widths=(8, 16), projector_hidden=32, embedding_dim=8), seed=3
    ).eval()
    images = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        raw = encoder(images)
    assert torch.allclose(encoder.embed(images), raw[:, encoder.importance_order()])


@pytest.mark.parametrize("name", ["tricl", "simclr", "tricl-nested", "mrl", "tricl-spectral"])
def test_loss_falls_in_a_few_optimiser_steps(name):
    torch.manual_seed(0)
    config = EncoderConfig(widths=(8, 16), projector_hidden=32, embedding_dim=16)
    encoder = Encoder(config)
    loss_fn = make_loss(name, temperature=0.2, tau=1.0)
    optimizer = torch.optim.Adam([p for p in encoder.parameters() if p.requires_grad], lr=1e-2)
    images = torch.rand(32, 1, 28, 28)
    noisy = lambda: images + 0.05 * torch.randn_like(images)  # noqa: E731
    losses = []
    for _ in range(15):
        z1, z2 = encoder(noisy()), encoder(noisy())
        loss = loss_fn(z1, z2, encoder.dimension_importance())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3


def test_unknown_loss_name_is_refused():
    with pytest.raises(ValueError, match="unknown loss 'byol'"):
        make_loss("byol", temperature=0.2, tau=1.0)


def test_nt_xent_rejects_mismatched_views():
    with pytest.raises(ValueError, match="must both be NxD"):
        nt_xent(torch.randn(4, 3), torch.randn(5, 3), temperature=0.2)
