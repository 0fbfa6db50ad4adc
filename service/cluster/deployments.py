"""The Ray Serve deployments: a searcher per index shard, the query model, and the ingress.

Each shard deployment holds one shard's ladder (its N replicas each hold a copy) and answers
`find` with that shard's exact best rows; the embedding deployment runs the index's ONNX model
on queries batched across requests; the ingress serves the service's own search routes, with
a searcher that sends each query's vector to every shard and merges their answers by score.
"""

import asyncio
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from ray import serve
from ray.serve.handle import DeploymentHandle

from indexer.index_dir import load_index
from indexer.shards import load_shards, shard_dirs
from models.config import EncoderConfig, read_config
from service.engine import SearchEngine, ladder_budgets
from service.gallery import GalleryFiles
from service.plan import SearchPlan
from service.searcher import FolderEmpty, Found, LocalSearcher
from service.settings import Settings
from service.state import load_query_encoder

# Replicas ask for no whole CPU: on small nodes the shards, the model and the ingress share
# the cores, as the processes of one `python -m service` share them.
NO_CPU_RESERVED = {"num_cpus": 0}


@serve.deployment(ray_actor_options=NO_CPU_RESERVED, health_check_period_s=2)
class ShardSearch:
    """One shard of the gallery: its search engine and its ids."""

    def __init__(self, index_dir: str, settings: Settings) -> None:
        index = load_index(Path(index_dir))
        engine = SearchEngine(
            index, cache_bytes=settings.budget_cache_bytes, ladder=settings.ladder
        )
        for budget in ladder_budgets(engine.keep):  # touch the ladder before traffic arrives
            engine.search(np.ones(engine.keep, np.float32), budget, 10)
        gallery = GalleryFiles(None, index.ids)
        self.searcher = LocalSearcher(index, engine, gallery)
        self.index = index

    def find(self, queries: np.ndarray, plan: SearchPlan) -> Found | None:
        """This shard's best items for each query; None when no item of it is under the
        folder asked for (another shard may have some)."""
        try:
            return self.searcher.find(queries, plan)
        except FolderEmpty:
            return None

    def rescore(
        self, queries: np.ndarray, candidates: list[list[str]], features: int
    ) -> list[list[tuple[str, float]]]:
        return self.searcher.rescore(queries, candidates, features)

    def vector_of(self, item_id: str) -> np.ndarray | None:
        row = self.searcher.gallery.rows.get(item_id)
        return None if row is None else np.asarray(self.index.vectors[row])

    def describe(self) -> dict:
        manifest = self.index.manifest
        return {
            "count": len(self.index.ids),
            "version": self.index.version,
            "keep": self.index.keep,
            "model": manifest["model"],
            "importance": manifest["importance"],
            "metric": manifest["metric"],
        }


@serve.deployment(ray_actor_options=NO_CPU_RESERVED, health_check_period_s=2)
class QueryEmbedding:
    """The index's encoder (ONNX Runtime), fed by requests from every ingress replica."""

    def __init__(self, index_dir: str) -> None:
        index = load_index(Path(index_dir))
        self.model_config = read_config(index.model_dir)
        self.encoder = load_query_encoder(index, self.model_config)
        self.keep = index.keep

    def config(self) -> dict:
        return self.model_config["encoder"]

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.002)
    async def embed(self, pixels: list[np.ndarray]) -> list[np.ndarray]:
        """Queries arriving together go through the model in one pass."""
        return list(self.encoder.embed(np.stack(pixels), keep=self.keep))


@serve.deployment(ray_actor_options=NO_CPU_RESERVED, health_check_period_s=2)
@serve.ingress()
class ClusterIngress:
    """The HTTP API of `python -m service`, over the shard deployments."""

    def __init__(
        self, shards: list[DeploymentHandle], embedding: DeploymentHandle, settings: Settings
    ) -> None:
        self.shards = shards
        self.embedding = embedding
        self.settings = settings

    async def __serve_build_asgi_app__(self) -> FastAPI:
        from service.cluster.ingress import create_cluster_app

        config = EncoderConfig.from_dict(await self.embedding.config.remote())
        described = await asyncio.gather(*(shard.describe.remote() for shard in self.shards))
        return create_cluster_app(self.settings, self.shards, self.embedding, config, described)


def cluster_application(
    shards_root: Path, settings: Settings, *, replicas: int = 1
) -> serve.Application:
    """The Serve application for the shards below `shards_root`: one deployment per shard
    with `replicas` replicas each, one embedding deployment, one ingress."""
    load_shards(shards_root)  # every shard verified, one model and keep: fail here, not later
    directories = shard_dirs(shards_root)
    shards = [
        ShardSearch.options(name=f"shard-{number}", num_replicas=replicas).bind(
            str(directory.resolve()), settings
        )
        for number, directory in enumerate(directories)
    ]
    embedding = QueryEmbedding.options(num_replicas=replicas).bind(str(directories[0].resolve()))
    return ClusterIngress.options(num_replicas=replicas).bind(shards, embedding, settings)
