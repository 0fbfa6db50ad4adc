"""Colour galleries with ground truth: the same things drawn by different hands.

`python -m evaluation.galleries icon-themes --out DIR` and `... dev-logos --out DIR` fetch
installable
icon sets (Debian's desktop icon themes; the npm registry's developer-logo sets), render every
icon to a 64x64 RGBA PNG, and write a gallery whose ground truth is the icon's name:

    DIR/gallery/<style>/<name>.png   the images a user would index (and train on)
    DIR/queries/<name>.png           one style kept out of the gallery, drawn by another hand
    DIR/items.json                   {"query_style", "validation_style", "gallery": {path: names},
                                      "queries": {path: names}}

An image carries every name that points at the same drawing (themes alias names by symlinks),
and a query's relevant items are the gallery images sharing one of its names. The validation
style is a gallery style that `evaluation.quality --split val` uses as queries against the rest, so
recipes are chosen without looking at the test queries. Downloads are cached under DIR/.cache.
"""

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from tqdm import tqdm

logger = logging.getLogger(__name__)

SIZE = 64
ITEMS_FILE = "items.json"


@dataclass(frozen=True)
class Drawing:
    """One source drawing: SVG text or a raster file, and the names it is known by."""

    names: tuple[str, ...]
    svg: str | None = None
    raster: Path | None = None


# Debian package -> the theme folders it ships (variants of one style are left out).
ICON_THEME_PACKAGES = {
    "adwaita-icon-theme": ["Adwaita"],
    "breeze-icon-theme": ["breeze"],
    "deepin-icon-theme": ["bloom"],
    "elementary-xfce-icon-theme": ["elementary-xfce"],
    "faenza-icon-theme": ["Faenza"],
    "gnome-icon-theme": ["gnome"],
    "mate-icon-theme": ["mate"],
    "moka-icon-theme": ["Moka"],
    "numix-icon-theme": ["Numix"],
    "obsidian-icon-theme": ["Obsidian"],
    "oxygen-icon-theme": ["oxygen"],
    "paper-icon-theme": ["Paper"],
    "papirus-icon-theme": ["Papirus"],
    "suru-icon-theme": ["suru"],
    "tango-icon-theme": ["Tango"],
    "yaru-theme-icon": ["Yaru"],
}
# Contexts that are not pictures of things (or are emoji, kept aside for a separate check).
_SKIPPED_CONTEXTS = {"emotes", "animations", "cursors", "stock", "emblems"}
_SIZE_FOLDER = re.compile(r"^(\d+)(?:x\d+)?$")

# Iconify JSON packages of developer logos; _DEV_LOGO_NAMES maps their names onto shared ones.
DEV_LOGO_PACKAGES = (
    "vscode-icons", "material-icon-theme", "devicon", "logos", "skill-icons", "catppuccin",
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.galleries", description=__doc__)
    parser.add_argument("name", choices=sorted(GALLERIES), help="which gallery to assemble")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--min-styles", type=int, default=None,
        help="gallery styles that must draw a name for it to be kept (default: per gallery)",
    )  # fmt: skip
    parser.add_argument("--max-gallery", type=int, default=10_000, help="cap on gallery images")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        assemble, min_styles = GALLERIES[args.name]
        assemble(args.out, args.min_styles or min_styles, args.max_gallery)
    except (RuntimeError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def assemble_icon_themes(out: Path, min_styles: int, max_gallery: int) -> dict:
    """Desktop icon themes from Debian: queries drawn by Papirus, validation by breeze."""
    cache = out / ".cache" / "debian"
    root = _extract_debs(list(ICON_THEME_PACKAGES), cache) / "usr/share/icons"
    styles = {
        theme: _theme_drawings(root / theme)
        for themes in ICON_THEME_PACKAGES.values()
        for theme in themes
    }
    return write_gallery(
        out, styles, query_style="Papirus", validation_style="breeze",
        min_styles=min_styles, max_gallery=max_gallery,
    )  # fmt: skip


def assemble_dev_logos(out: Path, min_styles: int, max_gallery: int) -> dict:
    """Logos of languages and tools from six icon sets: queries from devicon, validation logos."""
    cache = out / ".cache" / "npm"
    styles = {}
    for package in DEV_LOGO_PACKAGES:
        icon_set = _npm_icon_set(f"@iconify-json/{package}", cache)
        styles[package] = _iconify_drawings(icon_set, _DEV_LOGO_NAMES[package])
    return write_gallery(
        out, styles, query_style="devicon", validation_style="logos",
        min_styles=min_styles, max_gallery=max_gallery,
    )  # fmt: skip


def write_gallery(
    out: Path,
    styles: dict[str, list[Drawing]],
    *,
    query_style: str,
    validation_style: str,
    min_styles: int,
    max_gallery: int,
) -> dict:
    """Keep names drawn by at least `min_styles` gallery styles, render, write items.json.

    Queries are the query style's drawings of those names; the gallery holds every other
    style's drawings of them, capped at `max_gallery` images by dropping the rarest names.
    """
    gallery_styles = {name: drawings for name, drawings in styles.items() if name != query_style}
    coverage = Counter(name for drawings in gallery_styles.values() for name in _names_of(drawings))
    kept = {name for name, count in coverage.items() if count >= min_styles}
    for name in sorted(kept, key=lambda n: (coverage[n], n)):  # rarest first
        if _count_drawings(gallery_styles, kept) <= max_gallery:
            break
        kept.discard(name)
    if not kept:
        raise ValueError(f"no name is drawn by {min_styles} gallery styles")

    jobs: list[tuple[Drawing, Path]] = []
    items: dict[str, dict[str, list[str]]] = {"gallery": {}, "queries": {}}
    for style, drawings in sorted(styles.items()):
        folder = out / "queries" if style == query_style else out / "gallery" / style
        used: set[str] = set()
        for drawing in drawings:
            names = sorted(set(drawing.names) & kept)
            if not names:
                continue
            stem = _unique_stem(names[0], used)
            target = folder / f"{stem}.png"
            jobs.append((drawing, target))
            key = "queries" if style == query_style else "gallery"
            items[key][target.relative_to(out / key).as_posix()] = names
    for folder in (out / "gallery", out / "queries"):
        if folder.exists():
            shutil.rmtree(folder)
    rendered = _render_all(jobs)
    for key in ("gallery", "queries"):
        items[key] = {
            path: names for path, names in items[key].items() if (out / key / path) in rendered
        }
    summary = {
        "query_style": query_style,
        "validation_style": validation_style,
        "styles": sorted(gallery_styles),
        "names": len(kept),
        **items,
    }
    (out / ITEMS_FILE).write_text(json.dumps(summary, indent=1) + "\n")
    logger.info(
        "wrote %d gallery images in %d styles and %d queries (%s) over %d names to %s",
        len(items["gallery"]), len(gallery_styles), len(items["queries"]), query_style,
        len(kept), out,
    )  # fmt: skip
    return summary


def _names_of(drawings: list[Drawing]) -> set[str]:
    return {name for drawing in drawings for name in drawing.names}


def _count_drawings(styles: dict[str, list[Drawing]], kept: set[str]) -> int:
    return sum(1 for ds in styles.values() for d in ds if not kept.isdisjoint(d.names))


def _unique_stem(name: str, used: set[str]) -> str:
    stem = re.sub(r"[^a-z0-9._+-]", "_", name.lower())
    candidate, suffix = stem, 2
    while candidate in used:
        candidate, suffix = f"{stem}~{suffix}", suffix + 1
    used.add(candidate)
    return candidate


def _render_all(jobs: list[tuple[Drawing, Path]]) -> set[Path]:
    """Render every drawing to a SIZExSIZE RGBA PNG; returns the targets that rendered."""
    rsvg = _rsvg_convert() if any(drawing.svg is not None for drawing, _ in jobs) else ""
    done = set()

    def render(job: tuple[Drawing, Path]) -> Path | None:
        drawing, target = job
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if drawing.svg is not None:
                subprocess.run(
                    [rsvg, "-w", str(SIZE), "-h", str(SIZE), "-a", "-f", "png", "-o", str(target)],
                    input=drawing.svg.encode(), check=True, capture_output=True, timeout=30,
                )  # fmt: skip
                image = Image.open(target)
                image.load()
            else:
                image = Image.open(drawing.raster)
                image.load()
            _fit(image).save(target)
            return target
        except (subprocess.SubprocessError, OSError, ValueError) as error:
            logger.warning("skipping %s: %s", target.name, error)
            target.unlink(missing_ok=True)
            return None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for target in tqdm(pool.map(render, jobs), total=len(jobs), desc="render", unit="img"):
            if target is not None:
                done.add(target)
    return done


def _fit(image: Image.Image) -> Image.Image:
    """Scale to fit SIZExSIZE keeping the aspect ratio, centred on a transparent square."""
    image = image.convert("RGBA")
    image.thumbnail((SIZE, SIZE), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    canvas.paste(image, ((SIZE - image.width) // 2, (SIZE - image.height) // 2))
    return canvas


def _rsvg_convert() -> str:
    found = shutil.which("rsvg-convert")
    if found:
        return found
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "librsvg2-bin"], check=True)
        found = shutil.which("rsvg-convert")
    if not found:
        raise RuntimeError("rsvg-convert is needed to render SVG: apt-get install librsvg2-bin")
    return found


# Debian icon themes ---------------------------------------------------------------------------


def download_debs(packages: list[str], debs: Path) -> None:
    """`apt-get download` into `debs` each package not there yet."""
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not any(debs.glob(f"{p}_*.deb"))]
    if missing:
        logger.info("downloading %d packages: %s", len(missing), " ".join(missing))
        result = subprocess.run(
            ["apt-get", "download", *missing], cwd=debs, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"apt-get download failed ({result.stderr.strip()[-300:]}); "
                "run 'apt-get update' first"
            )


def _extract_debs(packages: list[str], cache: Path) -> Path:
    """`apt-get download` each package into the cache (once) and unpack it there."""
    debs, tree = cache / "debs", cache / "tree"
    download_debs(packages, debs)
    for deb in sorted(debs.glob("*.deb")):
        marker = tree / ".unpacked" / deb.name
        if not marker.exists():
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
    return tree


def _theme_drawings(theme: Path) -> list[Drawing]:
    """One drawing per distinct picture in a theme: the size nearest 64 px, SVG preferred.

    Names that resolve to the same file (the theme's own aliases) become one drawing.
    """
    if not theme.is_dir():
        raise FileNotFoundError(f"icon theme {theme} is missing from its package")
    best: dict[str, tuple[float, Path]] = {}
    for path in theme.rglob("*"):
        if path.suffix not in (".png", ".svg") or not path.is_file():
            continue
        parts = path.relative_to(theme).parts[:-1]
        if any("symbolic" in part or part in _SKIPPED_CONTEXTS for part in parts):
            continue
        name = path.stem
        if name.endswith("-symbolic") or name.startswith(("face-", "emoji-")):
            continue
        cost = _size_cost(parts, path.suffix)
        if cost is not None and (name not in best or cost < best[name][0]):
            best[name] = (cost, path)
    by_file: dict[str, list[str]] = defaultdict(list)
    for name, (_, path) in best.items():
        by_file[os.path.realpath(path)].append(name)
    drawings = []
    for real, names in sorted(by_file.items()):
        path = Path(real)
        if path.suffix == ".svg":
            drawings.append(Drawing(tuple(sorted(names)), svg=path.read_text(errors="replace")))
        else:
            drawings.append(Drawing(tuple(sorted(names)), raster=path))
    return drawings


def _size_cost(parts: tuple[str, ...], suffix: str) -> float | None:
    """How far a file's size folder is from 64 px (lower is better); None to skip it."""
    for part in parts:
        if part.startswith("scalable"):
            return None if "up-to" in part else 0.5
        match = _SIZE_FOLDER.match(part.split("@")[0])
        if match:
            size = int(match.group(1))
            if size < 32:
                return None
            return abs(size - SIZE) / SIZE + (0.01 if "@" in part else 0.0)
    return 1.0 if suffix == ".svg" else None


# npm icon sets ----------------------------------------------------------------------------------


def _npm_icon_set(package: str, cache: Path) -> dict:
    """The icons.json of an Iconify JSON package, fetched once with `npm pack`."""
    folder = cache / package.replace("/", "+")
    icons = folder / "package" / "icons.json"
    if not icons.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to fetch the icon sets: apt-get install npm")
        folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [npm, "pack", "--silent", package], cwd=folder, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"npm pack {package} failed: {result.stderr.strip()[-300:]}")
        archive = folder / result.stdout.strip().splitlines()[-1]
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
    return json.loads(icons.read_text())


def _iconify_drawings(icon_set: dict, rename: Callable[[str], str | None]) -> list[Drawing]:
    default_width, default_height = icon_set.get("width", 16), icon_set.get("height", 16)
    drawings = []
    for name, icon in sorted(icon_set["icons"].items()):
        item = rename(name.lower())
        if item is None:
            continue
        left, top = icon.get("left", 0), icon.get("top", 0)
        width, height = icon.get("width", default_width), icon.get("height", default_height)
        svg = (
            f'<svg xmlns="http://www.w3.org/2000/svg" '
            f'xmlns:xlink="http://www.w3.org/1999/xlink" width="{width}" height="{height}" '
            f'viewBox="{left} {top} {width} {height}">{icon["body"]}</svg>'
        )
        drawings.append(Drawing((item,), svg=svg))
    return drawings


def _strip(prefix: str = "", suffixes: tuple[str, ...] = (), drop: tuple[str, ...] = ()):
    """A renamer: drop names with a `drop` suffix, strip `prefix` and the first of `suffixes`."""

    def rename(name: str) -> str | None:
        if drop and name.endswith(drop):
            return None
        if prefix:
            if not name.startswith(prefix):
                return None
            name = name[len(prefix) :]
        for suffix in suffixes:
            if name.endswith(suffix):
                return name[: -len(suffix)]
        return name

    return rename


_DEV_LOGO_NAMES: dict[str, Callable[[str], str | None]] = {
    "vscode-icons": _strip(prefix="file-type-"),
    "material-icon-theme": _strip(drop=("-light",)),
    "devicon": _strip(drop=("-wordmark",)),
    "logos": _strip(suffixes=("-icon",)),
    "skill-icons": _strip(suffixes=("-dark", "-light"), drop=("-light",)),
    "catppuccin": _strip(),
}

# name -> (assembler, default --min-styles). Desktop themes draw thousands of application icons
# that only three or four themes share; 8 keeps the names most themes agree on (601 names).
GALLERIES = {"icon-themes": (assemble_icon_themes, 8), "dev-logos": (assemble_dev_logos, 3)}


if __name__ == "__main__":
    sys.exit(main())
