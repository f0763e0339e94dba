"""Shapes every feature's JSON API shares: the page envelope, paging parameters, id references."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def empty_is_none(value: object) -> object:
    # `?status=&priority=` is how a form (and the seed's clients) say "no filter".
    return None if value == "" else value


class CounselorRefOut(BaseModel):
    id: int
    full_name: str

    model_config = ConfigDict(from_attributes=True)


Item = TypeVar("Item", bound=BaseModel)


class PageOut(BaseModel, Generic[Item]):
    """The seed's pagination envelope, plus an opaque cursor for constant-time paging."""

    items: list[Item]
    page: int
    limit: int
    total: int
    total_is_estimate: bool = Field(
        description="true when total is PostgreSQL's estimate (large sets, or a common "
        "search word), false when it is an exact count."
    )
    has_next: bool
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters) for the next page; null on the "
        "last page."
    )

    model_config = ConfigDict(from_attributes=True)


# --- query parameters ---------------------------------------------------------------------------

PageNumber = Annotated[int, Field(ge=1, description="1 for the first page.")]
PositiveId = Annotated[int, Field(ge=1)]
Cursor = Annotated[
    Annotated[str, Field(max_length=512)] | None,
    BeforeValidator(empty_is_none),
    Field(description="next_cursor of the previous page; wins over page."),
]
