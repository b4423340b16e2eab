"""`--explain`: the plan of every statement a figure runs (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on
PostgreSQL), captured from the engine while the figure runs once, with the statement's own parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event

from db.engine import Database


def capture(db: Database, function: Callable[[], Any]) -> list[tuple[str, Any]]:
    """(SQL, parameters) of each distinct SELECT the call runs, in order."""
    seen: dict[str, Any] = {}

    def listener(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        head = statement.lstrip().upper()
        if (head.startswith("SELECT") or head.startswith("WITH")) and statement not in seen:
            seen[statement] = parameters

    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        function()
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return list(seen.items())


def plans(db: Database, statements: list[tuple[str, Any]]) -> list[tuple[str, list[str]]]:
    prefix = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN "
    out = []
    with db.engine.connect() as conn:
        for sql, parameters in statements:
            try:
                rows = conn.exec_driver_sql(prefix + sql, parameters).all()
                lines = [" | ".join(str(c) for c in row) for row in rows]
            except Exception as exc:  # a plan that cannot be shown must not stop the run
                conn.rollback()
                lines = [f"(no plan: {str(exc).splitlines()[0]})"]
            out.append((sql, lines))
    return out


def show(title: str, db: Database, function: Callable[[], Any]) -> list[dict[str, Any]]:
    """Print the plans under a title; returned for the JSON file."""
    found = plans(db, capture(db, function))
    print(f"\n== plan: {title} ({len(found)} statement{'s' if len(found) != 1 else ''})")
    for sql, lines in found:
        flat = " ".join(sql.split())
        print(f"-- {flat[:400]}{' …' if len(flat) > 400 else ''}")
        for line in lines:
            print(f"   {line}")
    return [{"sql": sql, "plan": lines} for sql, lines in found]
