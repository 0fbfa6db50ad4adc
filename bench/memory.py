"""Resident memory of a search process at a large gallery, with and without 4-bit codes.

Each configuration is loaded in a fresh child process (`python -m bench.memory --child`), which
runs searches at the small budget and at keep and then reports its resident set from
/proc/self/status: anonymous pages (what the process alone holds) and file pages (the mapped
vectors.npy, which the kernel can drop and re-read).
"""

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from indexer.writing import write_index
from search.core import SearchIndex
from search.manifest import Manifest

STATUS_FIELDS = ("VmRSS", "RssAnon", "RssFile")


def write_vector_index(out: Path, vectors: np.ndarray, four_bit: str) -> None:
    """An index directory over `vectors` without images, with 4-bit codes as `four_bit` asks:
    ids are row numbers, and each row's content hash is that of its vector's bytes."""
    # Imported here: indexer.build and models.checkpoint load torch, which the measured child
    # must not.
    from indexer.build import model_record
    from models.checkpoint import SMALL_CNN_CHECKPOINT
    from models.config import read_config

    count, keep = vectors.shape
    model = model_record(SMALL_CNN_CHECKPOINT, read_config(SMALL_CNN_CHECKPOINT))
    manifest = Manifest(model=model, keep=keep, count=count, importance=(1.0,) * keep)
    write_index(
        out,
        vectors=vectors,
        ids=[f"{row}" for row in range(count)],
        hashes=[hashlib.sha256(row.tobytes()).hexdigest() for row in vectors],
        manifest=manifest,
        model_dir=SMALL_CNN_CHECKPOINT,
        four_bit=four_bit,
    )


def bench_memory(vectors: np.ndarray, queries: np.ndarray, work: Path, features: int) -> list[dict]:
    """RSS of an index served as float only and with the 4-bit codes."""
    rows = []
    np.save(work / "queries.npy", queries)
    for four_bit in ("never", "always"):
        out = work / f"memory-{four_bit}"
        write_vector_index(out, vectors, four_bit)
        command = [sys.executable, "-m", "bench.memory", "--child", str(out)]
        command += [str(work / "queries.npy"), str(features)]
        child = subprocess.run(command, check=True, capture_output=True, text=True)
        ladder = "4bit" if four_bit == "always" else "float"
        rows.append({"index": "flat", "ladder": ladder} | json.loads(child.stdout))
    return rows


def _child(index_dir: Path, queries_file: Path, features: int) -> dict:
    searcher = SearchIndex.open(index_dir, cache_bytes=0)
    searcher.warm_up(np.load(queries_file)[0])
    for query in np.load(queries_file):
        searcher.nearest(query, features, 10)
        searcher.nearest(query, searcher.keep, 10)
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    mib = {name: int(status[name].split()[0]) // 1024 for name in STATUS_FIELDS}
    held = sum(row["bytes"] for row in searcher.memory()) // (1 << 20)
    return {"rss_mib": mib, "structures_mib": held, "searches": 2 * len(np.load(queries_file))}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("--child", nargs=3, metavar=("INDEX", "QUERIES", "FEATURES"))
    args = parser.parse_args()
    if args.child is None:
        parser.error("run through `python -m bench --parts memory`")
    index_dir, queries_file, features = args.child
    print(json.dumps(_child(Path(index_dir), Path(queries_file), int(features))))
