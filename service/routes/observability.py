"""GET /metrics: Prometheus text format."""

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

router = APIRouter(tags=["status"])


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Request counts by status, search latency by budget, embedding batch sizes, index size."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
