"""Resident memory of a search process at a large gallery, by index type and ladder.

Each configuration is loaded in a fresh child process (`python -m bench.memory --child`), which
runs searches at the small budget and at keep and then reports its resident set from
/proc/self/status: anonymous pages (what the process alone holds) and file pages (the mapped
vectors.npy and FAISS file, which the kernel can drop and re-read).
"""

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from indexer.index_dir import load_index, write_index
from indexer.manifest import Manifest
from indexer.retrieval import build_structure
from models.vectors import unit_rows
from service.engine import SearchEngine

STATUS_FIELDS = ("VmRSS", "RssAnon", "RssFile")


def write_vector_index(out: Path, vectors: np.ndarray, index_type: str, features: int) -> None:
    """An index directory over `vectors` without images: ids are row numbers, and each row's
    content hash is that of its vector's bytes."""
    # Imported here: indexer.build and models.checkpoint load torch, which the measured child
    # must not.
    from indexer.build import model_record
    from models.checkpoint import SMALL_CNN_CHECKPOINT
    from models.config import read_config

    count, keep = vectors.shape
    structure = None
    if index_type != "flat":
        structure = build_structure(unit_rows(vectors[:, :features]), index_type)
    model = model_record(SMALL_CNN_CHECKPOINT, read_config(SMALL_CNN_CHECKPOINT))
    manifest = Manifest(model=model, keep=keep, count=count, importance=(1.0,) * keep)
    write_index(
        out,
        vectors=vectors,
        ids=[f"{row}" for row in range(count)],
        hashes=[hashlib.sha256(row.tobytes()).hexdigest() for row in vectors],
        manifest=manifest,
        model_dir=SMALL_CNN_CHECKPOINT,
        structure=structure,
    )


def bench_memory(vectors: np.ndarray, queries: np.ndarray, work: Path, features: int) -> list[dict]:
    """RSS of flat and IVF-PQ indexes, each with the float and the 4-bit ladder."""
    rows = []
    for index_type in ("flat", "ivfpq"):
        out = work / f"memory-{index_type}"
        write_vector_index(out, vectors, index_type, features)
        np.save(work / "queries.npy", queries)
        for ladder in ("float", "4bit"):
            command = [sys.executable, "-m", "bench.memory", "--child", str(out)]
            command += [str(work / "queries.npy"), ladder, str(features)]
            child = subprocess.run(command, check=True, capture_output=True, text=True)
            rows.append({"index": index_type, "ladder": ladder} | json.loads(child.stdout))
    return rows


def _child(index_dir: Path, queries_file: Path, ladder: str, features: int) -> dict:
    index = load_index(index_dir)
    engine = SearchEngine(index, cache_bytes=0, ladder=ladder)
    queries = np.load(queries_file)
    for query in queries:
        engine.search(query, features, 10)
        engine.search(query, index.keep, 10)
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    mib = {name: int(status[name].split()[0]) // 1024 for name in STATUS_FIELDS}
    held = sum(row["bytes"] for row in engine.memory()) // (1 << 20)
    return {"rss_mib": mib, "structures_mib": held, "searches": 2 * len(queries)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("--child", nargs=4, metavar=("INDEX", "QUERIES", "LADDER", "FEATURES"))
    args = parser.parse_args()
    if args.child is None:
        parser.error("run through `python -m bench --parts memory`")
    index_dir, queries_file, ladder, features = args.child
    print(json.dumps(_child(Path(index_dir), Path(queries_file), ladder, int(features))))
