"""Images the tests make for themselves: garments, galleries in every format, IDX files."""

import gzip
import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def garment(seed: int, size: int = 28) -> np.ndarray:
    """A bright blob on black, shaped by the seed: cheap stand-ins for product photos."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    cy, cx = rng.uniform(0.35, 0.65, 2)
    ry, rx = rng.uniform(0.15, 0.4, 2)
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
    texture = rng.uniform(120, 255) * (0.8 + 0.2 * np.sin(xx * rng.uniform(5, 30)))
    return (mask * texture).astype(np.uint8)


def write_gallery(root: Path) -> dict[str, str]:
    """Write images in every supported format and odd mode; returns id -> what it is."""
    made = {}

    def save(relative: str, image: Image.Image, what: str, **options) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, **options)
        made[relative] = what

    for i in range(12):
        save(f"plain/item-{i:02d}.png", Image.fromarray(garment(i)), "L png")
    big = Image.fromarray(garment(100, 300)).resize((300, 200))
    save("odd/rgb-large.jpg", big.convert("RGB"), "RGB jpeg, not square")
    save("odd/cmyk.jpg", Image.fromarray(garment(101)).convert("CMYK"), "CMYK jpeg")
    rgba = Image.fromarray(garment(102)).convert("RGBA")
    rgba.putalpha(Image.fromarray(garment(103)))
    save("odd/rgba.png", rgba, "RGBA png")
    save("odd/la.png", Image.fromarray(garment(104)).convert("LA"), "LA png")
    save("odd/palette.png", Image.fromarray(garment(105)).convert("RGB").quantize(16), "P png")
    wide = (garment(106).astype(np.uint16) * 257).astype(np.uint16)
    save("odd/sixteen-bit.png", Image.fromarray(wide), "I;16 png")
    frames = [Image.fromarray(garment(107 + f)).convert("P") for f in range(3)]
    frames[0].save(root / "odd/animated.gif", save_all=True, append_images=frames[1:], duration=50)
    made["odd/animated.gif"] = "animated gif"
    save("odd/photo.webp", Image.fromarray(garment(110)).convert("RGB"), "webp")
    save("odd/bitmap.bmp", Image.fromarray(garment(111)), "bmp")
    save("odd/scan.tiff", Image.fromarray(garment(112)), "tiff")
    save("odd/name with spaces é.png", Image.fromarray(garment(113)), "unicode name")
    (root / "broken").mkdir()
    (root / "broken/not-an-image.png").write_text("this is text, not a PNG")
    png = io.BytesIO()
    Image.fromarray(garment(114)).save(png, format="PNG")
    (root / "broken/truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    (root / "notes.txt").write_text("ignored: not an image suffix")
    return made


BROKEN = {"broken/not-an-image.png", "broken/truncated.png"}


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzip-compressed IDX file, the format of Fashion-MNIST."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", size) for size in array.shape)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())
