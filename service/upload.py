"""The uploads: dependencies that read the `file` (or `files`) form fields within the limits.

`LimitUploadSize` (service.middleware) refuses oversized bodies before they are parsed; these
dependencies hold the same limit for each file, with the same sentence. The fields are declared
required, so the published schema says so; a request without them gets the sentence from
`missing_field` (through the app's validation handler).
"""

from typing import Annotated

from fastapi import Depends, File, HTTPException, UploadFile

from service.api_models import MAXIMUM_LIMIT
from service.deps import SettingsDep

# OpenAPI 3.0's word for a file, besides 3.1's contentMediaType: client generators that know
# only the first would otherwise send the image as a text part.
BINARY = {"type": "string", "format": "binary"}


def too_large(limit: int) -> str:
    """The 413 sentence for an upload over `limit` bytes."""
    return f"the upload is larger than {limit:,} bytes"


def missing_field(name: str) -> str:
    """The 422 sentence for a form without the upload field `name`."""
    what = "the query images, one part per image" if name == "files" else "the query image"
    return f"missing form field '{name}': send {what} as multipart/form-data"


async def read_upload(
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="the query image", json_schema_extra=BINARY)],
) -> bytes:
    """The uploaded query image's bytes; 413 if too large."""
    data = await _read_within(file, settings.max_upload_bytes)
    if data is None:
        raise HTTPException(413, too_large(settings.max_upload_bytes))
    return data


async def read_uploads(
    settings: SettingsDep,
    files: Annotated[
        list[UploadFile],
        File(
            description="the query images, in order: one part each, at most max_batch_files",
            json_schema_extra={"items": BINARY, "minItems": 1, MAXIMUM_LIMIT: "max_batch_files"},
        ),
    ],
) -> list[tuple[str, bytes | None]]:
    """Each uploaded file's name and bytes (None for one over the per-file limit, which the
    batch answers for that file alone); 422 if there are more files than a batch takes."""
    if len(files) > settings.max_batch_files:
        raise HTTPException(
            422, f"a batch takes at most {settings.max_batch_files} files, got {len(files)}"
        )
    return [
        (upload.filename or "", await _read_within(upload, settings.max_upload_bytes))
        for upload in files
    ]


async def _read_within(upload: UploadFile, limit: int) -> bytes | None:
    """The file's bytes, or None if it holds more than `limit` (reading stops just past it)."""
    data = await upload.read(limit + 1)
    return data if len(data) <= limit else None


UploadDep = Annotated[bytes, Depends(read_upload)]
UploadsDep = Annotated[list[tuple[str, bytes | None]], Depends(read_uploads)]
