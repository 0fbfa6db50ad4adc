"""Plots and the markdown page of the comparison (docs/results.md)."""

from pathlib import Path

import numpy as np

PRODUCT_METHOD = "triCL nested, importance order (product)"


def write_plots(results: dict, product, gallery_pixels: np.ndarray, out: Path) -> None:
    """P@10 vs budget, the importance spectra, and the extremes of the top 4 product features."""
    # Here, not at the top: --help of evaluation.compare answers at once.
    import matplotlib.pyplot as plt

    split = results["split"]
    figure, axis = plt.subplots(figsize=(8, 5))
    for name, by_budget in results["methods"].items():
        budgets = [int(b) for b in by_budget if int(b) <= max(results["budgets"])]
        values = [by_budget[str(b)]["p_at_10"] for b in budgets]
        style = {"linewidth": 3} if name == PRODUCT_METHOD else {"linewidth": 1.5}
        axis.plot(budgets, values, marker="o", label=name, **style)
    axis.set_xscale("log", base=2)
    axis.set_xticks(results["budgets"], [str(b) for b in results["budgets"]])
    axis.set_xlabel("feature budget k (first k dimensions)")
    axis.set_ylabel("P@10")
    axis.set_title(f"Fashion-MNIST retrieval, {results['queries']:,} queries ({split})")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / f"p_at_10_vs_k-{split}.png", dpi=110)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(8, 4))
    for name, model in results["models"].items():
        if model["loss"] in ("tricl", "tricl-nested"):
            axis.plot(range(1, len(model["importance"]) + 1), model["importance"], label=name)
    axis.set_xscale("log", base=2)
    axis.set_xlabel("rank of dimension")
    axis.set_ylabel("softplus(s)")
    axis.set_title("Learned importance, sorted")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "importance_spectrum.png", dpi=110)
    plt.close(figure)

    _write_feature_extremes(product.xb, gallery_pixels, out / "feature_extremes.png")


def _write_feature_extremes(xb: np.ndarray, pixels: np.ndarray, path: Path, *, n: int = 8) -> None:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(4, 2, figsize=(10, 4.2))
    for rank in range(4):
        order = np.argsort(xb[:, rank])
        for column, (title, rows) in enumerate(
            [("highest", order[::-1][:n]), ("lowest", order[:n])]
        ):
            strip = np.concatenate([pixels[i] for i in rows], axis=1)
            axes[rank, column].imshow(strip, cmap="gray", vmin=0, vmax=255)
            axes[rank, column].set_title(f"feature {rank + 1}: {title} {n}", fontsize=9)
            axes[rank, column].axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def render_markdown(results: dict) -> str:
    """The tables of one split: P@10 and mAP@100 for every method and budget, and retention."""
    budgets = results["budgets"]
    lines = []
    for metric, title in (("p_at_10", "P@10"), ("map_at_100", "mAP@100")):
        lines += [f"#### {title}", "", "| method | " + " | ".join(f"k={b}" for b in budgets) + " |"]
        lines.append("| --- |" + " --- |" * len(budgets))
        for name, by_budget in results["methods"].items():
            cells = [f"{by_budget[str(b)][metric]:.3f}" for b in budgets]
            extra = [k for k in by_budget if int(k) > max(budgets)]
            label = name + (
                f" (all {extra[0]}: {by_budget[extra[0]][metric]:.3f})" if extra else ""
            )
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["#### Share of each method's own full-budget P@10", ""]
    lines.append("| method | " + " | ".join(f"k={b}" for b in budgets) + " |")
    lines.append("| --- |" + " --- |" * len(budgets))
    for name, by_budget in results["methods"].items():
        full = by_budget[str(max(budgets))]["p_at_10"]
        cells = [f"{by_budget[str(b)]['p_at_10'] / full:.0%}" for b in budgets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)
