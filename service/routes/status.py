"""GET /health and GET /info: is the service up, and what does it serve."""

from fastapi import APIRouter

from service.deps import StateDep

router = APIRouter(tags=["status"])


@router.get("/health")
def health(state: StateDep) -> dict:
    """200 once the index and model are loaded (the app does not accept requests before)."""
    return {"status": "ok"}


@router.get("/info")
def info(state: StateDep) -> dict:
    """The model, dimensions, gallery size and ordered importance of the loaded index."""
    manifest = state.index.manifest
    return {
        "model": manifest["model"],
        "D": manifest["model"]["embedding_dim"],
        "keep": state.index.keep,
        "count": manifest["count"],
        "importance": manifest["importance"],
        "index_type": manifest["index_type"],
        "exact": True,
        "metric": manifest["metric"],
        "created": manifest["created"],
        "skipped": len(manifest["skipped"]),
    }
