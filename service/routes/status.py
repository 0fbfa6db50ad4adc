"""GET /health and GET /info: is the service up, and what does it serve."""

from dataclasses import asdict

from fastapi import APIRouter

from service.deps import StateDep

router = APIRouter(tags=["status"])


@router.get("/health")
def health(state: StateDep) -> dict:
    """200 once the index and model are loaded (the app does not accept requests before)."""
    return {"status": "ok"}


@router.get("/info")
def info(state: StateDep) -> dict:
    """The model, dimensions, gallery size, ordered importance and search structures."""
    manifest = state.index.manifest
    structure = state.index.structure_info
    memory = state.engine.memory()
    embedder = state.embedder
    return {
        "model": asdict(manifest.model),
        "D": manifest.model.embedding_dim,
        "keep": manifest.keep,
        "count": manifest.count,
        "importance": list(manifest.importance),
        "index_version": state.index.version,
        "index_type": structure.type,
        "exact": structure.exact,
        "index": asdict(structure),
        "ladder": {
            "quantized": state.engine.quantized(),
            "note": "budgets listed here are 4-bit codes: a shortlist of this length, re-scored "
            "exactly, serves a top 10 (not guaranteed exact); every other budget is float32",
        },
        "memory": {"total_bytes": sum(held["bytes"] for held in memory), "structures": memory},
        "embedding": {"max_batch": embedder.max_batch, "max_wait_ms": embedder.max_wait * 1000},
        "metric": manifest.metric,
        "created": manifest.created,
        "skipped": len(manifest.skipped),
    }
