"""Near-duplicate groups across a whole gallery, found through the budget funnel.

Comparing every pair at the full budget reads N x N x keep numbers. The funnel looks for
candidates on a short prefix of the ordered dimensions instead (`k_features`, 16 by default)
and, since near-duplicates lie close together there, only among neighbouring cells of an
inverted file over that prefix, so it reads a sliver of the N x N pairs at a fraction of the
width. Only the candidates are confirmed at the full budget (`verify_features`).

Both the prefix's cosine floor and the number of cells probed are calibrated on the gallery
itself, as the 4-bit codes' shortlist is: the exact duplicates of a sample of rows (cosine at
the verify budget >= threshold, against the whole gallery) must pass the floor and be found
in the cells probed. Confirmed pairs are gathered into groups around their best-connected items.
"""

import math
import os
from dataclasses import dataclass, field

import faiss
import numpy as np

from models.vectors import unit_rows
from search.calibration import calibration_rows, cheapest, exact_neighbours
from search.scan import omp_threads

DEFAULT_THRESHOLD = 0.96  # cosine at the verify budget, chosen by python -m evaluation.duplicates
DEFAULT_FEATURES = 16  # half the time of 8 at 60k, and no pair fewer (docs/duplicates.md)
CALIBRATION_MARGIN = 0.01
CALIBRATION_COVERAGE = 0.995  # share of the sample's duplicates the floor lets through
QUERY_CHUNK = 4096


@dataclass
class DuplicateGroups:
    """Groups of rows, each with its cosine to the group's first row, and how they were found."""

    threshold: float
    k_features: int
    verify_features: int
    candidate_threshold: float
    candidate_pairs: int = 0
    confirmed_pairs: int = 0
    cells_probed: int = 0
    groups: list[list[tuple[int, float]]] = field(default_factory=list)


def find_duplicates(
    vectors: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    k_features: int = DEFAULT_FEATURES,
    verify_features: int | None = None,
    progress: bool = False,
    seed: int = 0,
) -> DuplicateGroups:
    """Groups of rows of `vectors` (N x keep, importance order, not normalised) whose cosine
    at `verify_features` (default keep) reaches `threshold`, candidates found at `k_features`.

    Between the two the candidates pass through the budgets in between, doubling (8, 16, 32,
    ...), each with its own calibrated floor: most look-alikes drop out at a budget that
    reads a fraction of the full row, and only the survivors are read at the next."""
    keep = vectors.shape[1]
    verify_features = keep if verify_features is None else verify_features
    check_duplicate_settings(threshold, k_features, verify_features, keep)
    omp_threads(len(os.sched_getaffinity(0)))
    # The one read of `vectors` (often memory-mapped): a row's prefix normalised is the same
    # whether the row was scaled first, so every shorter budget is taken from these rows.
    verify = unit_rows(vectors[:, :verify_features])
    sample = sample_duplicates(verify, threshold, seed=seed)
    prefix = unit_rows(verify[:, :k_features])
    cells = _cells(prefix, seed)
    floor = calibrated_floor(prefix, sample, threshold)
    nprobe = calibrate_cells(cells, prefix, sample, floor)
    candidates = pairs_within(cells, prefix, floor, progress, description="candidates")
    found_candidates = len(candidates)
    budget = 2 * k_features
    while budget < verify_features:
        unit = unit_rows(verify[:, :budget])
        candidates = pairs_above(unit, candidates, calibrated_floor(unit, sample, threshold))
        budget *= 2
    confirmed = pairs_above(verify, candidates, threshold)
    return DuplicateGroups(
        threshold,
        k_features,
        verify_features,
        candidate_threshold=floor,
        candidate_pairs=found_candidates,
        confirmed_pairs=len(confirmed),
        cells_probed=nprobe,
        groups=_grouped(confirmed, verify),
    )


def pairs_above(unit: np.ndarray, pairs: np.ndarray, floor: float) -> np.ndarray:
    """The pairs whose rows of `unit` have an inner product >= floor."""
    return pairs[pairs_scores(unit, pairs) >= floor] if len(pairs) else pairs


def pairs_scores(unit: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Inner product of the two rows of `unit` named by each pair (P x 2 row numbers). FAISS
    reads the rows in place on every core; gathering them into NumPy copies first took 8x
    longer."""
    unit = np.ascontiguousarray(unit, dtype=np.float32)
    first = np.ascontiguousarray(pairs[:, 0], dtype=np.int64)
    second = np.ascontiguousarray(pairs[:, 1], dtype=np.int64)
    scores = np.empty(len(pairs), np.float32)
    faiss.pairwise_indexed_inner_product(
        unit.shape[1],
        len(pairs),
        faiss.swig_ptr(unit),
        faiss.swig_ptr(first),
        faiss.swig_ptr(unit),
        faiss.swig_ptr(second),
        faiss.swig_ptr(scores),
    )
    return scores


def groups_document(found: DuplicateGroups, ids: list[str]) -> dict:
    """The groups as written to groups.json and served by GET /duplicates (ids, not rows)."""
    return {
        "threshold": found.threshold,
        "k_features": found.k_features,
        "verify_features": found.verify_features,
        "groups": [
            {"items": [{"id": ids[row], "score": score} for row, score in group]}
            for group in found.groups
        ],
    }


def all_pairs_duplicates(
    vectors: np.ndarray, threshold: float = DEFAULT_THRESHOLD, *, progress: bool = False
) -> DuplicateGroups:
    """The same groups from every pair compared at the full budget: the exact reference the
    funnel is measured against (tests, `python -m bench.duplicates`)."""
    omp_threads(len(os.sched_getaffinity(0)))
    verify = unit_rows(vectors)
    flat = faiss.IndexFlatIP(verify.shape[1])
    flat.add(verify)
    pairs = pairs_within(flat, verify, threshold, progress)
    keep = vectors.shape[1]
    return DuplicateGroups(
        threshold,
        keep,
        keep,
        candidate_threshold=threshold,
        candidate_pairs=len(pairs),
        confirmed_pairs=len(pairs),
        groups=_grouped(pairs, verify),
    )


def pairs_within(
    index: faiss.Index,
    unit: np.ndarray,
    threshold: float,
    progress: bool = False,
    description: str = "pairs",
) -> np.ndarray:
    """Every pair (i < j) of the rows of `unit` that `index` (holding them) finds at inner
    product >= threshold, from either side, as P x 2 row numbers."""
    starts = range(0, len(unit), QUERY_CHUNK)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc=description, unit="chunk")
    pairs = []
    for start in starts:
        lims, _, found = index.range_search(unit[start : start + QUERY_CHUNK], threshold)
        rows = np.repeat(np.arange(start, start + len(lims) - 1), np.diff(lims).astype(np.int64))
        other = found != rows
        pairs.append(_pair_keys(rows[other], found[other], len(unit)))
    keys = np.sort(np.concatenate(pairs)) if pairs else np.zeros(0, np.int64)
    # Sorted, then each key once: far cheaper than np.unique on millions of keys.
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys
    return np.stack(np.divmod(keys, len(unit)), axis=1)


def _pair_keys(rows: np.ndarray, others: np.ndarray, count: int) -> np.ndarray:
    """One int64 per unordered pair, the same from either side: min * count + max."""
    return np.minimum(rows, others) * count + np.maximum(rows, others)


def sample_duplicates(
    verify: np.ndarray, threshold: float, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact duplicates of a sample of rows, against the whole gallery at the verify budget:
    (rows, their duplicates, cosines). If the sample has fewer than 10, its closest 1% of
    pairs stand in (they say as well how far a prefix cosine falls below the full one)."""
    sample = calibration_rows(len(verify), seed=seed)
    scores, found = exact_neighbours(verify, sample)
    rows = np.repeat(sample, found.shape[1])
    found, scores = found.ravel(), scores.ravel()
    other = found >= 0
    rows, found, scores = rows[other], found[other], scores[other]
    duplicates = scores >= threshold
    if duplicates.sum() < 10:
        duplicates = scores >= np.quantile(scores, 0.99)
    return rows[duplicates], found[duplicates], scores[duplicates]


def calibrated_floor(unit: np.ndarray, sample: tuple, threshold: float) -> float:
    """The cosine at a shorter budget (`unit`: rows normalised over it) that lets the sample's
    duplicates through: how far below its full cosine a pair's cosine here can fall, at worst
    bar 0.5%, and a margin, below the threshold."""
    rows, found, scores = sample
    shorter = np.einsum("ij,ij->i", unit[rows], unit[found])
    drop = max(0.0, float(np.quantile(scores - shorter, CALIBRATION_COVERAGE)))
    return threshold - drop - CALIBRATION_MARGIN


def calibrate_cells(cells: faiss.Index, prefix: np.ndarray, sample: tuple, floor: float) -> int:
    """Cells to probe: doubled until the inverted file finds 99.5% of the sample's duplicates
    whose prefix cosine is above the floor; left set on `cells`."""
    rows, found, _ = sample
    passing = np.einsum("ij,ij->i", prefix[rows], prefix[found]) >= floor
    wanted = _pair_keys(rows[passing], found[passing], len(prefix))
    queries = np.unique(rows[passing])
    ivf = faiss.extract_index_ivf(cells)

    def finds_enough(nprobe: int) -> bool:
        if not len(wanted):
            return True
        ivf.nprobe = nprobe
        lims, _, hits = cells.range_search(prefix[queries], floor)
        asked = np.repeat(queries, np.diff(lims).astype(np.int64))
        got = _pair_keys(asked, hits, len(prefix))
        return np.isin(wanted, got).mean() >= CALIBRATION_COVERAGE

    doublings = [2**power for power in range(ivf.nlist.bit_length()) if 2**power < ivf.nlist]
    ivf.nprobe = cheapest([*doublings, ivf.nlist], finds_enough)
    return ivf.nprobe


def _cells(prefix: np.ndarray, seed: int) -> faiss.Index:
    """An inverted file over the prefix rows (about 4 sqrt(N) cells), to probe near cells
    only. Its k-means runs 8 iterations on 39 rows a cell, FAISS's least: the cells probed are
    calibrated afterwards anyway, and the default training took a third of the whole search."""
    nlist = list_count(len(prefix))
    cells = faiss.IndexIVFFlat(
        faiss.IndexFlatIP(prefix.shape[1]), prefix.shape[1], nlist, faiss.METRIC_INNER_PRODUCT
    )
    cells.cp.niter = 8
    rng = np.random.default_rng(seed)
    sample = min(len(prefix), 39 * nlist)
    cells.train(prefix[np.sort(rng.choice(len(prefix), sample, replace=False))])
    cells.add(prefix)
    return cells


def _grouped(pairs: np.ndarray, verify: np.ndarray) -> list[list[tuple[int, float]]]:
    """Groups around leaders: every member is a confirmed duplicate of its group's first item,
    with its cosine to it; largest groups first.

    The item with the most confirmed duplicates leads first and takes all of them not yet in
    a group; then the next, and so on. Joining pairs transitively instead (connected
    components) chains look-alikes into groups of hundreds whose ends share nothing.
    """
    both = np.concatenate([pairs, pairs[:, ::-1]])
    both = both[np.lexsort((both[:, 1], both[:, 0]))]  # each row's partners, in row order
    starts = np.searchsorted(both[:, 0], np.arange(len(verify) + 1))
    degree = np.diff(starts)
    linked = np.flatnonzero(degree)
    grouped = np.zeros(len(verify), bool)
    taken = []
    for leader in linked[np.lexsort((linked, -degree[linked]))].tolist():
        if grouped[leader]:
            continue
        members = both[starts[leader] : starts[leader + 1], 1]
        members = members[~grouped[members]]
        if len(members):
            grouped[members] = grouped[leader] = True
            taken.append(np.concatenate(([leader], members)))
    if not taken:
        return []
    # Every member's cosine to its leader in one pass, not one small product per group.
    rows = np.concatenate(taken)
    leaders = np.repeat([group[0] for group in taken], [len(group) for group in taken])
    scores = pairs_scores(verify, np.stack([rows, leaders], axis=1)).tolist()
    groups, start = [], 0
    for group in taken:
        end = start + len(group)
        rounded = [round(score, 6) for score in scores[start:end]]
        groups.append(list(zip(group.tolist(), rounded, strict=True)))
        start = end
    groups.sort(key=lambda group: (-len(group), group[0][0]))
    return groups


def check_duplicate_settings(
    threshold: float, k_features: int, verify_features: int, keep: int
) -> None:
    """Refuse a threshold outside -1..1 (or NaN) and budgets out of order, in words."""
    if not -1 <= threshold <= 1:
        raise ValueError(f"threshold must be a cosine from -1 to 1, got {threshold}")
    if not 1 <= verify_features <= keep:
        raise ValueError(f"verify features must be from 1 to {keep}, got {verify_features}")
    if not 1 <= k_features <= verify_features:
        raise ValueError(
            f"k_features must be from 1 to the verify budget ({verify_features}), got {k_features}"
        )


def list_count(count: int) -> int:
    """About 4 sqrt(N) inverted lists, a power of two, with at least 39 training points each."""
    wanted = 2 ** round(math.log2(max(1.0, 4 * math.sqrt(count))))
    most = 2 ** int(math.log2(max(1, count // 39)))
    return max(1, min(wanted, most))
