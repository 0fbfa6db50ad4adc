"""`python -m service.fanout --shard URL --shard URL ...`: one search API over index shards.

Each shard is served by its own `python -m service --index SHARD` (on its own machine, for a
gallery larger than one machine holds). The fan-out sends every query to all of them at once
and merges their top results by score: since each shard ranks its own rows exactly, the merged
top_k is the top_k of the whole gallery, as the merged index would answer it (ties aside).
Every shard embeds the query itself; the answer comes when the slowest shard has answered.
"""

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
import uvicorn
from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from service.api_models import ShardedSearchResponse
from service.deps import load_settings
from service.settings import Settings
from service.upload import UploadDep


def merge_answers(answers: list[dict], top_k: int) -> list[dict]:
    """The `top_k` best results of several shards' answers, ranked again from 1."""
    results = [result for answer in answers for result in answer["results"]]
    results.sort(key=lambda result: -result["score"])
    return [{**result, "rank": rank} for rank, result in enumerate(results[:top_k], start=1)]


def create_fanout_app(
    shards: list[str], *, timeout: float = 30.0, settings: Settings | None = None
) -> FastAPI:
    """The fan-out API over the services at `shards` (base URLs); upload limit from `settings`
    (default: flags and environment, as the service reads them)."""
    if not shards:
        raise ValueError("give at least one --shard URL")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            app.state.client = client
            yield

    app = FastAPI(title="triCL image retrieval: fan-out over shards", lifespan=lifespan)
    app.state.settings = settings or load_settings()

    async def ask_all(method: str, path: str, **request) -> list[httpx.Response]:
        client: httpx.AsyncClient = app.state.client
        try:
            return await asyncio.gather(
                *(client.request(method, f"{shard}{path}", **request) for shard in shards)
            )
        except httpx.HTTPError as error:
            raise HTTPException(502, f"a shard did not answer: {error!r}") from None

    @app.post("/search", response_model=ShardedSearchResponse)
    async def search(
        request: Request,
        data: UploadDep,
        k_features: Annotated[int | None, Query(ge=1)] = None,
        top_k: Annotated[int, Query(ge=1)] = 10,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> ShardedSearchResponse | JSONResponse:
        """POST /search of the service, answered over every shard (its query parameters,
        min_score and under included, and the API key passed on)."""
        upload = {"file": ("query", data)}
        headers = {"X-API-Key": x_api_key} if x_api_key else {}
        params = dict(request.query_params)
        responses = await ask_all("POST", "/search", params=params, files=upload, headers=headers)
        answered = [response for response in responses if response.status_code == 200]
        for response in responses:  # a bad query is bad on every shard: pass its reason on
            # A folder (`under`) may live on some shards only: the others' 404 means "none here".
            if response.status_code == 404 and answered:
                continue
            if response.status_code != 200:
                status = response.status_code if response.status_code < 500 else 502
                return JSONResponse(response.json(), status_code=status)
        answers = [response.json() for response in answered]
        first = answers[0]
        return ShardedSearchResponse(
            k_features=first["k_features"],
            top_k=top_k,
            rerank_features=first["rerank_features"],
            shortlist=first["shortlist"],
            min_score=first["min_score"],
            under=first["under"],
            exact=all(answer["exact"] for answer in answers),
            index_version=",".join(answer["index_version"] for answer in answers),
            shards=len(responses),
            results=merge_answers(answers, top_k),
        )

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 once every shard is healthy; 503 naming the ones that are not."""
        client: httpx.AsyncClient = app.state.client

        async def healthy(shard: str) -> bool:
            try:
                return (await client.get(f"{shard}/health")).status_code == 200
            except httpx.HTTPError:
                return False

        answers = await asyncio.gather(*(healthy(shard) for shard in shards))
        down = [shard for shard, ok in zip(shards, answers, strict=True) if not ok]
        if down:
            return JSONResponse({"status": "unavailable", "shards_down": down}, status_code=503)
        return JSONResponse({"status": "ok", "shards": len(shards)})

    return app


def build_parser(defaults: Settings) -> argparse.ArgumentParser:
    """Host and port default to the service's settings (TRICL_HOST, TRICL_PORT)."""
    parser = argparse.ArgumentParser(prog="python -m service.fanout", description=__doc__)
    parser.add_argument(
        "--shard", action="append", required=True, help="base URL of a shard's service"
    )
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a shard")
    return parser


def main(argv: list[str] | None = None) -> int:
    defaults = Settings()
    args = build_parser(defaults).parse_args(argv)
    shards = [url.rstrip("/") for url in args.shard]
    settings = defaults.model_copy(update={"host": args.host, "port": args.port})
    uvicorn.run(
        create_fanout_app(shards, timeout=args.timeout, settings=settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
