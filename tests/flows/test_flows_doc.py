"""docs/kiosk-flows.md must name every refusal a flow can give and every event it can write."""

from __future__ import annotations

from pathlib import Path

from kiosk.flows.refusals import Refusal
from kiosk.store.records import EventType

DOC = Path(__file__).resolve().parents[2] / "docs" / "kiosk-flows.md"


def test_every_outbox_event_type_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert [e.value for e in EventType if f"`{e.value}`" not in text] == []


def test_every_refusal_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert [r.value for r in Refusal if f"`{r.value}`" not in text] == []
