import torch

from models.losses import (
    MatryoshkaLoss,
    NestedTriCLLoss,
    budget_sizes,
    decorrelation,
    nested_nt_xent,
    nt_xent,
    prefix_sizes,
)


def test_prefix_sizes_double_up_to_the_dimension():
    assert prefix_sizes(128, 8) == [8, 16, 32, 64, 128]
    assert prefix_sizes(100, 2) == [2, 4, 8, 16, 32, 64, 100]
    assert prefix_sizes(8, 8) == [8]


def test_nested_loss_is_the_mean_over_ordered_prefixes():
    torch.manual_seed(0)
    z1, z2 = torch.randn(10, 8), torch.randn(10, 8)
    order = torch.tensor([5, 2, 7, 0, 1, 3, 4, 6])
    expected = torch.stack(
        [nt_xent(z1[:, order[:m]], z2[:, order[:m]], temperature=0.3) for m in (2, 4, 8)]
    ).mean()
    got = nested_nt_xent(z1, z2, order=order, sizes=prefix_sizes(8, 2), temperature=0.3)
    assert torch.allclose(got, expected)


def test_budget_sizes_cover_every_small_budget_then_double():
    assert budget_sizes(128) == [*range(1, 17), 32, 64, 128]
    assert budget_sizes(8) == list(range(1, 9))
    assert budget_sizes(40) == [*range(1, 17), 32, 40]


def test_nested_tricl_is_plain_prefixes_plus_the_full_tri_factor_term_and_the_penalty():
    torch.manual_seed(1)
    z1, z2 = torch.randn(12, 8), torch.randn(12, 8)
    importance = torch.tensor([0.1, 3.0, 0.2, 2.0, 0.3, 1.0, 0.4, 0.5])
    order = torch.argsort(importance, descending=True)
    prefixes = torch.stack(
        [nt_xent(z1[:, order[:m]], z2[:, order[:m]], temperature=0.2) for m in range(1, 9)]
    ).mean()
    full = nt_xent(z1, z2, temperature=0.2, importance=importance / importance.mean())
    expected = prefixes + full + 1.0 * decorrelation(torch.cat([z1, z2]))
    assert torch.allclose(NestedTriCLLoss()(z1, z2, importance), expected)


def test_nested_tricl_importance_is_scale_free():
    torch.manual_seed(3)
    z1, z2 = torch.randn(12, 8), torch.randn(12, 8)
    importance = torch.rand(8) + 0.1
    loss = NestedTriCLLoss()
    assert torch.allclose(loss(z1, z2, importance), loss(z1, z2, 7.0 * importance))


def test_nested_tricl_gradient_reaches_importance():
    z1, z2 = torch.randn(12, 8), torch.randn(12, 8)
    s = torch.zeros(8, requires_grad=True)
    NestedTriCLLoss()(z1, z2, torch.nn.functional.softplus(s)).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_matryoshka_uses_leading_prefixes_without_importance():
    torch.manual_seed(2)
    z1, z2 = torch.randn(12, 32), torch.randn(12, 32)
    expected = torch.stack(
        [nt_xent(z1[:, :m], z2[:, :m], temperature=0.2) for m in (8, 16, 32)]
    ).mean()
    assert torch.allclose(MatryoshkaLoss()(z1, z2, torch.rand(32)), expected)
