"""Near-duplicate groups across a whole gallery, found through the budget funnel.

Comparing every pair at the full budget reads N x N x keep numbers. The funnel looks for
candidates on a short prefix of the ordered dimensions instead (`k_features`, 8 by default)
and, since near-duplicates lie close together there, only among neighbouring cells of an
inverted file over that prefix, so it reads a sliver of the N x N pairs at an eighth of the
width. Only the candidates are confirmed at the full budget (`verify_features`).

Both the prefix's cosine floor and the number of cells probed are calibrated on the gallery
itself, as the 4-bit ladder's shortlist is: the exact duplicates of a sample of rows (cosine at
the verify budget >= threshold, against the whole gallery) must pass the floor and be found
in the cells probed. Confirmed pairs are gathered into groups around their best-connected items.
"""

import os
from dataclasses import dataclass, field

import faiss
import numpy as np

from indexer.retrieval import list_count
from models.vectors import unit_rows

DEFAULT_THRESHOLD = 0.95  # cosine at the verify budget; see docs/duplicates.md
DEFAULT_FEATURES = 8
CALIBRATION_ROWS = 2000
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
    at `verify_features` (default keep) reaches `threshold`, candidates found at `k_features`."""
    keep = vectors.shape[1]
    verify_features = keep if verify_features is None else verify_features
    _check(threshold, k_features, verify_features, keep)
    faiss.omp_set_num_threads(len(os.sched_getaffinity(0)))
    verify = unit_rows(vectors[:, :verify_features])
    prefix = unit_rows(vectors[:, :k_features])
    cells = _cells(prefix, seed)
    floor, nprobe = calibrate(cells, prefix, verify, threshold, seed=seed)
    faiss.extract_index_ivf(cells).nprobe = nprobe
    candidates = pairs_within(cells, prefix, floor, progress, description="candidates")
    scores = np.einsum("ij,ij->i", verify[candidates[:, 0]], verify[candidates[:, 1]])
    found = _grouped(candidates[scores >= threshold], verify)
    found.threshold, found.k_features, found.verify_features = (
        threshold, k_features, verify_features
    )  # fmt: skip
    found.candidate_threshold, found.cells_probed = floor, nprobe
    found.candidate_pairs = len(candidates)
    return found


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
    faiss.omp_set_num_threads(len(os.sched_getaffinity(0)))
    verify = unit_rows(vectors)
    flat = faiss.IndexFlatIP(verify.shape[1])
    flat.add(verify)
    found = _grouped(pairs_within(flat, verify, threshold, progress), verify)
    found.threshold, found.k_features, found.verify_features = (
        threshold, vectors.shape[1], vectors.shape[1]
    )  # fmt: skip
    found.candidate_threshold = threshold
    return found


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
    keys = np.unique(np.concatenate(pairs)) if pairs else np.zeros(0, np.int64)
    return np.stack(np.divmod(keys, len(unit)), axis=1)


def _pair_keys(rows: np.ndarray, others: np.ndarray, count: int) -> np.ndarray:
    """One int64 per unordered pair, the same from either side: min * count + max."""
    return np.minimum(rows, others) * count + np.maximum(rows, others)


def calibrate(
    cells: faiss.Index,
    prefix: np.ndarray,
    verify: np.ndarray,
    threshold: float,
    *,
    seed: int = 0,
) -> tuple[float, int]:
    """The prefix cosine floor and the cells to probe that find a sample's duplicates.

    The sample's exact duplicates (cosine >= threshold at the verify budget, against the
    whole gallery) say how far below its verify cosine a duplicate's prefix cosine can fall;
    the floor lies that far (bar the worst 0.5%) and a margin below the threshold. If the
    sample has fewer than 10, its closest 1% of pairs stand in. The cells probed are then
    doubled until the inverted file finds 99.5% of those pairs above the floor.
    """
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(verify), min(len(verify), CALIBRATION_ROWS), replace=False))
    flat = faiss.IndexFlatIP(verify.shape[1])
    flat.add(verify)
    scores, found = flat.search(verify[sample], 11)
    rows = np.repeat(sample, found.shape[1])
    found, scores = found.ravel(), scores.ravel()
    other = (found >= 0) & (found != rows)
    rows, found, scores = rows[other], found[other], scores[other]
    duplicates = scores >= threshold
    if duplicates.sum() < 10:  # too few to say where the prefix cosines of duplicates lie
        duplicates = scores >= np.quantile(scores, 0.99)
    rows, found, scores = rows[duplicates], found[duplicates], scores[duplicates]
    prefix_scores = np.einsum("ij,ij->i", prefix[rows], prefix[found])
    # How far a pair's prefix cosine falls below its verify cosine, at worst (bar 0.5%).
    drop = max(0.0, float(np.quantile(scores - prefix_scores, CALIBRATION_COVERAGE)))
    floor = threshold - drop - CALIBRATION_MARGIN
    passing = prefix_scores >= floor
    wanted = _pair_keys(rows[passing], found[passing], len(prefix))
    queries = np.unique(rows[passing])
    ivf = faiss.extract_index_ivf(cells)
    nprobe = 1
    while nprobe < ivf.nlist and len(wanted):
        ivf.nprobe = nprobe
        lims, _, hits = cells.range_search(prefix[queries], floor)
        asked = np.repeat(queries, np.diff(lims).astype(np.int64))
        got = _pair_keys(asked, hits, len(prefix))
        if np.isin(wanted, got).mean() >= CALIBRATION_COVERAGE:
            break
        nprobe *= 2
    return floor, min(nprobe, ivf.nlist)


def _cells(prefix: np.ndarray, seed: int) -> faiss.Index:
    """An inverted file over the prefix rows (about 4 sqrt(N) cells), to probe near cells only."""
    nlist = list_count(len(prefix))
    cells = faiss.IndexIVFFlat(
        faiss.IndexFlatIP(prefix.shape[1]), prefix.shape[1], nlist, faiss.METRIC_INNER_PRODUCT
    )
    rng = np.random.default_rng(seed)
    sample = min(len(prefix), 64 * nlist)
    cells.train(prefix[np.sort(rng.choice(len(prefix), sample, replace=False))])
    cells.add(prefix)
    return cells


def _grouped(pairs: np.ndarray, verify: np.ndarray) -> DuplicateGroups:
    """Groups around leaders: every member is a confirmed duplicate of its group's first item.

    The item with the most confirmed duplicates leads first and takes all of them not yet in
    a group; then the next, and so on. Joining pairs transitively instead (connected
    components) chains look-alikes into groups of hundreds whose ends share nothing.
    """
    partners: dict[int, list[int]] = {}
    for i, j in pairs.tolist():
        partners.setdefault(i, []).append(j)
        partners.setdefault(j, []).append(i)
    grouped: set[int] = set()
    groups = []
    for leader in sorted(partners, key=lambda row: (-len(partners[row]), row)):
        if leader in grouped:
            continue
        members = sorted(row for row in partners[leader] if row not in grouped)
        if not members:
            continue
        grouped.update(members)
        grouped.add(leader)
        rows = [leader, *members]
        scores = verify[rows] @ verify[leader]
        groups.append(
            [(row, round(float(score), 6)) for row, score in zip(rows, scores, strict=True)]
        )
    groups.sort(key=lambda group: (-len(group), group[0][0]))
    return DuplicateGroups(0.0, 0, 0, 0.0, len(pairs), len(pairs), groups=groups)


def _check(threshold: float, k_features: int, verify_features: int, keep: int) -> None:
    if not -1 <= threshold <= 1:
        raise ValueError(f"threshold must be a cosine from -1 to 1, got {threshold}")
    if not 1 <= verify_features <= keep:
        raise ValueError(f"verify features must be from 1 to {keep}, got {verify_features}")
    if not 1 <= k_features <= verify_features:
        raise ValueError(
            f"k_features must be from 1 to the verify budget ({verify_features}), got {k_features}"
        )
