"""The cluster's HTTP API: the service's own routes, over shard deployments.

`ClusterSearcher` is a `Searcher` (service.searcher) that sends each query's vector to every
shard deployment through Serve handles and merges their answers by score, so every route
(searches, gallery items, duplicates, feature examples, the page), parameter, response, error
and the API key are those of `python -m service`. A query is embedded once, here, with the
service's own embedder, not once per shard. A shard whose replica dies mid-request is
asked again (Serve routes the retry to a live replica, or to the one it starts in its place);
if none answers in time the caller gets 503 with a sentence, never a 500.
"""

import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import ray
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.handle import DeploymentHandle, DeploymentResponse

from models.config import read_config
from search.index_dir import load_index_model
from search.manifest import Manifest
from search.plan import FolderEmpty, Found, Hits, ItemNotFound, SearchPlan
from service.app import configure_app, include_routes
from service.duplicates import DuplicateGroupsCache
from service.embedding import QueryEmbedder
from service.gallery import SharedGalleryFiles
from service.metrics import ServiceMetrics
from service.searcher import merge_extremes, merge_found, merge_hits
from service.settings import Settings
from service.state import query_embedder, warm_up_model

RETRIES = 3  # a dead replica's calls fail at once; Serve has a live one (or a new one) soon
RETRY_PAUSE_S = 0.5
CALL_TIMEOUT_S = 30.0


class ShardUnavailable(RuntimeError):
    """A shard did not answer after retries; the message is meant for the caller."""


def _answer(method, args: tuple, what: str, sent: DeploymentResponse | None = None):
    """The result of `method.remote(*args)` (or of `sent`, a request already made), asked
    again while a dead replica is replaced; ShardUnavailable once the tries are spent."""
    for attempt in range(RETRIES):
        response = sent if attempt == 0 and sent is not None else method.remote(*args)
        try:
            return response.result(timeout_s=CALL_TIMEOUT_S)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
            time.sleep(RETRY_PAUSE_S * (attempt + 1))
        except TimeoutError:
            break
    raise ShardUnavailable(f"{what} did not answer (its replicas are restarting); retry shortly")


class ClusterSearcher:
    """Every shard deployment, searched at once and merged (`described`: each shard's
    manifest; `generation`: the Serve application holding them)."""

    def __init__(
        self, shards: list[DeploymentHandle], described: list[Manifest], generation: str
    ) -> None:
        self.shards = shards
        self.described = described
        self.generation = generation
        self.keep = described[0].keep

    def search(self, queries: np.ndarray, plan: SearchPlan) -> Found:
        if plan.rerank_features is None:
            return self._found_everywhere(queries, plan)
        # Re-ranking as one index does it: one shortlist over all shards at k_features, then
        # each shard scores the candidates it holds at rerank_features.
        first = replace(plan, top_k=plan.shortlist, rerank_features=None, min_score=None)
        shortlisted = self._found_everywhere(queries, first)
        candidates = [[item for item, _ in hits] for hits in shortlisted.hits]
        rescored = self._everywhere("rescore", queries, candidates, plan.rerank_features)
        hits = merge_hits(rescored, plan.top_k, plan.min_score)
        return Found(hits, False, shortlisted.version)

    def _found_everywhere(self, queries: np.ndarray, plan: SearchPlan) -> Found:
        found = [
            answer for answer in self._everywhere("search", queries, plan) if answer is not None
        ]
        if not found:
            raise FolderEmpty(f"no gallery item has an id under {plan.under!r}")
        return merge_found(found, plan.top_k)

    def vector_of(self, item_id: str) -> np.ndarray:
        for vector in self._everywhere("vector_of", item_id):
            if vector is not None:
                return vector
        raise ItemNotFound(f"no gallery item with id {item_id!r}")

    def holds(self, item_id: str) -> bool:
        return any(self._everywhere("holds", item_id))

    def feature_extremes(self, feature: int, n: int) -> tuple[Hits, Hits]:
        return merge_extremes(self._everywhere("feature_extremes", feature, n), n)

    def gallery_vectors(self) -> tuple[np.ndarray, list[str]]:
        """Every shard's rows in shard order: the merged index's rows, in its order."""
        answers = self._everywhere("gallery_vectors")
        return np.concatenate([vectors for vectors, _ in answers]), [
            item for _, ids in answers for item in ids
        ]

    def describe(self) -> dict:
        """The model, keep, the gallery's size over all shards, whether every budget is exact,
        and each shard's size, version and 4-bit shortlists."""
        first = self.described[0]
        coded = any(shard.four_bit for shard in self.described)
        return {
            "model": asdict(first.model),
            "D": first.model.embedding_dim,
            "keep": first.keep,
            "count": sum(shard.count for shard in self.described),
            "importance": list(first.importance),
            "metric": first.metric,
            "index_version": ",".join(shard.version for shard in self.described),
            "index_type": "flat + 4-bit shortlists" if coded else "flat",
            "exact": not coded,
            "generation": self.generation,
            "shards": [
                {
                    "count": shard.count,
                    "version": shard.version,
                    "four_bit": {budget.features: budget.shortlist for budget in shard.four_bit},
                }
                for shard in self.described
            ],
        }

    def memory(self) -> list[dict]:
        return []  # the shards hold the structures, each in its own replicas

    def health(self) -> tuple[bool, dict]:
        """Up while every deployment of the ingress and its generation has a running replica;
        each deployment's replicas by state either way."""
        applications = (serve.get_replica_context().app_name, self.generation)
        status = serve.status()
        deployments = {
            name: {
                "status": str(getattr(state.status, "value", state.status)),
                "replicas": {
                    str(getattr(replica, "value", replica)): count
                    for replica, count in state.replica_states.items()
                },
            }
            for application in applications
            for name, state in sorted(status.applications[application].deployments.items())
            if name != "Generation"
        }
        serving = all(state["replicas"].get("RUNNING", 0) > 0 for state in deployments.values())
        return serving, {
            "status": "ok" if serving else "unavailable",
            "generation": self.generation,
            "deployments": deployments,
        }

    def reload_refusal(self) -> str | None:
        """A cluster does not reload in place: its shards are immutable folders, and a new
        index is rolled out as a new generation of them (so no answer mixes two)."""
        return (
            "a cluster serves a new index by rolling it out, shard by shard: split or build it "
            "into a new folder and run python -m service.cluster --shards NEW_FOLDER --address "
            f"ADDRESS (still serving {self.generation})"
        )

    def _everywhere(self, method: str, *args) -> list:
        """Each shard's answer to one call, asked of all at once."""
        calls = [getattr(shard, method) for shard in self.shards]
        sent = [call.remote(*args) for call in calls]
        return [
            _answer(call, args, f"shard {number}", sent=response)
            for number, (call, response) in enumerate(zip(calls, sent, strict=True))
        ]


class ClusterState:
    """What the routes read from app.state.service, over every shard (`described`: each
    shard's manifest). Gallery files are read from the gallery folder where the ingress
    runs (TRICL_GALLERY, or the folder the index was built from), as the service reads them."""

    def __init__(
        self,
        searcher: ClusterSearcher,
        embedder: QueryEmbedder,
        described: list[Manifest],
        gallery: Path | None,
    ) -> None:
        self.searcher = searcher
        self.embedder = embedder
        self.version = ",".join(shard.version for shard in described)
        self.importance = described[0].importance
        indexed = described[0].gallery
        root = gallery or (Path(indexed) if indexed else None)
        self.gallery = SharedGalleryFiles(root, searcher.holds)
        self.duplicates = DuplicateGroupsCache(searcher.gallery_vectors)


def create_cluster_app(
    settings: Settings,
    shards: list[DeploymentHandle],
    model_index: Path,
    described: list[Manifest],
    generation: str,
) -> FastAPI:
    """The ingress app: the service's routes and metrics, cluster health and info
    (`model_index`: a shard directory, for its model; `described`: each shard's manifest;
    `generation`: the application holding them)."""
    app = FastAPI(
        title="triCL image retrieval",
        summary="Nearest gallery images at any feature budget, served by a Ray Serve cluster.",
        version="0.1.0",
    )
    metrics = ServiceMetrics()
    configure_app(app, settings, metrics)
    searcher = ClusterSearcher(shards, described, generation)
    index = load_index_model(model_index)  # its shards verify and load the rest
    embedder = query_embedder(
        index, read_config(index.model_dir), settings, metrics.embed_batch.observe
    )
    warm_up_model(embedder)
    app.state.service = ClusterState(searcher, embedder, described, settings.gallery)
    app.add_exception_handler(ShardUnavailable, _unavailable)
    include_routes(app)
    return app


async def _unavailable(request, error: ShardUnavailable) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": "1"})
