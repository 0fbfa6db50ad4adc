"""Dependencies routes ask for: the app's settings, the state loaded for them, and a search's
checked plan."""

from functools import lru_cache
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from search.plan import SearchPlan
from service.api_models import SearchParams
from service.plan import ParameterOutOfRange, plan_search
from service.settings import Settings
from service.state import ServiceState

# All are `async def` and read app.state: FastAPI runs a plain `def` dependency on its thread
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


async def search_plan(
    state: StateDep, settings: SettingsDep, params: Annotated[SearchParams, Query()]
) -> SearchPlan:
    """The search query parameters, checked into a plan; 422 with the sentence if one is out
    of range for the index or the settings."""
    try:
        return plan_search(params, state.searcher.keep, settings)
    except ParameterOutOfRange as error:
        raise HTTPException(422, str(error)) from None


PlanDep = Annotated[SearchPlan, Depends(search_plan)]
