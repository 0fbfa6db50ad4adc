"""`python -m service.cluster --shards DIR [--address auto|ray://HOST:10001] [--replicas N]
[--host 127.0.0.1] [--port 8000]`: serve index shards on Ray Serve with the HTTP API of
`python -m service`.

One deployment per shard (each replica opens that shard with the search core), one ingress
that embeds the queries; Serve restarts failed replicas and spreads them over the cluster's
nodes. Without --address it starts Ray on this machine and serves until interrupted. Run again
with new shards against a cluster already serving, it rolls them out and returns: the new
generation's shards come up one at a time beside the old ones, new ingress replicas take over,
and the old generation is deleted once its last ingress replica has finished; no answer mixes
the two.
Settings (API key, limits, budget cache) come from the same TRICL_ variables as the service's.
"""

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from service.settings import Settings

APP_NAME = "tricl"
START_TRIES = 5  # minutes for Serve's HTTP proxy to start
# On a busy machine Serve's HTTP proxy can take longer than Serve's 5 s to report ready; Serve
# then kills and restarts it in a loop and the deployment fails. Seen with the test suite beside
# a CPU hog: a minute sufficed with one test process, not with two (the proxy missed 60 s and
# the command exited), so it gets five.
SERVE_PATIENCE = {
    "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "300",
    "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "30",
}
# Ray starts its worker processes (every Serve replica and the HTTP proxy) at nice 15, below
# everything else on the machine. Beside a normal-priority CPU hog on 2 cores a lone query then
# took 513-686 ms (p50) against 71-79 ms at nice 0, in the same runs. Serving replicas compete
# as `python -m service` does. Read by the raylet when it starts: nodes started with `ray start`
# need it in their environment.
SERVING_PRIORITY = {"RAY_worker_niceness": "0"}


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

        from service.cluster.deployments import generation_name
    except ImportError:
        print(
            "error: the cluster needs Ray Serve: pip install 'tricl-retrieval[ray]'",
            file=sys.stderr,
        )
        return 2
    settings = defaults.model_copy(update={"host": args.host, "port": args.port})
    try:
        generation = generation_name(args.shards)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, value in (SERVE_PATIENCE | SERVING_PRIORITY).items():  # for a Ray started here
        os.environ.setdefault(name, value)
    patience = {name: os.environ[name] for name in SERVE_PATIENCE}
    ray.init(address=args.address, log_to_driver=False, runtime_env={"env_vars": patience})
    # One HTTP proxy, on the head node, at --host:--port: the address clients are given.
    start_serve(args.host, args.port)
    running = serve.status().applications
    rollout = APP_NAME in running
    started = time.monotonic()
    deploy(args.shards, generation, settings, args.replicas, rollout=rollout)
    if rollout:
        retire_others(generation, args.replicas)
        print(f"rolled out {generation} in {time.monotonic() - started:.0f} s", flush=True)
        return 0
    print(f"serving {args.shards} on Ray Serve at http://{args.host}:{args.port}", flush=True)
    stop = threading.Event()
    for name in (signal.SIGINT, signal.SIGTERM):
        signal.signal(name, lambda *_: stop.set())
    stop.wait()
    serve.delete(APP_NAME)
    serve.delete(generation)
    ray.shutdown()
    return 0


def start_serve(host: str, port: int) -> None:
    """Serve's controller and HTTP proxy. serve.start gives the proxy 60 s (a fixed limit) and
    then raises, while the proxy goes on starting: beside a CPU hog and a second test process
    it needed longer. Asking again joins the controller already there."""
    from ray import serve

    for attempt in range(1, START_TRIES + 1):
        try:
            serve.start(proxy_location="HeadOnly", http_options={"host": host, "port": port})
            return
        except TimeoutError:
            if attempt == START_TRIES:
                raise
            print("Serve's HTTP proxy is not ready after a minute; waiting", file=sys.stderr)


def deploy(
    shards: Path, generation: str, settings: Settings, replicas: int, *, rollout: bool
) -> None:
    """The generation's deployments, then the ingress on them. In a rollout the shards come up
    one at a time (each waits until it is healthy), so the old generation and the new one never
    need every new shard's memory at once beside it; a first start brings them all up together."""
    from ray import serve

    from indexer.shards import shard_dirs  # FAISS: imported here, --help does not wait for it
    from service.cluster.deployments import generation_application, ingress_application

    count = len(shard_dirs(shards))
    for upto in range(1, count + 1) if rollout else (count,):
        application = generation_application(shards, settings, replicas=replicas, shards=upto)
        serve.run(application, name=generation, route_prefix=None)
    serve.run(ingress_application(generation, settings, replicas=replicas), name=APP_NAME)


def retire_others(generation: str, replicas: int) -> None:
    """Once no ingress replica of an older generation is left (they finish the requests they
    hold first), delete the older generations' deployments."""
    from ray import serve

    while True:
        ingress = serve.status().applications[APP_NAME].deployments["ClusterIngress"]
        states = {str(getattr(key, "value", key)): n for key, n in ingress.replica_states.items()}
        if states == {"RUNNING": replicas}:
            break
        time.sleep(0.5)
    for name in serve.status().applications:
        if name.startswith(APP_NAME + "-") and name != generation:
            serve.delete(name)


if __name__ == "__main__":
    sys.exit(main())
