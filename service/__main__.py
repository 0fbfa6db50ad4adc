"""Command line: `python -m service --index ./index [--host 127.0.0.1] [--port 8000]`."""

import argparse
import sys
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from service.process import set_up_serving_process
from service.settings import Settings
from service.workers import index_problem_checked_apart, serve_workers


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
    parser.add_argument(
        "--workers",
        type=int,
        default=defaults.workers,
        help="processes serving the port, each with its own copy of the index's float ladder",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        defaults = Settings()
    except ValidationError as error:
        for problem in error.errors():
            variable = "TRICL_" + "_".join(map(str, problem["loc"])).upper()
            print(f"error: {variable}: {problem['msg']}", file=sys.stderr)
        return 2
    args = build_parser(defaults).parse_args(argv)
    if args.workers < 1:
        print(f"error: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2
    settings = defaults.model_copy(
        update={
            "index": args.index,
            "gallery": args.gallery,
            "host": args.host,
            "port": args.port,
            "workers": args.workers,
        }
    )
    set_up_serving_process()
    if settings.workers > 1:
        problem = index_problem_checked_apart(settings)  # each worker loads the index itself
        if problem is not None:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        serve_workers(settings)
        return 0
    return serve_in_this_process(settings)


def serve_in_this_process(settings: Settings) -> int:
    # Imported here: the supervisor of several workers never needs the app or the index code.
    from service.app import create_app
    from service.state import load_state

    try:
        state = load_state(settings)
    except (ValueError, OSError) as error:
        print(f"error: cannot serve {settings.index}: {error}", file=sys.stderr)
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
