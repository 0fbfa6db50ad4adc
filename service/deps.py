"""Dependencies routes ask for; tests override `get_settings` to point at their own index."""

from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request

from service.settings import Settings
from service.state import ServiceState


@lru_cache
def get_settings() -> Settings:
    return Settings()


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


SettingsDep = Annotated[Settings, Depends(get_settings)]
StateDep = Annotated[ServiceState, Depends(get_state)]
