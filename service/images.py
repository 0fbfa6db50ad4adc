"""Turning uploaded bytes into a decoded image, or a sentence saying why that failed."""

import io
import warnings

from PIL import Image, UnidentifiedImageError


class ImageRejected(ValueError):
    """The upload is not an image this service can use; the message is meant for the caller."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


def decode_upload(data: bytes, *, max_pixels: int) -> Image.Image:
    """Decode an uploaded file (first frame of animations), refusing oversized images up front.

    The pixel count is read from the header and checked before any pixel is decoded, so a
    small file that would expand to gigabytes is refused without allocating it.
    """
    if not data:
        raise ImageRejected("the uploaded file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRejected(
                    f"the image is {width}x{height} pixels; "
                    f"at most {max_pixels:,} pixels are accepted",
                    status_code=413,
                )
            image.seek(0)
            image.load()
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected("the uploaded file is not an image in a supported format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(
            f"the image has too many pixels to decode safely; "
            f"at most {max_pixels:,} pixels are accepted",
            status_code=413,
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageRejected("the image data is corrupt or truncated") from None
    return image
