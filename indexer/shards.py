"""An index kept as shards: complete index directories, each holding a contiguous run of rows.

`python -m indexer build --engine ray --keep-shards` leaves them in `<out>.shards/`, and
`python -m indexer split` cuts an existing index into them. Each shard
is a valid index on its own (a service can serve it; its manifest says which shard it is), and
their rows in shard order are the rows of the merged index.
"""

import dataclasses
import itertools
from pathlib import Path

import numpy as np

from indexer.writing import write_index
from search.index_dir import LoadedIndex, load_index

SHARD_NAME = "shard-{:05d}"


def shard_dirs(shards_root: Path) -> list[Path]:
    """The shard directories below `shards_root`, in row order."""
    found = sorted(path for path in shards_root.glob("shard-*") if path.is_dir())
    if not found:
        raise ValueError(f"{shards_root} holds no shard-NNNNN directories")
    return found


def load_shards(shards_root: Path) -> list[LoadedIndex]:
    """Every shard, verified like any index, and checked to belong to one build."""
    shards = [load_index(path) for path in shard_dirs(shards_root)]
    first = shards[0].manifest
    for shard in shards[1:]:
        if shard.manifest.model != first.model or shard.keep != first.keep:
            raise ValueError(f"{shard.path.name} was built with another model or --keep")
    return shards


def merge_shards(shards: list[LoadedIndex]) -> tuple[np.ndarray, list[str], list[str]]:
    """Rows of the shards, in shard order: (vectors N x keep, ids, content hashes)."""
    vectors = np.concatenate([shard.vectors for shard in shards])
    ids = [item for shard in shards for item in shard.ids]
    hashes = [digest for shard in shards for digest in shard.hashes]
    return vectors, ids, hashes


def split_index(index: LoadedIndex, shards_root: Path, count: int) -> list[Path]:
    """Write `index` as `count` shards of near-equal size (contiguous rows) into `shards_root`."""
    if not 1 <= count <= len(index.ids):
        raise ValueError(f"--shards must be between 1 and {len(index.ids)}, got {count}")
    if shards_root.exists() and any(shards_root.iterdir()):
        raise ValueError(f"{shards_root} is not empty; give a new folder for the shards")
    bounds = np.linspace(0, len(index.ids), count + 1).round().astype(int)
    written = []
    for shard, (start, stop) in enumerate(itertools.pairwise(bounds)):
        # Each shard gets its own checksums, and 4-bit codes as the index's build chose them.
        manifest = dataclasses.replace(
            index.manifest,
            count=int(stop - start),
            build=dataclasses.replace(index.manifest.build, shard=shard, shards=count),
        )
        out = shards_root / SHARD_NAME.format(shard)
        write_index(
            out,
            vectors=index.vectors[start:stop],
            ids=index.ids[start:stop],
            hashes=index.hashes[start:stop],
            manifest=manifest,
            model_dir=index.model_dir,
            four_bit=index.manifest.build.four_bit or "auto",
        )
        written.append(out)
    return written
