"""Index directories as older code wrote them, for the tests that they are refused."""

import dataclasses
import shutil
from pathlib import Path

from search.manifest import MANIFEST_FILE, read_manifest


def older_format_copy(index_dir: Path, out: Path, index_format: int = 1) -> Path:
    """A copy of a built index whose manifest says it is of `index_format`."""
    shutil.copytree(index_dir, out)
    older = dataclasses.replace(read_manifest(index_dir), format=index_format)
    (out / MANIFEST_FILE).write_text(older.to_json())
    return out
