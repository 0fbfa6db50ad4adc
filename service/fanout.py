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
from fastapi import FastAPI, File, Header, HTTPException, Query, UploadFile
from fastapi.responses import JSONResponse

MAX_UPLOAD_BYTES = 10 * 1024 * 1024


def merge_answers(answers: list[dict], top_k: int) -> list[dict]:
    """The `top_k` best results of several shards' answers, ranked again from 1."""
    results = [result for answer in answers for result in answer["results"]]
    results.sort(key=lambda result: -result["score"])
    return [{**result, "rank": rank} for rank, result in enumerate(results[:top_k], start=1)]


def create_fanout_app(shards: list[str], *, timeout: float = 30.0) -> FastAPI:
    """The fan-out API over the services at `shards` (base URLs)."""
    if not shards:
        raise ValueError("give at least one --shard URL")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            app.state.client = client
            yield

    app = FastAPI(title="triCL image retrieval: fan-out over shards", lifespan=lifespan)

    async def ask_all(method: str, path: str, **request) -> list[httpx.Response]:
        client: httpx.AsyncClient = app.state.client
        try:
            return await asyncio.gather(
                *(client.request(method, f"{shard}{path}", **request) for shard in shards)
            )
        except httpx.HTTPError as error:
            raise HTTPException(502, f"a shard did not answer: {error!r}") from None

    @app.post("/search")
    async def search(
        file: Annotated[UploadFile | None, File(description="the query image")] = None,
        k_features: Annotated[int | None, Query(ge=1)] = None,
        top_k: Annotated[int, Query(ge=1)] = 10,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> dict:
        """POST /search of the service, answered over every shard (the API key passed on)."""
        if file is None:
            raise HTTPException(
                422, "missing form field 'file': send the query image as multipart/form-data"
            )
        data = await file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"the upload is larger than {MAX_UPLOAD_BYTES:,} bytes")
        params = {"top_k": top_k} | ({"k_features": k_features} if k_features else {})
        upload = {"file": (file.filename or "query", data, file.content_type)}
        headers = {"X-API-Key": x_api_key} if x_api_key else {}
        responses = await ask_all("POST", "/search", params=params, files=upload, headers=headers)
        for response in responses:  # a bad query is bad on every shard: pass its reason on
            if response.status_code != 200:
                status = response.status_code if response.status_code < 500 else 502
                return JSONResponse(response.json(), status_code=status)
        answers = [response.json() for response in responses]
        return {
            "k_features": answers[0]["k_features"],
            "top_k": top_k,
            "exact": all(answer["exact"] for answer in answers),
            "shards": len(answers),
            "results": merge_answers(answers, top_k),
        }

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service.fanout", description=__doc__)
    parser.add_argument(
        "--shard", action="append", required=True, help="base URL of a shard's service"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a shard")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    shards = [url.rstrip("/") for url in args.shard]
    uvicorn.run(
        create_fanout_app(shards, timeout=args.timeout),
        host=args.host,
        port=args.port,
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
