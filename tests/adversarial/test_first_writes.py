"""The first-interaction race, made deterministic: another connection creates the user between our
check and our insert. Both writes must commit, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import event, func, select

from metamedia.recommend.storage import create_tables, ensure_users, users


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def test_user_created_between_check_and_insert_is_not_an_error(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    db = sqlalchemy.create_engine(url)
    try:
        create_tables(db)
        fired: list[bool] = []

        def other_request_wins(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if fired or not statement.lstrip().upper().startswith("SELECT") or "rec_users" not in statement:
                return
            fired.append(True)
            with db.begin() as other:  # a concurrent request creates the same new user and commits
                ensure_users(other, ["new-user"], 1.0)

        with db.connect() as conn:
            event.listen(conn, "after_cursor_execute", other_request_wins)
            with conn.begin():
                ensure_users(conn, ["new-user"], 2.0)
        assert fired == [True]
        with db.connect() as conn:
            assert conn.execute(select(func.count()).select_from(users)).scalar() == 1
    finally:
        db.dispose()
