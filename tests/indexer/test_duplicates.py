"""The duplicate finder's funnel finds what comparing every pair at the full budget finds."""

import json
import subprocess
import sys

import numpy as np
import pytest

from indexer.duplicates import all_pairs_duplicates, find_duplicates, groups_document
from search.index_dir import load_index


def planted(count: int = 4000, groups: int = 60, keep: int = 32, seed: int = 0):
    """Random rows with falling scale per dimension (importance order), and `groups` of them
    copied twice with a little noise: the near-duplicates to find."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(count, keep)) * np.linspace(3, 0.3, keep)
    truth = []
    for number in range(groups):
        copies = []
        for _ in range(2):
            copies.append(len(vectors))
            noisy = vectors[number] + rng.normal(scale=0.05, size=keep) * np.linspace(3, 0.3, keep)
            vectors = np.vstack([vectors, noisy])
        truth.append([number, *copies])
    return vectors.astype(np.float32), truth


def test_the_funnel_finds_the_planted_groups_and_nothing_else():
    vectors, truth = planted()
    found = find_duplicates(vectors, 0.97, k_features=8)
    assert sorted(sorted(row for row, _ in group) for group in found.groups) == sorted(truth)
    assert found.candidate_threshold < 0.97 and found.cells_probed >= 1
    # The candidates are a sliver of all pairs: that is where the time goes.
    assert found.candidate_pairs < 0.01 * len(vectors) ** 2 / 2
    assert found.groups == all_pairs_duplicates(vectors, 0.97).groups


def test_groups_form_around_a_leader_instead_of_chaining():
    # a ~ b and b ~ c above the threshold, but a and c below it: b leads one group of three,
    # and every member is a duplicate of b (connected components would chain on from c).
    a = np.array([1.0, 0.0, 0.0, 0.0])
    b = np.array([np.cos(0.25), np.sin(0.25), 0.0, 0.0])
    c = np.array([np.cos(0.5), np.sin(0.5), 0.0, 0.0])
    d = np.array([0.0, 0.0, 1.0, 0.0])
    vectors = np.stack([a, b, c, d]).astype(np.float32)
    found = all_pairs_duplicates(vectors, 0.96)
    assert [[row for row, _ in group] for group in found.groups] == [[1, 0, 2]]
    assert found.groups[0][0][1] == pytest.approx(1.0)
    assert found.groups[0][1][1] == pytest.approx(np.cos(0.25), abs=1e-6)


def test_bad_budgets_and_thresholds_are_refused_in_words():
    vectors, _ = planted(count=50, groups=2)
    with pytest.raises(ValueError, match="threshold must be a cosine"):
        find_duplicates(vectors, 1.5)
    with pytest.raises(ValueError, match="k_features must be from 1 to the verify budget"):
        find_duplicates(vectors, 0.9, k_features=20, verify_features=16)


def test_the_command_writes_the_groups_and_refuses_bad_flags(index_dir, tmp_path):
    out = tmp_path / "groups.json"
    command = [sys.executable, "-m", "indexer", "duplicates", "--index", str(index_dir)]
    done = subprocess.run(
        [*command, "--threshold", "0.9", "--out", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "groups of near-duplicates" in done.stdout and "candidates" in done.stderr
    index = load_index(index_dir)
    written = json.loads(out.read_text())
    exact = groups_document(all_pairs_duplicates(index.vectors, 0.9), index.ids)
    assert written["threshold"] == 0.9 and written["groups"] == exact["groups"]
    assert written["groups"], "the test gallery has look-alikes at 0.9"
    bad = subprocess.run([*command, "--verify-features", "most"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "error: --verify-features must be an integer or keep, got 'most'"
    )
