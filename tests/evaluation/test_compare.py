import numpy as np
import pytest

from evaluation.compare import compare, pca_basis
from evaluation.results_page import render_markdown
from models.config import EncoderConfig
from models.train import TrainConfig, train
from tests.helpers.images import garment, write_idx


def test_pca_basis_is_orthonormal_and_sorted_by_variance():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((1000, 5)) * [0.1, 5, 1, 0.5, 2]).astype(np.float32)
    mean, axes = pca_basis(x)
    np.testing.assert_allclose(axes.T @ axes, np.eye(5), atol=1e-5)
    variances = ((x - mean) @ axes).var(axis=0)
    assert np.all(np.diff(variances) <= 1e-6)
    assert abs(axes[1, 0]) > 0.99  # the widest column comes first


@pytest.mark.slow
def test_compare_end_to_end_on_a_tiny_dataset_after_one_epoch(tmp_path, monkeypatch):
    data = tmp_path / "fashion"
    data.mkdir()
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 256), ("t10k", 40)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = np.stack([garment(int(label) * 1000 + i) for i, label in enumerate(labels)])
        write_idx(data / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(data / f"{prefix}-labels-idx1-ubyte.gz", labels)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(data))
    runs = tmp_path / "runs"
    small = EncoderConfig(widths=(8, 16), projector_hidden=32, embedding_dim=16)
    for loss, seed in (("tricl-nested", 0), ("tricl-nested", 1), ("simclr", 0)):
        recipe = TrainConfig(loss=loss, seed=seed, epochs=1, batch_size=64, device="cpu")
        train(recipe, runs / f"{loss}-seed{seed}", encoder_config=small)

    results = compare(runs, tmp_path / "docs", budgets=(1, 2, 4, 8, 16))
    assert results["budgets"] == [1, 2, 4, 8, 16]
    assert results["queries"] == 40 and results["gallery"] == 256
    assert set(results["methods"]) == {
        "triCL nested, importance order (product)",
        "triCL nested, random order",
        "triCL nested, reverse order",
        "SimCLR, first k",
        "SimCLR + PCA to k",
        "raw pixels + PCA to k",
    }
    for by_budget in results["methods"].values():
        assert all(0 <= m["p_at_10"] <= 1 and 0 <= m["map_at_100"] <= 1 for m in by_budget.values())
    assert "784" in results["methods"]["raw pixels + PCA to k"]
    assert set(results["identifiability"]) == {"tricl-nested"}
    for name in ("results-test.json", "p_at_10_vs_k-test.png", "importance_spectrum.png"):
        assert (tmp_path / "docs" / name).stat().st_size > 0
    assert (tmp_path / "docs" / "feature_extremes.png").stat().st_size > 0
    tables = render_markdown(results)
    assert "| triCL nested, importance order (product) |" in tables and "mAP@100" in tables
