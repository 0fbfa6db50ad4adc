"""The photo set end to end on synthetic photographs in fake unpacked packages: screening,
merging copies, the split, the attacks, items.json as evaluation.quality reads it, planted
copies."""

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from evaluation import photos
from evaluation.photos import (
    GALLERY_SIDE,
    QUERY_SIDE,
    Candidate,
    PhotoSource,
    assemble_from_trees,
    attack,
    deduplicate,
    largest_per_folder,
    list_candidates,
    measure,
    rotate_within,
    split_photos,
    write_planted_gallery,
)
from evaluation.quality import load_gallery_set


def synthetic_photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A smooth random scene with sensor-like noise: photo-like statistics, unique per seed."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.uniform(0, 255, size=(6, 8, 3)).astype(np.uint8))
    scene = np.asarray(coarse.resize(size, Image.Resampling.BICUBIC), dtype=np.float64)
    noise = rng.normal(0, 8, size=scene.shape)
    return Image.fromarray(np.clip(scene + noise, 0, 255).astype(np.uint8))


def drawing(size: tuple[int, int] = (640, 480)) -> Image.Image:
    image = Image.new("RGB", size, (240, 240, 250))
    draw = ImageDraw.Draw(image)
    draw.rectangle((50, 60, 300, 280), fill=(200, 40, 40))
    draw.ellipse((350, 100, 600, 400), fill=(40, 90, 200))
    return image


def save(image: Image.Image, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=92)  # PNG ignores the quality
    return path


def candidate(path, package="pkg-a", group=None) -> Candidate:
    return Candidate(package, path, path.name, group)


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """Three fake packages: photos, a copy of one in another package (grey, smaller), a
    drawing, a thumbnail, an excluded file and a wallpaper folder at two sizes."""
    root = tmp_path_factory.mktemp("tree")
    a = root / "pkg-a" / "usr/share/backgrounds"
    for seed in range(6):
        save(synthetic_photo(seed), a / f"photo{seed}.jpg")
    save(synthetic_photo(0).resize((533, 400)), a / "photo0-smaller.jpg")
    save(drawing(), a / "drawing.png")
    save(synthetic_photo(9, (200, 150)), a / "thumbnail.jpg")
    save(synthetic_photo(10), a / "skip-me.jpg")
    (a / "notes.txt").write_text("not a picture")
    b = root / "pkg-b" / "usr/share/pictures"
    save(synthetic_photo(0).resize((480, 360)).convert("L"), b / "grey-copy.jpg")
    for seed in range(20, 24):
        save(synthetic_photo(seed, (600, 600)), b / f"square{seed}.png")
    wall = root / "pkg-c" / "usr/share/wallpapers/Lake/contents/images"
    big = synthetic_photo(30, (1280, 800))
    save(big, wall / "1280x800.jpg")
    save(big.crop((160, 0, 1120, 800)).resize((720, 600)), wall / "720x600.jpg")
    return {name: root / name for name in ("pkg-a", "pkg-b", "pkg-c")}


SOURCES = {
    "pkg-a": PhotoSource(("usr/share/backgrounds/*",), exclude=("*/skip-*",)),
    "pkg-b": PhotoSource(("usr/share/pictures/*",)),
    "pkg-c": PhotoSource(("usr/share/wallpapers/*/contents/images/*",), one_per_folder=True),
}


@pytest.fixture(scope="module")
def photo_set(trees, tmp_path_factory):
    out = tmp_path_factory.mktemp("set")
    items = assemble_from_trees(out, trees, sources=SOURCES, seed=3)
    return out, items


def test_measure_keeps_photos_and_says_why_it_rejects_the_rest(tmp_path):
    photo = measure(candidate(save(synthetic_photo(1), tmp_path / "photo.jpg")))
    assert isinstance(photo, photos.Photo) and (photo.width, photo.height) == (640, 480)
    assert photo.colour and abs(float(photo.signature @ photo.signature) - 1) < 1e-5
    assert measure(candidate(save(drawing(), tmp_path / "d.png")))[:12] == "not a photo:"
    small = synthetic_photo(2, (400, 300))
    assert measure(candidate(save(small, tmp_path / "s.jpg"))) == "too small: 400x300"
    banner = synthetic_photo(3, (1200, 400))
    assert measure(candidate(save(banner, tmp_path / "b.jpg"))).startswith("too elongated")


def test_list_candidates_follows_include_and_exclude_patterns(trees):
    names = {c.path.name for c in list_candidates("pkg-a", trees["pkg-a"], SOURCES["pkg-a"])}
    assert "skip-me.jpg" not in names and "notes.txt" not in names
    assert {"photo0.jpg", "drawing.png", "thumbnail.jpg"} <= names
    walls = list_candidates("pkg-c", trees["pkg-c"], SOURCES["pkg-c"])
    assert len({c.folder_group for c in walls}) == 1 and len(walls) == 2


def test_deduplicate_keeps_the_largest_colour_copy_across_packages(trees):
    files = [
        ("pkg-b", trees["pkg-b"] / "usr/share/pictures/grey-copy.jpg"),
        ("pkg-a", trees["pkg-a"] / "usr/share/backgrounds/photo0-smaller.jpg"),
        ("pkg-a", trees["pkg-a"] / "usr/share/backgrounds/photo0.jpg"),
        ("pkg-a", trees["pkg-a"] / "usr/share/backgrounds/photo1.jpg"),
    ]
    measured = [measure(candidate(path, package)) for package, path in files]
    kept, rejected = deduplicate(measured)
    assert sorted(p.candidate.path.name for p in kept) == ["photo0.jpg", "photo1.jpg"]
    assert rejected == {
        "pkg-b/grey-copy.jpg": "duplicate: pkg-a/photo0.jpg",
        "pkg-a/photo0-smaller.jpg": "duplicate: pkg-a/photo0.jpg",
    }


def test_largest_per_folder_keeps_one_size_of_a_wallpaper(trees):
    walls = list_candidates("pkg-c", trees["pkg-c"], SOURCES["pkg-c"])
    kept, rejected = largest_per_folder([measure(c) for c in walls])
    assert [p.candidate.path.name for p in kept] == ["1280x800.jpg"]
    assert list(rejected.values()) == [f"other size: pkg-c/{walls[0].relative}"]


def test_photo_names_are_unique_and_readable(tmp_path):
    def photo(relative, package="pkg-a"):
        return photos.Photo(Candidate(package, tmp_path, relative, None), 1, 1, True, None)

    named = photos.name_photos(
        [
            photo("usr/share/a/sky.jpg"),
            photo("usr/share/b/sky.png"),
            photo("usr/share/b/sea side.jpg"),
            photo("usr/share/sky.jpg", package="pkg-b"),
            photo("usr/share/wallpapers/Path/contents/images/2560x1600.jpg"),
        ]
    )
    assert sorted(named) == [
        "pkg-a__Path",
        "pkg-a__a-sky",
        "pkg-a__b-sky",
        "pkg-a__sea_side",
        "pkg-b__sky",
    ]


def test_split_is_deterministic_disjoint_and_draws_distractors_from_large_sets():
    ids = [f"pkg__{i:03d}" for i in range(300)]
    roles = split_photos(ids, seed=0, distractor_share=0.25)
    assert roles == split_photos(ids, seed=0, distractor_share=0.25)
    assert roles != split_photos(ids, seed=1, distractor_share=0.25)
    counts = {role: sum(1 for r in roles.values() if r == role) for role in set(roles.values())}
    assert counts == {"distractor": 75, "test": 113, "val": 112}
    small = split_photos(ids[:50], seed=0, distractor_share=0.25)
    assert sorted(set(small.values())) == ["test", "val"] and len(small) == 50


@pytest.mark.parametrize("kind", photos.ATTACKS)
def test_attack_crops_half_to_four_fifths_of_each_side_then_applies_one_change(kind):
    image = synthetic_photo(5, (1600, 1200))
    for seed in range(5):
        copy, quality, details = attack(image, kind, np.random.default_rng(seed))
        left, top, right, bottom = details["crop"]
        assert 0 <= left < right <= 1600 and 0 <= top < bottom <= 1200
        assert 0.5 * 1600 - 1 <= right - left <= 0.8 * 1600 + 1
        assert 0.5 * 1200 - 1 <= bottom - top <= 0.8 * 1200 + 1
        assert max(copy.size) <= QUERY_SIDE and list(copy.size) == details["size"]
        if kind == "jpeg":
            assert 20 <= quality <= 40
        else:
            assert quality == photos.QUERY_QUALITY
        if kind == "rotate":
            assert 5 <= abs(details["degrees"]) <= 20
        if kind == "scale":
            assert 0.25 <= details["scale"] <= 0.5


def test_rotation_is_cut_to_a_rectangle_without_corners():
    white = Image.new("RGB", (800, 600), "white")
    for degrees in (-20, -5, 12):
        rotated = np.asarray(rotate_within(white, degrees))
        assert rotated.shape[0] < 600 and rotated.shape[1] < 800
        assert rotated[1:-1, 1:-1].min() >= 250  # no black canvas shows inside


def test_assembled_set_is_what_bench_quality_reads(photo_set, trees):
    out, items = photo_set
    assert items["packages"] == {"pkg-a": 6, "pkg-b": 4, "pkg-c": 1}
    assert items["rejected"] == {"duplicate": 2, "not a photo": 1, "other size": 1, "too small": 1}
    assert items["distractors"] == []  # too few photos for distractors
    ids = {i for names in items["gallery"].values() for i in names}
    assert ids == set(items["sources"]) and len(ids) == 11
    assert items["sources"]["pkg-c__Lake"] == {
        "package": "pkg-c",
        "path": "/usr/share/wallpapers/Lake/contents/images/1280x800.jpg",
        "size": [1280, 800],
    }
    for path in items["gallery"]:
        with Image.open(out / "gallery" / path) as image:
            assert max(image.size) <= GALLERY_SIDE and image.format == "JPEG"
    test, val = set(items["queries"]), set(items["validation_queries"])
    assert not test & val and len(test) + len(val) == 11 and abs(len(test) - len(val)) <= 1
    assert set(items["attacks"]) == {f"queries/{q}" for q in test} | {
        f"validation/{q}" for q in val
    }
    assert set(items["attacks"].values()) <= {f"crop+{kind}" for kind in photos.ATTACKS}
    for split, folder in (("test", "queries"), ("val", "validation")):
        data = load_gallery_set(out, split)
        assert all(path.parent == out / folder and path.is_file() for path in data.queries)
        assert [len(relevant) for relevant in data.relevant()] == [1] * len(data.queries)
        assert len(data.gallery) == 11
    rejected = json.loads((out / "rejected.json").read_text())
    assert rejected["pkg-a/usr/share/backgrounds/thumbnail.jpg"] == "too small: 200x150"


def test_assembling_again_gives_the_same_set(photo_set, trees, tmp_path):
    out, items = photo_set
    again = assemble_from_trees(tmp_path, trees, sources=SOURCES, seed=3)
    assert again == items
    for query in items["queries"]:
        assert (tmp_path / "queries" / query).read_bytes() == (out / "queries" / query).read_bytes()


def test_validation_split_falls_back_to_the_validation_style(tmp_path):
    items = {
        "validation_style": "b",
        "gallery": {"a/x.png": ["x"], "b/x.png": ["x"], "a/y.png": ["y"]},
        "queries": {"x.png": ["x"]},
    }
    (tmp_path / "items.json").write_text(json.dumps(items))
    styled = load_gallery_set(tmp_path, "val")
    assert styled.queries == [tmp_path / "gallery" / "b/x.png"] and len(styled.gallery) == 2
    items["validation_queries"] = {"y.jpg": ["y"]}
    (tmp_path / "items.json").write_text(json.dumps(items))
    own = load_gallery_set(tmp_path, "val")
    assert own.queries == [tmp_path / "validation" / "y.jpg"] and len(own.gallery) == 3


def test_planted_galleries_use_disjoint_halves_and_map_every_file(photo_set, tmp_path):
    out, items = photo_set
    halves = {}
    for half in ("val", "test"):
        origins = write_planted_gallery(out, tmp_path / half, half=half, copies_of=2, seed=0)
        assert json.loads((tmp_path / half / "origins.json").read_text()) == origins
        assert all((tmp_path / half / name).is_file() for name in origins)
        originals = {name: i for name, i in origins.items() if name.startswith("originals/")}
        halves[half] = set(originals.values())
        copies = [name for name in origins if name.startswith("planted/")]
        assert len(copies) == 10 and len({origins[name] for name in copies}) == 2
        for name, photo_id in originals.items():
            gallery = out / "gallery" / name.removeprefix("originals/")
            assert items["gallery"][name.removeprefix("originals/")] == [photo_id]
            assert (tmp_path / half / name).read_bytes() == gallery.read_bytes()
        scaled = next(tmp_path.glob(f"{half}/planted/*/*/scaled.jpg"))
        package, stem = scaled.parts[-3], scaled.parts[-2]
        with (
            Image.open(scaled) as small,
            Image.open(out / "gallery" / package / f"{stem}.jpg") as full,
        ):
            assert small.size == (full.width // 2, full.height // 2)
    assert not halves["val"] & halves["test"] and len(halves["val"] | halves["test"]) == 11


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert photos.main(["planted", "--set", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "assemble" in error and "\n" not in error
