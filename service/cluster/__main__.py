"""`python -m service.cluster --shards DIR [--address auto|ray://HOST:10001] [--replicas N]
[--host 127.0.0.1] [--port 8000]`: serve index shards on Ray Serve with the HTTP API of
`python -m service`.

One deployment per shard (each replica holds that shard's ladder), one embedding deployment,
one ingress; Serve restarts failed replicas and spreads them over the cluster's nodes. Without
--address it starts Ray on this machine. Settings (API key, limits, ladder) come from the same
TRICL_ variables as the service's.
"""

import argparse
import signal
import sys
import threading
from pathlib import Path

from service.settings import Settings

APP_NAME = "tricl"


def build_parser(defaults: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service.cluster", description=__doc__)
    parser.add_argument(
        "--shards", type=Path, required=True, help="folder of shard-NNNNN index directories"
    )
    parser.add_argument(
        "--address", help="Ray cluster to join: auto, or ray://HOST:10001 (default: start one)"
    )
    parser.add_argument("--replicas", type=int, default=1, help="replicas of each deployment")
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    return parser


def main(argv: list[str] | None = None) -> int:
    defaults = Settings()
    args = build_parser(defaults).parse_args(argv)
    if args.replicas < 1:
        print(f"error: --replicas must be at least 1, got {args.replicas}", file=sys.stderr)
        return 2
    try:
        import ray
        from ray import serve

        from service.cluster.deployments import cluster_application
    except ImportError:
        print(
            "error: the cluster needs Ray Serve: pip install 'tricl-retrieval[ray]'",
            file=sys.stderr,
        )
        return 2
    settings = defaults.model_copy(update={"host": args.host, "port": args.port})
    try:
        application = cluster_application(args.shards, settings, replicas=args.replicas)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    ray.init(address=args.address, log_to_driver=False)
    # One HTTP proxy, on the head node, at --host:--port: the address clients are given.
    serve.start(proxy_location="HeadOnly", http_options={"host": args.host, "port": args.port})
    serve.run(application, name=APP_NAME, route_prefix="/")
    print(f"serving {args.shards} on Ray Serve at http://{args.host}:{args.port}", flush=True)
    stop = threading.Event()
    for name in (signal.SIGINT, signal.SIGTERM):
        signal.signal(name, lambda *_: stop.set())
    stop.wait()
    serve.delete(APP_NAME)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
