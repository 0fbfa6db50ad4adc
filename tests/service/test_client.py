"""The project's client, and a client generated from the published schema by a standard
generator, both against a real service: the schema is proven true for others."""

import asyncio
import importlib
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from service.client import AsyncClient, Client, ServiceError

pytestmark = pytest.mark.slow  # a real service on a loopback port


def test_client_searches_in_every_way_with_typed_answers(live_server, gallery):
    query = gallery / "plain/item-04.png"
    with Client(live_server) as client:
        by_path = client.search(query, k_features=16, top_k=5)
        by_bytes = client.search(query.read_bytes(), k_features=16, top_k=5)
        assert by_path.results == by_bytes.results
        assert by_path.results[0].id == "plain/item-04.png" and by_path.k_features == 16
        similar = client.similar("odd/name with spaces é.png", k_features=8, under="plain")
        assert similar.under == "plain/" and all(r.id.startswith("plain/") for r in similar.results)
        floor = client.search(query, k_features=16, min_score=0.99)
        assert all(r.score >= 0.99 for r in floor.results) and len(floor.results) < 10
        batch = client.batch([query, gallery / "odd/bitmap.bmp", b"junk"], top_k=3)
        assert [entry.file for entry in batch.results] == ["item-04.png", "bitmap.bmp", "query"]
        assert batch.results[0].results == client.search(query, top_k=3).results
        assert batch.results[2].error.status == 400
        info = client.info()
        stored = client.similar("plain/item-04.png", top_k=5)
        assert stored.results[0].id == "plain/item-04.png" and info["keep"] == 32
        groups = client.duplicates(threshold=0.9)
        assert groups.verify_features == 32 and all(len(g.items) >= 2 for g in groups.groups)
        reranked = client.search(query, k_features=8, rerank_features=32)
        assert reranked.rerank_features == 32 and reranked.shortlist == 100
        with pytest.raises(ServiceError) as refused:
            client.search(query, k_features=99)
        assert refused.value.status == 422
        assert refused.value.detail == "k_features must be an integer from 1 to 32, got 99"
        with pytest.raises(TypeError, match="unknown search option 'k_feature'"):
            client.search(query, k_feature=8)


def test_async_client_gives_the_same_answers(live_server, gallery):
    query = gallery / "plain/item-04.png"

    async def both():
        async with AsyncClient(live_server) as client:
            return await asyncio.gather(
                client.search(query, k_features=8, top_k=4),
                client.similar("plain/item-04.png", k_features=8, top_k=4),
            )

    by_image, by_item = asyncio.run(both())
    with Client(live_server) as client:
        assert by_image == client.search(query, k_features=8, top_k=4)
    assert by_item.results[0].id == "plain/item-04.png"


def test_client_command_prints_a_table_or_json(live_server, gallery):
    command = [sys.executable, "-m", "service.client", "--url", live_server]
    query = str(gallery / "plain/item-04.png")
    table = subprocess.run(
        [*command, "search", query, "--k-features", "16", "--top-k", "3"],
        capture_output=True,
        text=True,
    )
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["rank", "score", "id"] and len(lines) == 4
    assert lines[1].split()[0] == "1" and lines[1].endswith("plain/item-04.png")
    reranked = ["--k-features", "8", "--rerank-features", "16", "--shortlist", "20"]
    as_json = subprocess.run(
        [*command, "--json", "search", query, "--top-k", "2", *reranked],
        capture_output=True,
        text=True,
    )
    answer = json.loads(as_json.stdout)
    assert answer["results"][0]["id"] == "plain/item-04.png" and len(answer["results"]) == 2
    assert (answer["k_features"], answer["rerank_features"], answer["shortlist"]) == (8, 16, 20)
    refused = subprocess.run(
        [*command, "search", query, "--k-features", "0"], capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: the service answered 422: k_features must be an integer from 1 to 32, got 0"
    )
    missing = subprocess.run([*command, "search", "/no/such.png"], capture_output=True, text=True)
    assert missing.returncode == 2 and "No such file" in missing.stderr


def generated_client(url: str, out: Path):
    """openapi-python-client's package for the service's /openapi.json, imported."""
    (out / "openapi.json").write_text(httpx.get(f"{url}/openapi.json", timeout=30).text)
    (out / "config.yml").write_text("post_hooks: []\n")
    generator = Path(sys.executable).with_name("openapi-python-client")
    arguments = ["generate", "--path", "openapi.json", "--output-path", "generated"]
    arguments += ["--meta", "none", "--config", "config.yml"]
    done = subprocess.run(
        [str(generator), *arguments],
        cwd=out,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout, done.stdout  # every endpoint and model was understood
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("generated")
    finally:
        sys.path.remove(str(out))


def test_a_client_generated_from_the_published_schema_works(live_server, gallery, tmp_path):
    package = generated_client(live_server, tmp_path)
    api = importlib.import_module("generated.api.search.search_search_post")
    batch_api = importlib.import_module("generated.api.search.search_batch_search_batch_post")
    item_api = importlib.import_module("generated.api.gallery.item_items_item_id_get")
    models = importlib.import_module("generated.models")
    types = importlib.import_module("generated.types")
    client = package.Client(base_url=live_server)
    query = gallery / "plain/item-04.png"

    def upload(path: Path):
        return types.File(payload=path.open("rb"), file_name=path.name, mime_type="image/png")

    found = api.sync(client=client, body=models.BodySearchSearchPost(file=upload(query)), top_k=3)
    assert isinstance(found, models.SearchResponse)
    assert found.results[0].id == "plain/item-04.png" and len(found.results) == 3

    bad = api.sync_detailed(
        client=client, body=models.BodySearchSearchPost(file=upload(query)), k_features=0
    )
    assert bad.status_code == 422 and isinstance(bad.parsed, models.ErrorDetail)
    assert bad.parsed.detail == "k_features must be an integer from 1 to 32, got 0"

    files = [upload(query), upload(gallery / "odd/bitmap.bmp")]
    batch = batch_api.sync(client=client, body=models.BodySearchBatchSearchBatchPost(files=files))
    assert isinstance(batch, models.BatchSearchResponse)
    assert [entry.results[0].id for entry in batch.results] == [
        "plain/item-04.png", "odd/bitmap.bmp",
    ]  # fmt: skip

    item = item_api.sync_detailed("plain/item-04.png", client=client)
    assert item.status_code == 200 and item.content == query.read_bytes()
    unknown = item_api.sync_detailed("plain/nope.png", client=client)
    assert unknown.status_code == 404 and isinstance(unknown.parsed, models.ErrorDetail)
    assert unknown.parsed.detail == "no gallery item with id 'plain/nope.png'"
