"""Every quality metric of the evaluations, each defined once.

Searches are exact cosine over the first `budget` columns (the service's flat search), so a
metric measures the embeddings, not an approximate structure.
"""

import numpy as np

from models.vectors import unit_rows


def nearest(xq: np.ndarray, xb: np.ndarray, budget: int, depth: int) -> np.ndarray:
    """Rows of `xb` nearest to each query by cosine over the first `budget` columns: Q x depth."""
    from search.scan import flat_at_budget

    _, found = flat_at_budget(xb, budget).search(unit_rows(xq[:, :budget]), min(depth, len(xb)))
    return found


def precision_at_10(found_labels: np.ndarray, query_labels: np.ndarray) -> float:
    """Share of each query's first 10 results (labels, Q x >= 10) that carry its label."""
    return float((found_labels[:, :10] == query_labels[:, None]).mean())


def precision_and_map(
    found_labels: np.ndarray, query_labels: np.ndarray, per_label: np.ndarray
) -> dict[str, float]:
    """P@10 and mAP@100 from the labels of each query's ranked results (Q x depth).

    AP@100 of a query = sum over ranks r <= 100 of P@r * rel(r), divided by min(R, 100), where
    R (`per_label[label]`) is the number of gallery items with the query's label.
    """
    depth = min(100, found_labels.shape[1])
    relevant = found_labels[:, :depth] == query_labels[:, None]
    precision_at_rank = np.cumsum(relevant, axis=1) / np.arange(1, depth + 1)
    denominators = np.minimum(per_label[query_labels], depth)
    average_precision = (precision_at_rank * relevant).sum(axis=1) / np.maximum(denominators, 1)
    return {
        "p_at_10": precision_at_10(found_labels, query_labels),
        "map_at_100": float(average_precision.mean()),
    }


def retrieval_metrics(
    xq: np.ndarray, yq: np.ndarray, xb: np.ndarray, yb: np.ndarray, budget: int
) -> dict[str, float]:
    """P@10 and mAP@100 (relevant = same label) of a search at `budget` features."""
    found = nearest(xq, xb, budget, 100)
    per_label = np.bincount(yb, minlength=int(max(yb.max(), yq.max())) + 1)
    return precision_and_map(yb[found], yq, per_label)


def recall_of_found(found: np.ndarray, relevant: list[np.ndarray], depth: int) -> float:
    """Mean over queries with a relevant item of |relevant in the first `depth` found| /
    min(R, depth): same-item recall@depth, or recall@1 with depth 1."""
    scores = [
        np.isin(rows[:depth], rel).sum() / min(len(rel), depth)
        for rows, rel in zip(found, relevant, strict=True)
        if len(rel)
    ]
    return float(np.mean(scores))


def same_item_recall(
    xq: np.ndarray, xb: np.ndarray, relevant: list[np.ndarray], budget: int, depth: int = 10
) -> float:
    """`recall_of_found` of a search at `budget` features."""
    return recall_of_found(nearest(xq, xb, budget, depth), relevant, depth)


def hamming_recall(hq: np.ndarray, hb: np.ndarray, relevant: list[np.ndarray], depth: int) -> float:
    """`recall_of_found` for bit codes (QxB and NxB bool) ranked by Hamming distance."""
    distances = (hq[:, None, :] != hb[None, :, :]).sum(axis=2)  # QxN
    return recall_of_found(np.argsort(distances, axis=1, kind="stable"), relevant, depth)


def identifiability(a: np.ndarray, b: np.ndarray, top: int) -> dict[str, float]:
    """Do two runs learn the same first `top` features? Mean |Pearson correlation| over the
    rows of same-rank columns, and the same after the best one-to-one matching of columns
    (Hungarian on |corr|, so signs are free)."""
    from scipy.optimize import linear_sum_assignment

    za = (a[:, :top] - a[:, :top].mean(0)) / (a[:, :top].std(0) + 1e-12)
    zb = (b[:, :top] - b[:, :top].mean(0)) / (b[:, :top].std(0) + 1e-12)
    corr = np.abs(za.T @ zb / len(za))  # top x top
    rows, columns = linear_sum_assignment(-corr)
    return {
        "same_rank": round(float(np.mean(np.diag(corr))), 4),
        "matched": round(float(corr[rows, columns].mean()), 4),
    }


def importance_gaps(importance, top: int = 16) -> dict:
    """Does S tell the leading dimensions apart? The smallest relative gap between neighbours
    among the `top` largest values (the claim asks >= 1% everywhere)."""
    head = np.sort(np.asarray(importance, dtype=np.float64))[::-1][:top]
    gaps = (head[:-1] - head[1:]) / np.maximum(head[:-1], 1e-12)
    return {
        f"top{top}_importance": [round(float(value), 4) for value in head],
        f"top{top}_smallest_gap": round(float(gaps.min()), 5),
        f"top{top}_distinct_1pct": bool(gaps.min() >= 0.01),
    }
