"""Column types shared by the models.

`UTCDateTime` exists because SQLite has no time-zone-aware timestamp: without it
a value written as 14:00+00:00 would come back naive and be compared wrongly
with aware values. Every timestamp in Chairside is stored and returned in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

#: 64-bit keys on PostgreSQL; SQLite needs plain INTEGER for its rowid alias.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

#: JSON documents (audit before/after, therapy schedules); JSONB on PostgreSQL.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that must be time-zone aware and is always UTC in the database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: Chairside stores aware UTC times only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
