"""The query upload: one dependency that reads the `file` form field within the size limit.

`LimitUploadSize` (service.middleware) refuses oversized bodies before they are parsed; this
dependency holds the same limit for the file itself, with the same sentence.
"""

from typing import Annotated

from fastapi import Depends, File, HTTPException, UploadFile

from service.deps import SettingsDep


def too_large(limit: int) -> str:
    """The 413 sentence for an upload over `limit` bytes."""
    return f"the upload is larger than {limit:,} bytes"


async def read_upload(
    settings: SettingsDep,
    file: Annotated[UploadFile | None, File(description="the query image")] = None,
) -> bytes:
    """The uploaded query image's bytes; 422 if the field is missing, 413 if too large."""
    if file is None:
        raise HTTPException(
            422, "missing form field 'file': send the query image as multipart/form-data"
        )
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(413, too_large(settings.max_upload_bytes))
    return data


UploadDep = Annotated[bytes, Depends(read_upload)]
