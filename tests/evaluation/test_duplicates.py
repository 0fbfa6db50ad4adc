"""The duplicate finder's evaluation: planted galleries, pair scores, the balanced threshold and
the pHash baseline."""

from evaluation.duplicates import (
    balanced_threshold,
    pair_scores,
    phash_pair_scores,
    write_planted_gallery,
)
from indexer.duplicates import DuplicateGroups


def test_planted_near_duplicates_are_scored_as_pairs(gallery, tmp_path):
    origin = write_planted_gallery(tmp_path / "planted", 6, 2, source=gallery / "plain")
    names = sorted(origin)
    assert len(names) == 6 + 2 * 5
    assert sorted(path.name for path in (tmp_path / "planted/planted").iterdir())[:5] == [
        "00000-brighter.png", "00000-cropped.png", "00000-jpeg.jpg", "00000-mirrored.png",
        "00000-scaled.png",
    ]  # fmt: skip
    ids = names
    row = {name: number for number, name in enumerate(ids)}
    truth = [[row[n] for n in ids if origin[n] == group] for group in (0, 1)]
    perfect = DuplicateGroups(0.9, 8, 32, 0.9, groups=[[(r, 1.0) for r in g] for g in truth])
    kinds = {"brighter", "cropped", "jpeg", "mirrored", "scaled"}
    assert pair_scores(perfect, ids, origin) | {"threshold": 0} == {
        "threshold": 0, "groups": 2, "pairs_found": 30, "true_pairs": 30, "precision": 1.0,
        "recall": 1.0, "f1": 1.0, "recall_by_alteration": dict.fromkeys(sorted(kinds), 1.0),
    }  # fmt: skip
    # One group holding an original that is not a copy of it: 6 of its 21 pairs are wrong.
    extra = next(n for n in ids if origin[n] == 2)
    mixed = DuplicateGroups(0.9, 8, 32, 0.9, groups=[[(r, 1.0) for r in [*truth[0], row[extra]]]])
    scores = pair_scores(mixed, ids, origin)
    assert scores["pairs_found"] == 21 and scores["precision"] == round(15 / 21, 4)
    assert scores["recall"] == 0.5
    assert scores["recall_by_alteration"] == dict.fromkeys(sorted(kinds), 0.5)


def test_the_validation_gallery_holds_other_images_and_chooses_the_balanced_threshold(
    gallery, tmp_path
):
    first = write_planted_gallery(tmp_path / "first", 3, 1, source=gallery / "plain")
    after = write_planted_gallery(tmp_path / "after", 3, 1, source=gallery / "plain", skip=3)
    pixels = {
        (tmp_path / folder / name).read_bytes()
        for folder, origin in (("first", first), ("after", after))
        for name in origin
        if name.startswith("originals/")
    }
    assert len(pixels) == 6  # no original of the validation gallery is one of the first
    rows = [
        {"threshold": 0.9, "precision": 0.5, "recall": 0.99},
        {"threshold": 0.95, "precision": 0.8, "recall": 0.85},
        {"threshold": 0.98, "precision": 0.99, "recall": 0.6},
    ]
    assert balanced_threshold(rows) == 0.95
    # Over two galleries, the threshold whose worst gallery is best.
    photos = [{**row, "recall": 0.9 if row["threshold"] == 0.98 else 0.3} for row in rows]
    assert balanced_threshold(rows, photos) == 0.98


def test_phash_baseline_scores_pairs_at_its_best_hamming_distance(gallery, tmp_path):
    origin = write_planted_gallery(tmp_path / "planted", 6, 2, source=gallery / "plain")
    best = phash_pair_scores(tmp_path / "planted", origin)
    assert 0 <= best["hamming"] <= 32
    assert best["true_pairs"] == 30 and 0.0 <= best["f1"] <= 1.0
    # Its re-encoded, brightened and rescaled copies hash close to their originals.
    assert best["recall_by_alteration"]["jpeg"] == 1.0
