"""The fast budgets: 4-bit fast-scan codes that pick a shortlist, re-scored exactly in float32.

This is the project's one way to make a budget fast at a large gallery (docs/performance.md,
"Choosing the fast budgets": against IVF at 60k and 1M). The indexer trains and calibrates the
codes once and stores them in the index directory; a search process only reads them.

At a million items an exact scan of one budget reads 4 x k bytes per item and its time is set by
memory bandwidth. Here each item holds one 4-bit code per dimension (a 16-level quantizer learned
per dimension, FAISS's PQ fast-scan with one dimension per sub-quantizer): an eighth of the
bytes, scanned with in-register lookup tables. The codes only choose a shortlist; its rows are
then re-scored exactly from the float vectors, so the scores returned are the exact cosines and
the order is exact within the shortlist.

FAISS's 8-bit scalar quantizer would be closer to the float scores, but its scan decodes every
code to float and was no faster than the float scan itself (docs/performance.md); the 4-bit scan
is several times faster, and a longer shortlist buys back what its coarser codes lose. How long
is measured on the gallery itself: the shortlist is the smallest that holds the exact top 10 of
every calibration query (gallery rows, each left out of its own answer), with a quarter on top.
The answers are therefore not guaranteed exact, and the search core says so.
"""

import math
from dataclasses import dataclass

import faiss
import numpy as np

from models.vectors import unit_rows
from search.calibration import calibration_rows, exact_neighbours
from search.scan import ladder_budgets, rescore

MARGIN = 1.25
TRAINING_ROWS = 65_536
FOUR_BIT_MODES = ("auto", "always", "never")
FOUR_BIT_ABOVE = 100_000  # "auto": up to here an exact scan of a small budget takes about 1 ms
FOUR_BIT_FROM = 16  # below this a 4-bit shortlist must be so long it is slower than a scan
FOUR_BIT_LEAST_ROWS = 256  # each dimension's 16 levels need many rows to learn from


@dataclass
class FourBitCodes:
    """Codes of the first `features` columns of every row, and the shortlist that serves them."""

    codes: faiss.IndexPQFastScan
    features: int
    shortlist: int  # candidates re-scored for a top 10; more for a larger top_k

    def search(
        self, vectors: np.ndarray, unit_queries: np.ndarray, top_k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and rows of the `top_k` best items for each unit query (Q x features), found
        in the shortlist and scored exactly on `vectors` (N x keep, not normalised)."""
        count = self.codes.ntotal
        wanted = min(count, self.shortlist * math.ceil(min(top_k, count) / 10))
        _, candidates = self.codes.search(unit_queries, wanted)
        return rescore(vectors, unit_queries, candidates, top_k)

    @property
    def nbytes(self) -> int:
        return int(self.codes.ntotal * math.ceil(self.features / 2))


def four_bit_budgets(vectors: np.ndarray, mode: str = "auto") -> list[FourBitCodes]:
    """The 4-bit codes of the ladder's budgets from FOUR_BIT_FROM up, when `mode` asks for
    them ("auto": above FOUR_BIT_ABOVE items); none otherwise, and none for a gallery of fewer
    than FOUR_BIT_LEAST_ROWS rows, too few to learn codes from (and fast to scan anyway)."""
    if mode not in FOUR_BIT_MODES:
        raise ValueError(f"unknown 4-bit mode {mode!r}; choose one of {', '.join(FOUR_BIT_MODES)}")
    count, keep = vectors.shape
    small = count <= FOUR_BIT_ABOVE if mode == "auto" else count < FOUR_BIT_LEAST_ROWS
    if mode == "never" or small:
        return []
    budgets = [budget for budget in ladder_budgets(keep) if budget >= FOUR_BIT_FROM]
    return [four_bit_codes(vectors, budget) for budget in budgets]


def four_bit_codes(vectors: np.ndarray, features: int, *, seed: int = 0) -> FourBitCodes:
    """Train and fill the 4-bit codes of the first `features` columns of `vectors`, then
    calibrate the shortlist on gallery rows against exact search."""
    count = len(vectors)
    unit = unit_rows(vectors[:, :features])
    codes = faiss.IndexPQFastScan(features, features, 4, faiss.METRIC_INNER_PRODUCT)
    codes.train(unit[calibration_rows(count, seed=seed, size=TRAINING_ROWS)])
    codes.add(unit)
    queries = calibration_rows(count, seed=seed + 1)
    # Exact neighbours straight from the rows: an index would hold a second copy of them.
    truth = exact_neighbours(unit, queries)[1]
    needed = _shortlist_needed(codes, unit[queries], truth)
    shortlist = min(count, max(64, math.ceil(needed * MARGIN)))
    return FourBitCodes(codes, features, shortlist)


def _shortlist_needed(codes: faiss.Index, queries: np.ndarray, truth: np.ndarray) -> int:
    """Longest prefix of the fast-scan order any query needs to hold its exact top 10 (`truth`,
    each query's own row left out)."""
    count = codes.ntotal
    wanted = min(count, 1024)
    while True:
        _, found = codes.search(queries, wanted)
        needed = 0
        for exact, order in zip(truth, found, strict=True):
            position = {item: place for place, item in enumerate(order.tolist())}
            needed = max(needed, max(position.get(item, count) for item in exact.tolist()) + 1)
        if needed <= wanted or wanted == count:
            return min(needed, count)
        wanted = min(count, wanted * 4)
