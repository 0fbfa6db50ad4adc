"""Command line: `python -m service --index ./index [--host 127.0.0.1] [--port 8000]`."""

import argparse
import contextlib
import ctypes
import logging
import sys
from pathlib import Path

import uvicorn

from indexer.index_dir import MANIFEST_FILE
from service.app import create_app
from service.settings import Settings
from service.state import load_state


def tune_malloc() -> None:
    """Keep resident memory flat under sustained load (glibc only; a no-op elsewhere).

    Two arenas instead of one per request thread, and a fixed mmap threshold so the large,
    short-lived activation buffers of batched forward passes go back to the system instead of
    fragmenting the heap. Measured at 32 clients: without either, 363 -> 494 MiB over 35 s; with
    both, 306 -> 324 MiB over the 60 s after warm-up, growing less each 15 s.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_ARENA_MAX, 2)
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3


def build_parser(defaults: Settings) -> argparse.ArgumentParser:
    """The command line, its defaults from the environment; the deployment files use it."""
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    parser.add_argument("--index", type=Path, default=defaults.index, help="index directory")
    parser.add_argument(
        "--gallery",
        type=Path,
        default=defaults.gallery,
        help="gallery folder (default: as indexed)",
    )
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    return parser


def main(argv: list[str] | None = None) -> int:
    defaults = Settings()
    args = build_parser(defaults).parse_args(argv)
    if not (args.index / MANIFEST_FILE).is_file():
        print(
            f"error: {args.index} is not an index directory; "
            "build one with python -m indexer build",
            file=sys.stderr,
        )
        return 2
    settings = defaults.model_copy(
        update={"index": args.index, "gallery": args.gallery, "host": args.host, "port": args.port}
    )
    tune_malloc()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader logs each CPU probe
    try:
        state = load_state(settings)
    except (ValueError, OSError) as error:
        print(f"error: cannot serve {args.index}: {error}", file=sys.stderr)
        return 2
    # No access log: /metrics counts every request, and a line per request costs throughput.
    uvicorn.run(
        create_app(settings, state),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
