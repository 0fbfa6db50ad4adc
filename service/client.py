"""A client for the search service: `Client` (sync) and `AsyncClient` on httpx, typed answers.

    from service.client import Client
    with Client("http://127.0.0.1:8000") as client:
        for hit in client.search("shoe.jpg", k_features=16).results:
            print(hit.rank, hit.score, hit.id)

Or from a shell: `python -m service.client search shoe.jpg --k-features 16` prints a table
(`--json` the answer as the service sent it). Search options are the fields of `SearchParams`,
the declaration the service's routes read; answers are the models of service.api_models, the
ones the service itself answers with; an error answer raises `ServiceError` with its sentence.
Only httpx and pydantic are imported: the client runs where the service's stack is not installed.
"""

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar, get_args
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from service.api_models import (
    BatchSearchResponse,
    DuplicatesResponse,
    Neighbour,
    SearchParams,
    SearchResponse,
)

DEFAULT_URL = "http://127.0.0.1:8000"
Image = str | os.PathLike | bytes
Answer = TypeVar("Answer", bound=BaseModel)


class ServiceError(Exception):
    """The service answered with an error: its status and its one-sentence detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


def _search_query(options: dict[str, Any]) -> dict:
    """A search call's keyword options, checked as `SearchParams` (names and types; the service
    checks the ranges, which depend on its index), as the query string: only the options given,
    the service's defaults for the rest (None too)."""
    unknown = sorted(options.keys() - SearchParams.model_fields.keys())
    if unknown:
        known = ", ".join(SearchParams.model_fields)
        raise TypeError(f"unknown search option {unknown[0]!r}; the options are {known}")
    given = {name: value for name, value in options.items() if value is not None}
    return SearchParams(**given).model_dump(exclude_unset=True)


def _file(image: Image, field: str = "file") -> tuple[str, tuple[str, bytes]]:
    if isinstance(image, bytes):
        return field, ("query", image)
    path = Path(image)
    return field, (path.name, path.read_bytes())


def _parsed(response: httpx.Response, model: type[Answer] | None) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json()["detail"]
        except (ValueError, KeyError, TypeError):
            detail = response.text or response.reason_phrase
        raise ServiceError(response.status_code, str(detail))
    if model is None:
        return response.json()
    return model.model_validate_json(response.content)


class _Requests:
    """What each call sends, shared by the sync and the async client."""

    def search(self, image: Image, options: dict[str, Any]) -> dict:
        return {
            "method": "POST",
            "url": "/search",
            "params": _search_query(options),
            "files": [_file(image)],
        }

    def batch(self, images: Iterable[Image], options: dict[str, Any]) -> dict:
        files = [_file(image, "files") for image in images]
        return {
            "method": "POST",
            "url": "/search/batch",
            "params": _search_query(options),
            "files": files,
        }

    def vector(self, vector: Sequence[float], options: dict[str, Any]) -> dict:
        return {
            "method": "POST",
            "url": "/search/vector",
            "params": _search_query(options),
            "json": {"vector": [float(value) for value in vector]},
        }

    def similar(self, item_id: str, options: dict[str, Any]) -> dict:
        path = f"/items/{quote(item_id, safe='/')}/similar"  # ids may hold spaces, ? or #
        return {"method": "GET", "url": path, "params": _search_query(options)}

    def duplicates(self, threshold: float | None, k_features: int | None) -> dict:
        params = {"threshold": threshold, "k_features": k_features}
        params = {name: value for name, value in params.items() if value is not None}
        return {"method": "GET", "url": "/duplicates", "params": params}


_REQUESTS = _Requests()


class Client:
    """Blocking client; use as a context manager, or call close()."""

    def __init__(self, url: str = DEFAULT_URL, api_key: str | None = None, timeout=30.0):
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=url, headers=headers, timeout=timeout)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def search(self, image: Image, **options: Any) -> SearchResponse:
        """Neighbours of an image (a path or its bytes) at a feature budget; the options are
        the fields of `SearchParams` (k_features=16, top_k=5, under="shoes/", ...)."""
        request = _REQUESTS.search(image, options)
        return _parsed(self._http.request(**request), SearchResponse)

    def batch(self, images: Iterable[Image], **options: Any) -> BatchSearchResponse:
        """Several images in one request; one entry per image, in order (results or error)."""
        request = _REQUESTS.batch(images, options)
        return _parsed(self._http.request(**request), BatchSearchResponse)

    def vector(self, vector: Sequence[float], **options: Any) -> SearchResponse:
        """Neighbours of an embedding in importance order (at least k_features long)."""
        request = _REQUESTS.vector(vector, options)
        return _parsed(self._http.request(**request), SearchResponse)

    def similar(self, item_id: str, **options: Any) -> SearchResponse:
        """Neighbours of a gallery item, by its id."""
        request = _REQUESTS.similar(item_id, options)
        return _parsed(self._http.request(**request), SearchResponse)

    def duplicates(
        self, *, threshold: float | None = None, k_features: int | None = None
    ) -> DuplicatesResponse:
        """The gallery's groups of near-duplicate images (the service's defaults for None)."""
        request = _REQUESTS.duplicates(threshold, k_features)
        return _parsed(self._http.request(**request), DuplicatesResponse)

    def info(self) -> dict:
        return _parsed(self._http.get("/info"), None)


class AsyncClient:
    """The same calls for asyncio; use with `async with`, or await aclose()."""

    def __init__(self, url: str = DEFAULT_URL, api_key: str | None = None, timeout=30.0):
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def search(self, image: Image, **options: Any) -> SearchResponse:
        """As Client.search."""
        request = _REQUESTS.search(image, options)
        return _parsed(await self._http.request(**request), SearchResponse)

    async def batch(self, images: Iterable[Image], **options: Any) -> BatchSearchResponse:
        """As Client.batch."""
        request = _REQUESTS.batch(images, options)
        return _parsed(await self._http.request(**request), BatchSearchResponse)

    async def vector(self, vector: Sequence[float], **options: Any) -> SearchResponse:
        """As Client.vector."""
        request = _REQUESTS.vector(vector, options)
        return _parsed(await self._http.request(**request), SearchResponse)

    async def similar(self, item_id: str, **options: Any) -> SearchResponse:
        """As Client.similar."""
        request = _REQUESTS.similar(item_id, options)
        return _parsed(await self._http.request(**request), SearchResponse)

    async def duplicates(
        self, *, threshold: float | None = None, k_features: int | None = None
    ) -> DuplicatesResponse:
        """As Client.duplicates."""
        request = _REQUESTS.duplicates(threshold, k_features)
        return _parsed(await self._http.request(**request), DuplicatesResponse)

    async def info(self) -> dict:
        return _parsed(await self._http.get("/info"), None)


def _table(results: list[Neighbour]) -> str:
    lines = [f"{'rank':>4}  {'score':>8}  id"]
    lines += [f"{hit.rank:>4}  {hit.score:>8.4f}  {hit.id}" for hit in results]
    if not results:
        lines.append("  (no results)")
    return "\n".join(lines)


def search_options() -> argparse.ArgumentParser:
    """A parent parser with each field of `SearchParams` as an option (--k-features, ...),
    its description as help; an option not given is not sent (the service's default)."""
    options = argparse.ArgumentParser(add_help=False)
    for name, field in SearchParams.model_fields.items():
        types = get_args(field.annotation) or (field.annotation,)
        kind = next(t for t in types if t is not type(None))  # int | None -> int
        default = "" if field.default is None else f" (default: {field.default})"
        flag = "--" + name.replace("_", "-")
        options.add_argument(flag, type=kind, help=f"{field.description}{default}")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service.client", description=__doc__)
    parser.add_argument(
        "--url", default=os.environ.get("TRICL_URL", DEFAULT_URL),
        help=f"the service's address (default: TRICL_URL, else {DEFAULT_URL})",
    )  # fmt: skip
    parser.add_argument(
        "--api-key", default=os.environ.get("TRICL_API_KEY"),
        help="sent as X-API-Key (default: TRICL_API_KEY)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    commands = parser.add_subparsers(dest="command", required=True)
    options = search_options()
    search = commands.add_parser("search", parents=[options], help="search by an image file")
    search.add_argument("image", type=Path)
    batch = commands.add_parser("batch", parents=[options], help="search by several images")
    batch.add_argument("images", type=Path, nargs="+")
    similar = commands.add_parser("similar", parents=[options], help="search by a gallery item")
    similar.add_argument("item_id")
    duplicates = commands.add_parser("duplicates", help="groups of near-duplicate images")
    duplicates.add_argument("--threshold", type=float)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    params = {}
    if args.command != "duplicates":
        params = {name: getattr(args, name) for name in SearchParams.model_fields}
    try:
        with Client(args.url, api_key=args.api_key) as client:
            if args.command == "search":
                answer = client.search(args.image, **params)
            elif args.command == "similar":
                answer = client.similar(args.item_id, **params)
            elif args.command == "batch":
                answer = client.batch(args.images, **params)
            else:
                answer = client.duplicates(threshold=args.threshold)
    except ServiceError as error:
        print(f"error: the service answered {error.status}: {error.detail}", file=sys.stderr)
        return 1
    except (OSError, httpx.HTTPError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(answer.model_dump_json(indent=1))
    elif isinstance(answer, SearchResponse):
        print(_table(answer.results))
    elif isinstance(answer, BatchSearchResponse):
        for entry in answer.results:
            print(f"== {entry.file}")
            if entry.error is not None:
                print(f"  error {entry.error.status}: {entry.error.detail}")
            else:
                print(_table(entry.results or []))
    else:
        for group in answer.groups:
            print("  ".join(f"{item.id} ({item.score:.3f})" for item in group.items))
        print(f"{len(answer.groups)} groups at cosine >= {answer.threshold}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
