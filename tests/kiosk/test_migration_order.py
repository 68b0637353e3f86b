"""Kiosk migrations run in name order, whatever order branches defined them in (issue 11)."""

from __future__ import annotations

from sqlite_utils import Database

from kiosk.store import schema


def test_migrations_are_applied_in_name_order_even_when_defined_out_of_order() -> None:
    registered = schema.migrations._migrations
    saved = list(registered)
    try:
        registered.reverse()  # as a merge might leave them
        db = Database(memory=True)
        applied = schema.migrate(db)
        assert applied == sorted(schema.KNOWN_MIGRATIONS)
        assert [m.name for m in schema.migrations.applied(db)] == sorted(schema.KNOWN_MIGRATIONS)
    finally:
        registered[:] = saved


def test_a_database_missing_a_lower_number_gets_it_later() -> None:
    db = Database(memory=True)
    schema.migrations.apply(db, stop_before="0008_operation_pulse_started")
    assert "0008_operation_pulse_started" not in {m.name for m in schema.migrations.applied(db)}
    assert schema.migrate(db) == [
        name for name in sorted(schema.KNOWN_MIGRATIONS) if name >= "0008_operation_pulse_started"
    ]
