"""Query-string models: validated straight from the request, described as parameters.

FastAPI reads a model declared as `Annotated[Model, Query()]` field by field, inspecting each
field's annotation again on every request: 92-104 µs for the inbox's eight fields, against
10-13 µs for the same model validated from the query string's values, request included
(`bench/query_parsing.py`; docs/benchmarks.md, session 10). `FromQuery(Model)` validates the model
in one call, with the same answer for bad input (422, each error located at
`["query", <parameter>]`). Because FastAPI no longer sees the fields, the routers' route
class, `QueryModelRoute`, describes them to the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class FromQuery(Generic[Model]):
    """A dependency: `model` validated from the request's query string. A repeated parameter
    counts with its last value, as with FastAPI's own reading; unknown ones are ignored."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model  # how QueryModelRoute finds the parameters to describe

    async def __call__(self, request: Request) -> Model:  # async: no thread hop (web/deps.py)
        try:
            return self.model.model_validate(dict(request.query_params))
        except ValidationError as error:
            raise RequestValidationError(
                [
                    {**detail, "loc": ("query", *detail["loc"])}
                    for detail in error.errors(include_url=False)
                ]
            ) from None


class QueryModelRoute(APIRoute):
    """A route that describes the query models its dependencies read with `FromQuery`, as
    FastAPI would have described them itself (the operation's `parameters`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        described = [
            parameter
            for dependency in self.dependant.dependencies
            if isinstance(dependency.call, FromQuery)
            for parameter in parameters(dependency.call.model)
        ]
        if described:
            extra = dict(self.openapi_extra or {})
            extra["parameters"] = [*extra.get("parameters", []), *described]
            self.openapi_extra = extra


def parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """One query parameter per field of `model`, by the name a client sends (its alias), with
    its schema, default and description."""
    schema = model.model_json_schema(by_alias=True)
    definitions = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    described = []
    for name, field in schema["properties"].items():
        field = _inlined(field, definitions)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": field,
        }
        if "description" in field:
            parameter["description"] = field["description"]
        described.append(parameter)
    return described


def _inlined(schema: Any, definitions: dict[str, Any]) -> Any:
    """`schema` with references to the model's own definitions (its enums) replaced by them:
    the parameters are added to the operation as they are, outside any `components`."""
    if isinstance(schema, list):
        return [_inlined(item, definitions) for item in schema]
    if not isinstance(schema, dict):
        return schema
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/$defs/"):
        rest = {key: value for key, value in schema.items() if key != "$ref"}
        target = definitions[reference.removeprefix("#/$defs/")]
        return {**_inlined(target, definitions), **_inlined(rest, definitions)}
    return {key: _inlined(value, definitions) for key, value in schema.items()}
