"""`python -m service.control health|reload`: talk to the service running on this machine.

Run inside a container: `health` is the image's health check, `reload` makes one replica load
its index again after a rebuild (each replica behind a load balancer needs its own). Both read
the port and admin key from the same settings as the service and use only the standard library.
"""

import argparse
import sys
import urllib.error
import urllib.request

from service.settings import Settings


def request(path: str, *, method: str = "GET", headers: dict[str, str] | None = None) -> int:
    """Exit status for one request to the local service: 0 if it answered 200."""
    url = f"http://127.0.0.1:{Settings().port}{path}"
    call = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(call, timeout=60) as response:
            print(response.read().decode())
            return 0
    except urllib.error.HTTPError as error:
        print(f"error: {method} {url}: {error.code} {error.read().decode()}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as error:
        print(f"error: {method} {url}: {error}", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service.control", description=__doc__)
    parser.add_argument("action", choices=["health", "reload"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.action == "health":
        return request("/health")
    admin_key = Settings().admin_key
    if admin_key is None:
        print("error: reload needs TRICL_ADMIN_KEY, as the service does", file=sys.stderr)
        return 2
    return request("/admin/reload", method="POST", headers={"X-Admin-Key": admin_key})


if __name__ == "__main__":
    sys.exit(main())
