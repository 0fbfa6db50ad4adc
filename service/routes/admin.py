"""POST /admin/reload: load the index directory again and swap it in atomically."""

import asyncio
import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from service.api_models import error_responses
from service.deps import SettingsDep
from service.security import AdminKey
from service.state import load_state

logger = logging.getLogger(__name__)
router = APIRouter(
    tags=["admin"], dependencies=[AdminKey], responses=error_responses(401, 403, 409, 422)
)
_one_reload_at_a_time = asyncio.Lock()


@router.post("/admin/reload")
async def reload(request: Request, settings: SettingsDep) -> dict:
    """Read the index at the configured path (rebuilt or updated since) and serve it.

    The new index and model are loaded and checked while the old ones keep answering; then a
    single reference swap makes new requests use the new ones. A request that started before
    the swap finishes on the old index, so every response comes wholly from one version. If
    the new index cannot be loaded, nothing changes and the reason is returned (409).
    """
    app = request.app
    async with _one_reload_at_a_time:
        previous = app.state.service
        try:
            state = await run_in_threadpool(
                load_state, settings, app.state.metrics.embed_batch.observe
            )
        except (ValueError, OSError) as error:
            reason = str(error).replace(str(settings.index), "the index directory")
            raise HTTPException(
                409, f"the index could not be loaded, still serving the previous one: {reason}"
            ) from None
        app.state.service = state
        app.state.metrics.describe_index(state.engine.count, state.engine.memory())
    logger.info("reloaded index %s -> %s", previous.index.version, state.index.version)
    return {
        "status": "reloaded",
        "previous_version": previous.index.version,
        "version": state.index.version,
        "count": state.engine.count,
    }
