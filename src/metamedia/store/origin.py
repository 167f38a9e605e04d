"""Items by origin (original language, production countries): the candidates of "french films".

One parameterised query for both backends: `language` is a plain column; `countries` is JSON, matched
as its text (`"France"` with the quotes, so "Niger" never matches "Nigeria") and checked again on the
decoded list.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, cast, func, or_, select
from sqlalchemy.engine import Engine

from .schema import items

MAX_ORIGIN_ROWS = 5000


def items_of_origin(
    engine: Engine, languages: list[str], countries: list[str], limit: int = MAX_ORIGIN_ROWS
) -> list[tuple[int, list[str]]]:
    """(id, genres) of the items in one of `languages` or made in one of `countries`, most voted first."""
    conditions: list[Any] = []
    if languages:
        conditions.append(items.c.language.in_(languages))
    for country in countries:
        conditions.append(cast(items.c.countries, Text).like(f'%"{_escape_like(country)}"%', escape="\\"))
    if not conditions:
        return []
    query = (
        select(items.c.id, items.c.genres, items.c.language, items.c.countries)
        .where(or_(*conditions))
        .order_by(func.coalesce(items.c.vote_count, 0).desc(), items.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    wanted = set(countries)
    return [
        (int(r[0]), list(r[1] or [])) for r in rows if r[2] in languages or wanted.intersection(r[3] or [])
    ]


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
