"""Command line: `python -m indexer build|update|split|duplicates|demo-gallery ...`."""

import argparse
import json
import logging
import sys
from pathlib import Path

from indexer.lock import writer_lock

# Each command imports the modules it runs (torch, FAISS, ONNX Runtime behind them) in the
# function that runs it: --help answers at once, and a second writer of an index is refused
# before any of them has loaded.

DEFAULT_SHARD_SIZE = 1_000_000
# Defaults of the modules the commands run, repeated here because importing those loads torch
# or FAISS; tests/test_cli.py keeps them equal to BuildConfig's, FOUR_BIT_MODES and
# indexer.duplicates'.
BUILD_DEFAULTS = {
    "keep": 64,
    "batch_size": 256,
    "device": "auto",
    "workers": 2,
    "four_bit": "auto",
}
FOUR_BIT_MODES = ("auto", "always", "never")
DUPLICATE_THRESHOLD = 0.96
DUPLICATE_FEATURES = 16


def _flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str, text: str) -> None:
    """An option that is off unless given; `text` is its help."""
    parser.add_argument(name, action="store_true", help=text)


def build_parser() -> argparse.ArgumentParser:
    """The command line; the deployment files are checked against it."""
    parser = argparse.ArgumentParser(prog="python -m indexer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    # Options both builds and updates take; defaults are BuildConfig's.
    embedding = argparse.ArgumentParser(add_help=False)
    embedding.add_argument(
        "--gallery", type=Path, required=True, help="folder of images (recursive)"
    )
    embedding.add_argument("--batch-size", type=int, default=BUILD_DEFAULTS["batch_size"])
    embedding.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default=BUILD_DEFAULTS["device"]
    )
    embedding.add_argument(
        "--workers",
        type=int,
        default=BUILD_DEFAULTS["workers"],
        help="processes that decode images",
    )
    _flag(
        embedding,
        "--wait",
        "if another build or update is writing --out, wait for it instead of stopping",
    )

    build = commands.add_parser(
        "build", parents=[embedding], help="embed a gallery and write an index directory"
    )
    build.add_argument(
        "--model", type=Path, help="checkpoint directory (default: the project's default model)"
    )
    build.add_argument(
        "--keep",
        type=int,
        default=BUILD_DEFAULTS["keep"],
        help="importance-ordered dimensions to keep",
    )
    build.add_argument("--out", type=Path, default=Path("index"), help="index directory to write")
    build.add_argument(
        "--four-bit",
        choices=FOUR_BIT_MODES,
        default=BUILD_DEFAULTS["four_bit"],
        help="4-bit codes that make budgets from 16 up fast (a shortlist re-scored exactly): "
        "auto above 100,000 images",
    )
    build.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this process and its decoding workers; ray: a Ray cluster (the ray extra)",
    )
    ray = build.add_argument_group("distributed build (--engine ray)")
    ray.add_argument("--address", help="cluster to join (auto, ray://host:10001); default local")
    ray.add_argument(
        "--actors", type=int, help="model actors (default one per GPU, else one per CPU)"
    )
    ray.add_argument(
        "--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help="files per index shard"
    )
    _flag(ray, "--keep-shards", "keep the shard directories in OUT.shards/ after merging them")
    _flag(ray, "--no-merge", "only write the shards (OUT.shards/), to be served as shards")

    update = commands.add_parser(
        "update",
        parents=[embedding],
        help="re-embed only new or changed gallery files, drop deleted ones",
    )
    update.add_argument("--out", type=Path, default=Path("index"), help="index directory to update")

    split = commands.add_parser(
        "split", help="cut an index into shards, each a complete index (one per machine)"
    )
    split.add_argument("--index", type=Path, default=Path("index"), help="index directory")
    split.add_argument("--shards", type=int, required=True, help="number of shards")
    split.add_argument("--out", type=Path, required=True, help="new folder for the shards")

    duplicates = commands.add_parser(
        "duplicates", help="find groups of near-duplicate images across the whole gallery"
    )
    duplicates.add_argument("--index", type=Path, default=Path("index"), help="index directory")
    duplicates.add_argument(
        "--threshold",
        type=float,
        default=DUPLICATE_THRESHOLD,
        help="cosine at the verify budget from which two images count as duplicates",
    )
    duplicates.add_argument(
        "--k-features",
        type=int,
        default=DUPLICATE_FEATURES,
        help="budget that finds candidates (a short prefix: fast)",
    )
    duplicates.add_argument(
        "--verify-features",
        default="keep",
        help="budget every pair is confirmed at: an integer, or keep (all indexed dimensions)",
    )
    duplicates.add_argument("--out", type=Path, help="write the groups as JSON here")

    demo = commands.add_parser("demo-gallery", help="write Fashion-MNIST images as PNG files")
    demo.add_argument("--out", type=Path, default=Path("imgs"))
    demo.add_argument("--split", choices=["train", "test"], default="test")
    demo.add_argument("--count", type=int, default=2000)
    return parser


def _refuse_ray_options(args: argparse.Namespace) -> None:
    given = [
        flag
        for flag, value in (
            ("--address", args.address),
            ("--actors", args.actors),
            ("--keep-shards", args.keep_shards),
            ("--no-merge", args.no_merge),
        )
        if value
    ]
    if given or args.shard_size != DEFAULT_SHARD_SIZE:
        flags = ", ".join(given or ["--shard-size"])
        raise ValueError(f"only --engine ray takes {flags}")


def _build_with_ray(config, args: argparse.Namespace):
    """The build on Ray Data and Ray actors; a BuildSummary like the local build's."""
    try:
        import ray  # noqa: F401  (only to say clearly when it is missing)
    except ImportError:
        raise ValueError("--engine ray needs Ray: pip install 'tricl-retrieval[ray]'") from None
    from indexer.ray_engine import build_index_ray

    return build_index_ray(
        config,
        address=args.address,
        actors=args.actors,
        shard_size=args.shard_size,
        keep_shards=args.keep_shards,
        merge=not args.no_merge,
    )


def _build(args: argparse.Namespace) -> None:
    from indexer.build import BuildConfig, build_index
    from models.checkpoint import DEFAULT_CHECKPOINT
    from models.options import from_arguments

    config = from_arguments(BuildConfig, args, model=args.model or DEFAULT_CHECKPOINT)
    if args.engine == "ray":
        summary = _build_with_ray(config, args)
        written = summary.structure if args.no_merge else f"{args.out} ({summary.structure})"
    else:
        _refuse_ray_options(args)
        summary = build_index(config)
        written = f"{args.out} ({summary.structure})"
    print(
        f"indexed {summary.count} images, skipped {summary.skipped}, "
        f"in {summary.seconds:.1f} s ({summary.images_per_second:.0f} images/s) "
        f"-> {written}"
    )


def _update(args: argparse.Namespace) -> None:
    from indexer.build import build_index, update_config

    config, previous = update_config(
        args.out,
        args.gallery,
        batch_size=args.batch_size,
        device=args.device,
        workers=args.workers,
    )
    summary = build_index(config, previous=previous)
    print(
        f"updated {args.out}: {summary.count} images ({summary.reused} unchanged, "
        f"{summary.embedded} embedded, {summary.removed} removed, "
        f"{summary.skipped} skipped) in {summary.seconds:.1f} s"
    )


def _duplicates(args: argparse.Namespace) -> None:
    from indexer.duplicates import find_duplicates, groups_document
    from search.core import SearchIndex

    index = SearchIndex.open(args.index)
    verify = args.verify_features
    if verify != "keep" and not verify.isdigit():
        raise ValueError(f"--verify-features must be an integer or keep, got {verify!r}")
    found = find_duplicates(
        index.vectors,
        args.threshold,
        k_features=args.k_features,
        verify_features=index.keep if verify == "keep" else int(verify),
        progress=True,
    )
    document = groups_document(found, index.ids)
    items = sum(len(group["items"]) for group in document["groups"])
    print(
        f"{len(found.groups)} groups of near-duplicates ({items} images) at cosine >= "
        f"{found.threshold} on {found.verify_features} features; {found.candidate_pairs} "
        f"candidate pairs from {found.k_features} features (floor {found.candidate_threshold:.3f})"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
        return
    for group in document["groups"][:20]:
        print("  " + "  ".join(f"{item['id']} ({item['score']:.3f})" for item in group["items"]))
    if len(document["groups"]) > 20:
        print(f"  ... {len(document['groups']) - 20} more; --out FILE writes them all")


def _split(args: argparse.Namespace) -> None:
    from indexer.shards import split_index
    from search.index_dir import load_index

    written = split_index(load_index(args.index), args.out, args.shards)
    print(f"wrote {len(written)} shards of {args.index} to {args.out}")


def _demo_gallery(args: argparse.Namespace) -> None:
    from indexer.demo import write_demo_gallery

    written = write_demo_gallery(args.out, split=args.split, count=args.count)
    print(f"wrote {written} Fashion-MNIST images to {args.out}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader logs each CPU probe
    try:
        if args.command in ("build", "update"):
            # The lock before anything heavy loads: a second writer is refused at once.
            with writer_lock(args.out, wait=args.wait):
                if args.command == "build":
                    _build(args)
                else:
                    _update(args)
        elif args.command == "duplicates":
            _duplicates(args)
        elif args.command == "split":
            _split(args)
        else:
            _demo_gallery(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. a read-only or full disk where the lock file goes
        where = f": {error.filename}" if error.filename else ""
        print(f"error: {error.strerror or error}{where}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
