"""GET /health and GET /info: is the service up, and what does it serve."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.deps import StateDep

router = APIRouter(tags=["status"])


@router.get("/health")
def health(state: StateDep) -> JSONResponse:
    """200 once every part that answers searches is up (a service accepts no request before
    its index is loaded; a cluster checks its deployments' replicas), else 503."""
    up, body = state.searcher.health()
    return JSONResponse(body, status_code=200 if up else 503)


@router.get("/info")
def info(state: StateDep) -> dict:
    """The model, dimensions, gallery size, ordered importance and search structures."""
    embedder = state.embedder
    return {
        **state.searcher.describe(),
        "embedding": {"max_batch": embedder.max_batch},
    }
