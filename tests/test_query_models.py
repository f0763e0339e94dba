"""Query-string models read by `FromQuery` (web/query.py): what they accept, how they refuse,
and that every route reading one still describes its parameters in the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from counseldesk.runtime import Runtime
from counseldesk.web.app import create_app
from counseldesk.web.query import FromQuery, QueryModelRoute, parameters


class _Listing(BaseModel):
    page: int = Field(default=1, ge=1, description="1 for the first page.")
    limit: int = Field(default=20, ge=1, le=100)
    from_: str | None = Field(default=None, alias="from")


def _listing_app() -> FastAPI:
    router = APIRouter(route_class=QueryModelRoute)

    @router.get("/items/{kind}")
    async def items(
        kind: str, query: Annotated[_Listing, Depends(FromQuery(_Listing))]
    ) -> dict[str, Any]:
        return query.model_dump(by_alias=True)

    app = FastAPI()
    app.include_router(router)
    return app


async def _get(app: FastAPI, query: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(f"/items/books{query}")


async def test_values_are_read_by_their_alias_with_defaults_for_the_rest() -> None:
    response = await _get(_listing_app(), "?from=2026-11-01&page=3")
    assert response.status_code == 200
    assert response.json() == {"page": 3, "limit": 20, "from": "2026-11-01"}


async def test_a_repeated_parameter_counts_with_its_last_value_and_unknown_ones_are_ignored() -> (
    None
):
    response = await _get(_listing_app(), "?page=2&page=5&colour=blue")
    assert response.status_code == 200
    assert response.json()["page"] == 5


async def test_every_invalid_parameter_is_reported_where_it_is() -> None:
    response = await _get(_listing_app(), "?page=0&limit=abc")
    assert response.status_code == 422
    located = {tuple(error["loc"]): error["msg"] for error in response.json()["detail"]}
    assert set(located) == {("query", "page"), ("query", "limit")}
    assert "greater than or equal to 1" in located[("query", "page")]
    assert "valid integer" in located[("query", "limit")]


async def test_the_parameters_are_described_by_name_schema_and_description() -> None:
    schema = _listing_app().openapi()
    described = {p["name"]: p for p in schema["paths"]["/items/{kind}"]["get"]["parameters"]}
    # FastAPI's own (the path's) and the query model's, described by the route class.
    assert set(described) == {"kind", "page", "limit", "from"}
    assert described["kind"]["in"] == "path"
    query = [p for name, p in described.items() if name != "kind"]
    assert all(p["in"] == "query" and p["required"] is False for p in query)
    assert described["page"]["description"] == "1 for the first page."
    assert described["page"]["schema"]["minimum"] == 1
    assert described["limit"]["schema"]["maximum"] == 100


def test_enums_are_written_out_in_the_parameter_schema() -> None:
    from counseldesk.support.schemas import InboxQuery

    [status] = [p for p in parameters(InboxQuery) if p["name"] == "status"]
    choices = [option.get("enum") for option in status["schema"]["anyOf"]]
    assert ["open", "in_progress", "replied", "resolved", "closed"] in choices
    assert "$ref" not in str(parameters(InboxQuery))


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """The app's routes, those of included routers too (FastAPI keeps them in their router)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif (included := getattr(route, "original_router", None)) is not None:
            found += _api_routes(included.routes)
    return found


def test_every_route_reading_a_query_model_describes_its_parameters(runtime: Runtime) -> None:
    app = create_app(runtime)
    operations = app.openapi()["paths"]
    checked = 0
    for route in _api_routes(app.routes):
        for dependency in route.dependant.dependencies:
            if not isinstance(dependency.call, FromQuery):
                continue
            model = dependency.call.model
            for method in route.methods or ():
                described = operations[route.path_format][method.lower()].get("parameters", [])
                in_query = {p["name"] for p in described if p["in"] == "query"}
                expected = {field.alias or name for name, field in model.model_fields.items()}
                assert expected <= in_query, (route.path, method, expected - in_query)
            checked += 1
    # The inbox, the chat, and the appointment lists and calendar.
    assert checked >= 8
