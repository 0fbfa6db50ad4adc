"""POST /admin/reload: load the index directory again and swap it in atomically."""

from fastapi import APIRouter, HTTPException, Request

from service.api_models import error_responses
from service.deps import SettingsDep
from service.reload import SiblingReloads, one_reload_at_a_time, reload_in_place
from service.security import AdminKey

router = APIRouter(
    tags=["admin"], dependencies=[AdminKey], responses=error_responses(401, 403, 409, 422)
)
RELOAD_WAIT_S = 600  # longest the answer waits for the other workers to load the index


@router.post("/admin/reload")
async def reload(request: Request, settings: SettingsDep) -> dict:
    """Read the index at the configured path (rebuilt or updated since) and serve it.

    The new index and model are loaded and checked while the old ones keep answering; then a
    single reference swap makes new requests use the new ones. A request that started before
    the swap finishes on the old index, so every response comes wholly from one version. If
    the new index cannot be loaded, nothing changes and the reason is returned (409).

    With several worker processes every worker does the same, and the answer comes once all
    serve the new version (`workers` says how many do; see service/reload.py).
    """
    app = request.app
    refusal = app.state.service.searcher.reload_refusal()
    if refusal is not None:
        raise HTTPException(409, refusal)
    siblings: SiblingReloads | None = getattr(app.state, "sibling_reloads", None)
    async with one_reload_at_a_time:
        try:
            previous, state = await reload_in_place(app)
        except (ValueError, OSError) as error:
            reason = str(error).replace(str(settings.index), "the index directory")
            raise HTTPException(
                409, f"the index could not be loaded, still serving the previous one: {reason}"
            ) from None
        generation = siblings.announce() if siblings else None
    workers, serving = 1, 1
    if siblings is not None:
        workers = siblings.workers
        serving = await siblings.wait_for_all(generation, RELOAD_WAIT_S)
    return {
        "status": "reloaded" if serving == workers else "partly reloaded",
        "previous_version": previous.version,
        "version": state.version,
        "count": state.searcher.count,
        "workers": serving,
    }
