"""Training data: Fashion-MNIST from its IDX files, or any folder of images (no labels)."""

import gzip
import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from models.config import EncoderConfig
from models.imagefiles import list_image_files, open_image
from models.preprocess import to_pixels

logger = logging.getLogger(__name__)

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
)
WORKING_SIZE_CAP = 32
MIN_WORKING_SIZE = 16
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into an array of its stored shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        data = stream.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path.name} is not an IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - offset != expected:
        raise ValueError(
            f"{path.name}: header says {expected} bytes of data, file has {len(data) - offset}"
        )
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape).copy()


def load_fashion_mnist(split: str, root: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (Nx28x28 uint8) and labels (N int64) of the "train" or "test" split.

    `root` defaults to $FASHION_MNIST_DIR, else where Debian's dataset-fashion-mnist puts it.
    """
    root = root or Path(os.environ.get("FASHION_MNIST_DIR", DEBIAN_FASHION_MNIST_DIR))
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    images_path = root / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = root / f"{prefix}-labels-idx1-ubyte.gz"
    for path in (images_path, labels_path):
        if not path.exists():
            raise FileNotFoundError(
                f"{path} not found: install Debian's dataset-fashion-mnist package "
                "or set FASHION_MNIST_DIR to the folder holding the IDX files"
            )
    images, labels = read_idx(images_path), read_idx(labels_path)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels in {root}")
    return images, labels.astype(np.int64)


def model_pixels(images: np.ndarray, config: EncoderConfig) -> np.ndarray:
    """Nx28x28 grayscale arrays -> uint8 NxHxWxC model input, as the indexer would see the
    images written as files (a pretrained backbone wants RGB at its own size)."""
    if config.in_channels == 1 and config.image_size == images.shape[1]:
        return images[..., None]
    pixels = [
        to_pixels(Image.fromarray(image), config)
        for image in tqdm(images, desc="resizing", unit="img", disable=len(images) < 1000)
    ]
    return np.stack(pixels)


def describe_folder(files: list[Path], *, sample: int = 256) -> tuple[int, int]:
    """(channels, working image size) read from a sample of the images themselves.

    Channels: 3 if any sampled image has colour, else 1. Size: the median shorter side,
    capped at WORKING_SIZE_CAP, since a 2-core CPU trains about 4x faster per halving and
    retrieval on small galleries gains little from more pixels.
    """
    step = max(1, len(files) // sample)
    colour, sides = False, []
    for path in files[::step][:sample]:
        try:
            image = open_image(path)
        except Exception:  # the decoder's own error is reported when the file is loaded
            continue
        sides.append(min(image.size))
        colour = colour or _has_colour(image)
    if not sides:
        raise ValueError(f"none of the {len(files)} sampled image files could be decoded")
    size = int(min(WORKING_SIZE_CAP, max(MIN_WORKING_SIZE, np.median(sides))))
    return (3 if colour else 1), size


def channel_statistics(pixels: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 NxCxHxW pixels, scaled to [0, 1]."""
    values = pixels.transpose(1, 0, 2, 3).reshape(pixels.shape[1], -1)
    mean = values.mean(axis=1, dtype=np.float64) / 255.0
    std = values.std(axis=1, dtype=np.float64) / 255.0
    return tuple(round(float(m), 4) for m in mean), tuple(
        round(max(float(s), 1e-3), 4) for s in std
    )


def _has_colour(image) -> bool:
    if image.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return False
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    return bool(
        np.abs(rgb[..., 0] - rgb[..., 1]).max() > 8 or np.abs(rgb[..., 1] - rgb[..., 2]).max() > 8
    )


def folder_image_files(data: str) -> tuple[Path, list[Path]]:
    """The image files of a `--data` folder; an error naming the problem if there are none."""
    folder = Path(data)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"--data must be 'fashion-mnist' or an image folder; {data} is neither"
        )
    files = list_image_files(folder)
    if not files:
        raise ValueError(f"no images found in {folder}")
    return folder, files


def load_training_pixels(data: str, config: EncoderConfig) -> np.ndarray:
    """uint8 NxCxHxW pixels for training: "fashion-mnist" (train split) or an image folder."""
    if data == "fashion-mnist":
        images, _ = load_fashion_mnist("train")
        return model_pixels(images, config).transpose(0, 3, 1, 2).copy()
    folder, files = folder_image_files(data)
    pixels = []
    for path in tqdm(files, desc="decoding", unit="img"):
        try:
            pixels.append(to_pixels(open_image(path), config))
        except Exception as error:  # one unreadable file must not stop training
            logger.warning("skipping %s: %s", path, error)
    if not pixels:
        raise ValueError(f"none of the {len(files)} image files in {folder} could be decoded")
    return np.stack(pixels).transpose(0, 3, 1, 2).copy()
