"""The published /openapi.json, with each maximum that depends on the loaded index (keep) or
the settings (max_top_k, max_shortlist, max_batch_files) filled in.

Parameters name such a limit in their schema (`bounded`, service.api_models); FastAPI builds
the schema once, and each request for it gets a copy with the numbers of the index served at
that moment, so a reload to an index with another keep publishes the new bound.
"""

import copy
from typing import Any

from fastapi import FastAPI

from service.api_models import MAXIMUM_LIMIT
from service.settings import Settings


def publish_limits(app: FastAPI) -> None:
    """Serve the app's schema with its limits filled in (this process's and a cluster's)."""
    generate = app.openapi

    def published() -> dict[str, Any]:
        service = getattr(app.state, "service", None)  # None before the lifespan loads it
        keep = service.searcher.keep if service is not None else None
        return with_limits(generate(), limits(app.state.settings, keep))

    app.openapi = published


def limits(settings: Settings, keep: int | None) -> dict[str, int]:
    """The value of each limit a maximum may name (keep only once an index is loaded)."""
    known = {
        "max_top_k": settings.max_top_k,
        "max_shortlist": settings.max_shortlist,
        "max_batch_files": settings.max_batch_files,
    }
    return known if keep is None else known | {"keep": keep}


def with_limits(schema: dict[str, Any], values: dict[str, int]) -> dict[str, Any]:
    """A copy of `schema` in which each named limit is a number's `maximum` or an array's
    `maxItems` (a limit not known yet is left to the description)."""
    published = copy.deepcopy(schema)
    for node in _nodes(published):
        name = node.pop(MAXIMUM_LIMIT, None)
        if name in values:
            node["maxItems" if node.get("type") == "array" else "maximum"] = values[name]
    return published


def _nodes(value: Any):
    """Every dict inside `value`, itself included."""
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _nodes(child)
    elif isinstance(value, list):
        for child in value:
            yield from _nodes(child)
