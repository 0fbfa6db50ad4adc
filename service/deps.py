"""Dependencies routes ask for; `use_settings` points an app at settings of its own."""

from functools import lru_cache
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from service.settings import Settings
from service.state import ServiceState

# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency on the
# thread pool, and a hop there and back for each of them cost a lone request more than its
# search (Server-Timing "parse").


@lru_cache
def load_settings() -> Settings:
    return Settings()


async def get_settings() -> Settings:
    return load_settings()


def use_settings(app: FastAPI, settings: Settings) -> None:
    """Serve `app` with `settings` instead of the environment's (an async override, like the
    dependency it replaces, so it runs without a thread hop)."""

    async def given() -> Settings:
        return settings

    app.dependency_overrides[get_settings] = given


async def get_state(request: Request) -> ServiceState:
    return request.app.state.service


SettingsDep = Annotated[Settings, Depends(get_settings)]
StateDep = Annotated[ServiceState, Depends(get_state)]
