import numpy as np

from evaluation.claims import order_curves


def test_order_curves_rank_informative_dimensions_first():
    rng = np.random.default_rng(1)
    signal = rng.normal(size=(200, 4))
    xb = np.concatenate([signal * 10, rng.normal(size=(200, 12))], axis=1)
    xq = xb + np.concatenate([np.zeros((200, 4)), rng.normal(size=(200, 12))], axis=1)

    def quality(q, b, columns):  # how close each query's columns are to its own row
        return float(-np.abs(q[:, columns] - b[:, columns]).mean())

    curves = order_curves(quality, xq, xb, budgets=(2, 4))
    assert curves["first"]["4"] > curves["random"]["4"] > curves["last"]["4"]
