"""Dependencies routes ask for: the app's settings and the state loaded for them."""

from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request

from service.settings import Settings
from service.state import ServiceState

# Both are `async def` and read app.state: FastAPI runs a plain `def` dependency on its thread
# pool (a hop there and back per request), and any entry in app.dependency_overrides makes it
# re-analyse every dependency's signature on every request (15% of a profile's samples under
# load).


@lru_cache
def load_settings() -> Settings:
    """Settings from flags' environment (TRICL_*), read once per process."""
    return Settings()


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_state(request: Request) -> ServiceState:
    return request.app.state.service


SettingsDep = Annotated[Settings, Depends(get_settings)]
StateDep = Annotated[ServiceState, Depends(get_state)]
