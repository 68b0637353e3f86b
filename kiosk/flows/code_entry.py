"""A code typed at the keypad or read from a QR code: checked, audited, and guarded.

Shared by pickup and return drop-off. Every attempt gets an audit entry (with a short reference to
the code's keyed hash, never the code). A code that is not known here counts as a wrong code; the
``keypad_max_failures``-th wrong code within ``keypad_window`` locks the keypad for
``keypad_lockout``. The counters live in SQLite, so pulling the plug does not reset the guard.

Codes that are real but cannot be used now (already used, a return code at the pickup screen)
are refused without counting: they reveal nothing a guesser could use, and a customer who mixes
up the two buttons should not lock the keypad for the next person.
"""

from __future__ import annotations

from datetime import datetime

from sqlite_utils import Database

from kiosk.flows.context import FlowContext
from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.store import audit, code_secrets, codes, keypad, outbox
from kiosk.store.code_hash import code_reference
from kiosk.store.records import Actor, CodeKind, CodeRecord
from shared.codes import InvalidCode, PickupCode
from shared.events import KeypadLocked

CODE_ENTRY = "code_entry"
"""The audit log's command for a code attempt."""


def keypad_refusal(ctx: FlowContext, db: Database, now: datetime) -> FlowRefused | None:
    """A KEYPAD_LOCKED refusal while the keypad is locked, else None."""
    until = keypad.locked_until(db)
    if until is None or until <= now:
        return None
    left = until - now
    seconds = max(1, int(left.total_seconds() + 0.999))
    return FlowRefused(
        Refusal.KEYPAD_LOCKED,
        f"Too many wrong codes. The keypad is locked for {seconds} more seconds.",
        retry_after=left,
    )


def look_up_code(
    ctx: FlowContext, db: Database, raw: str, kind: CodeKind, *, via: str
) -> tuple[CodeRecord | None, FlowRefused | None]:
    """Checks a code attempt in the caller's transaction and audits it when refused.

    Returns:
        The live code row and None, or None and the refusal to raise once the caller has
        committed (so that the audit entry and the failure count are kept).
    """
    now = ctx.clock.now()
    locked = keypad_refusal(ctx, db, now)
    if locked is not None:
        _audit(db, now, locked.refusal.value, {"via": via, "kind": kind.value})
        return None, locked
    try:
        code = PickupCode.parse(raw)
    except InvalidCode as error:
        _audit(db, now, Refusal.INVALID_CODE.value, {"via": via, "kind": kind.value})
        return None, FlowRefused(
            Refusal.INVALID_CODE, f"That is not a valid code ({error}). Please check and retype."
        )
    # Under every generation of the code secret a live code may be hashed under (issue 9:
    # rotation never stops a live code from working); the newest names the attempt.
    code_hashes = code_secrets.hashes_of(ctx.store, code)
    detail: dict[str, object] = {
        "via": via,
        "kind": kind.value,
        "code_ref": code_reference(code_hashes[0]),
    }
    record = codes.find_code_of(db, code_hashes)
    if record is None:
        return None, _wrong_code(ctx, db, now, detail)
    if record.kind is not kind:
        _audit(db, now, Refusal.WRONG_KIND_OF_CODE.value, detail)
        other = "Return a parcel" if record.kind is CodeKind.RETURN else "Pick up a parcel"
        return None, FlowRefused(
            Refusal.WRONG_KIND_OF_CODE, f"This code is for another service: choose '{other}'."
        )
    if record.used_at is not None:
        _audit(db, now, Refusal.CODE_USED.value, detail)
        return None, FlowRefused(
            Refusal.CODE_USED,
            f"This code was already used on {record.used_at:%d %b at %H:%M} UTC. "
            "If you did not get your parcel, contact the carrier.",
        )
    return record, None


def audit_attempt(
    db: Database, now: datetime, result: str, code: CodeRecord, via: str, **detail: object
) -> None:
    """Audits an attempt with a known code (accepted, or refused for its parcels' state)."""
    _audit(
        db,
        now,
        result,
        {"via": via, "kind": code.kind.value, "code_ref": code_reference(code.code_hash), **detail},
    )


def _wrong_code(
    ctx: FlowContext, db: Database, now: datetime, detail: dict[str, object]
) -> FlowRefused:
    rules = ctx.rules
    count = keypad.record_failure(db, now, rules.keypad_window)
    _audit(db, now, Refusal.UNKNOWN_CODE.value, {**detail, "failures": count})
    if count >= rules.keypad_max_failures:
        until = now + rules.keypad_lockout
        keypad.lock(db, until)
        outbox.append_event(db, KeypadLocked(failures=count, locked_until=until), now)
        audit.record_entry(db, now, Actor.KIOSK, "keypad_lock", "done", detail={"failures": count})
        locked = keypad_refusal(ctx, db, now)
        assert locked is not None
        return FlowRefused(
            Refusal.KEYPAD_LOCKED,
            "Code not recognised. Too many wrong codes: " + locked.message.split(". ", 1)[1],
            retry_after=locked.retry_after,
        )
    left = rules.keypad_max_failures - count
    return FlowRefused(
        Refusal.UNKNOWN_CODE,
        "Code not recognised at this locker. Check the code and the locker address in your "
        f"message. {left} {'try' if left == 1 else 'tries'} left before the keypad locks.",
    )


def _audit(db: Database, now: datetime, result: str, detail: dict[str, object]) -> None:
    audit.record_entry(db, now, Actor.CUSTOMER, CODE_ENTRY, result, detail=detail)
