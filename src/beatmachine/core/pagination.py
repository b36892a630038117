"""`page`/`limit` query parameters and the pagination object of list responses."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.schemas import CamelModel

MAX_LIMIT = 100

T = TypeVar("T")


class Pagination(CamelModel):
    page: int
    limit: int
    total: int
    pages: int


@dataclass(frozen=True)
class PageParams:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def pagination(self, total: int) -> Pagination:
        return Pagination(
            page=self.page, limit=self.limit, total=total, pages=math.ceil(total / self.limit)
        )


async def _page_params(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
) -> PageParams:
    return PageParams(page=page, limit=limit)


PageDep = Annotated[PageParams, Depends(_page_params)]


async def paginate(
    session: AsyncSession, statement: Select[Any], params: PageParams
) -> tuple[list[Any], Pagination]:
    """Run one page of `statement` and count its rows (without its ORDER BY)."""
    count_stmt = select(func.count()).select_from(statement.order_by(None).subquery())
    total = int((await session.execute(count_stmt)).scalar_one())
    rows = (await session.execute(statement.limit(params.limit).offset(params.offset))).scalars()
    return list(rows), params.pagination(total)
