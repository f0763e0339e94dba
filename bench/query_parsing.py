"""CPU to read a list route's query string into its model: FastAPI's `Annotated[Model, Query()]`
against `FromQuery(Model)` (web/query.py), which the routes use.

No database, no server: each way reads the same query strings into the inbox's and the chat's
query models, through a real Starlette request, and this prints µs per read.

    .venv/bin/python bench/query_parsing.py
"""

# No `from __future__ import annotations`: FastAPI must see the route's annotation itself, with
# the model in it, not a string naming a local variable.
import argparse
import asyncio
import time
from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request

from counseldesk.support.schemas import InboxQuery, MessagesQuery
from counseldesk.web.query import FromQuery

CASES: list[tuple[type[BaseModel], bytes]] = [
    (InboxQuery, b""),
    (InboxQuery, b"q=Moses%20Kiptoo"),
    (InboxQuery, b"status=open&priority=urgent&page=3&limit=50"),
    (MessagesQuery, b"before=90412231"),
]


def _fastapi_reader(model: type[BaseModel]) -> Any:
    """The query fields of a route declared the FastAPI way, as FastAPI reads them."""
    app = FastAPI()

    @app.get("/list")
    async def listing(query: Annotated[model, Query()]) -> None:  # type: ignore[valid-type]
        return None

    [route] = [r for r in app.router.routes if isinstance(r, APIRoute)]
    return route.dependant.query_params


def _request(query: bytes) -> Request:
    return Request({"type": "http", "query_string": query, "headers": []})


async def measure(reads: int) -> None:
    for model, query in CASES:
        fields = _fastapi_reader(model)
        ours = FromQuery(model)
        timings = {}
        for name in ("FastAPI Query()", "FromQuery"):
            best = float("inf")
            for _ in range(5):
                start = time.process_time()
                for _ in range(reads):
                    request = _request(query)
                    if name == "FromQuery":
                        await ours(request)
                    else:
                        _, errors = request_params_to_args(fields, request.query_params)
                        assert not errors, errors
                best = min(best, (time.process_time() - start) / reads * 1e6)
            timings[name] = best
        shown = ", ".join(f"{name} {us:.1f} µs" for name, us in timings.items())
        print(f"{model.__name__:14s} ?{query.decode():45s} {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=5_000, help="per round (best of five)")
    asyncio.run(measure(parser.parse_args().reads))


if __name__ == "__main__":
    main()
