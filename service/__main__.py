"""Command line: `python -m service --index ./index [--host 127.0.0.1] [--port 8000]`."""

import argparse
import logging
import sys
from pathlib import Path

import uvicorn

from indexer.index_dir import MANIFEST_FILE
from service.app import create_app
from service.settings import Settings


def main(argv: list[str] | None = None) -> int:
    defaults = Settings()
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
    args = parser.parse_args(argv)
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
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader logs each CPU probe
    # No access log: /metrics counts every request, and a line per request costs throughput.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
