"""Column shapes shared by the table models (`tables.py`, `_tables_epoch29.py`)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String


def id_column(name: str, *, nullable: bool = False, length: int = 64) -> Column[str]:
    return Column(name, String(length), nullable=nullable)


def ts_column(name: str, *, nullable: bool = False) -> Column[object]:
    # SQLite stores naive UTC text; PostgreSQL timestamptz. Both come back as datetime.
    return Column(name, DateTime(timezone=True), nullable=nullable)
