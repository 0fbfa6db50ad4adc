"""API keys: optional for search, always required for admin actions."""

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException

from service.deps import SettingsDep


async def require_api_key(
    settings: SettingsDep, x_api_key: Annotated[str | None, Header()] = None
) -> None:
    """With TRICL_API_KEY set, search and gallery routes need it in the X-API-Key header."""
    expected = settings.api_key
    if expected is not None and not _same(x_api_key, expected):
        raise HTTPException(401, "missing or wrong API key: send it in the X-API-Key header")


async def require_admin_key(
    settings: SettingsDep, x_admin_key: Annotated[str | None, Header()] = None
) -> None:
    """Admin routes are off unless TRICL_ADMIN_KEY is set, and then need it in X-Admin-Key."""
    expected = settings.admin_key
    if expected is None:
        raise HTTPException(403, "admin actions are disabled: set TRICL_ADMIN_KEY to enable them")
    if not _same(x_admin_key, expected):
        raise HTTPException(401, "missing or wrong admin key: send it in the X-Admin-Key header")


def _same(given: str | None, expected: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


ApiKey = Depends(require_api_key)
AdminKey = Depends(require_admin_key)
