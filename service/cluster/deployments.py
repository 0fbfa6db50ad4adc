"""The Ray Serve deployments: a searcher per index shard, and the ingress.

Each shard deployment holds one shard's search core (its N replicas each hold a copy) and
answers `search` with that shard's best rows. The ingress serves the service's own routes: it
embeds each query itself, with the index's ONNX model as the service does, and sends the
vector to every shard, merging their answers by score. A separate model deployment would cost
a hop between processes (about 5 ms of latency and as much CPU on a 2-core node) for a forward
pass of a quarter of a millisecond.
"""

import asyncio
import hashlib
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from ray import serve
from ray.serve.handle import DeploymentHandle

from indexer.shards import load_shards, shard_dirs
from search.core import SearchIndex
from search.manifest import Manifest
from search.plan import FolderEmpty, Found, Hits, ItemNotFound, SearchPlan
from service.settings import Settings

# Replicas ask for no whole CPU: on small nodes the shards and the ingress (with the model) share
# the cores, as the processes of one `python -m service` share them.
NO_CPU_RESERVED = {"num_cpus": 0}


@serve.deployment(ray_actor_options=NO_CPU_RESERVED, health_check_period_s=2)
class ShardSearch:
    """One shard of the gallery, opened by the search core."""

    def __init__(self, index_dir: str, settings: Settings) -> None:
        self.searcher = SearchIndex.open(Path(index_dir), cache_bytes=settings.budget_cache_bytes)
        self.searcher.warm_up(np.ones(self.searcher.keep, np.float32))

    def search(self, queries: np.ndarray, plan: SearchPlan) -> Found | None:
        """This shard's best items for each query; None when no item of it is under the
        folder asked for (another shard may have some)."""
        try:
            return self.searcher.search(queries, plan)
        except FolderEmpty:
            return None

    def rescore(
        self, queries: np.ndarray, candidates: list[list[str]], features: int
    ) -> list[list[tuple[str, float]]]:
        return self.searcher.rescore_candidates(queries, candidates, features)

    def vector_of(self, item_id: str) -> np.ndarray | None:
        """The item's stored vector; None when it is on another shard."""
        try:
            return self.searcher.vector_of(item_id)
        except ItemNotFound:
            return None

    def holds(self, item_id: str) -> bool:
        return self.searcher.holds(item_id)

    def feature_extremes(self, feature: int, n: int) -> tuple[Hits, Hits]:
        return self.searcher.feature_extremes(feature, n)

    def gallery_vectors(self) -> tuple[np.ndarray, list[str]]:
        vectors, ids = self.searcher.gallery_vectors()
        return np.asarray(vectors), ids

    def manifest(self) -> Manifest:
        """This shard's manifest (its `version` names the shard's build)."""
        return self.searcher.index.manifest


@serve.deployment(ray_actor_options=NO_CPU_RESERVED)
class Generation:
    """The root of one generation's application: it names its shards and where their model
    is, so an ingress can find them by the application's name alone."""

    def __init__(self, shards: list[DeploymentHandle], model_index: str) -> None:
        self.shard_names = [shard.deployment_name for shard in shards]
        self.model_index_dir = model_index

    def shards(self) -> list[str]:
        return self.shard_names

    def model_index(self) -> str:
        """A shard directory (each holds the same model), read by the ingress."""
        return self.model_index_dir


@serve.deployment(ray_actor_options=NO_CPU_RESERVED, health_check_period_s=2)
@serve.ingress()
class ClusterIngress:
    """The HTTP API of `python -m service`, over one generation's deployments.

    An ingress replica serves one generation for its whole life: a rollout starts new
    replicas for the new generation and retires the old ones, so an answer never mixes two."""

    def __init__(self, generation: str, settings: Settings) -> None:
        self.generation = generation
        self.settings = settings

    async def __serve_build_asgi_app__(self) -> FastAPI:
        from service.cluster.ingress import create_cluster_app

        root = serve.get_app_handle(self.generation)
        names = await root.shards.remote()
        model_index = Path(await root.model_index.remote())
        shards = [serve.get_deployment_handle(name, self.generation) for name in names]
        described = await asyncio.gather(*(shard.manifest.remote() for shard in shards))
        return create_cluster_app(self.settings, shards, model_index, described, self.generation)


def generation_name(shards_root: Path) -> str:
    """`tricl-<hash of the shards' versions>`: the application holding this set of shards."""
    versions = ",".join(shard.version for shard in load_shards(shards_root))
    return "tricl-" + hashlib.sha256(versions.encode()).hexdigest()[:10]


def generation_application(
    shards_root: Path, settings: Settings, *, replicas: int = 1, shards: int | None = None
) -> serve.Application:
    """One generation: a deployment per shard below `shards_root` (the first `shards` of
    them) with `replicas` replicas each."""
    load_shards(shards_root)  # every shard verified, one model and keep: fail here, not later
    directories = shard_dirs(shards_root)[:shards]
    bound = [
        ShardSearch.options(name=f"shard-{number}", num_replicas=replicas).bind(
            str(directory.resolve()), settings
        )
        for number, directory in enumerate(directories)
    ]
    return Generation.bind(bound, str(directories[0].resolve()))


def ingress_application(
    generation: str, settings: Settings, *, replicas: int = 1
) -> serve.Application:
    return ClusterIngress.options(num_replicas=replicas).bind(generation, settings)
