"""What stands in front of every console page and action: a logged-in operator, a role high
enough, and (for anything that changes something) the session's CSRF token.

Refusals are `ConsoleRefusal`s, which the app answers with an HTML page (`cloud.ops.pages`): a
browser that is not logged in is sent to the login page, everything else is told why.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Form, Request

from cloud.api.services import Svc
from cloud.ops import accounts
from cloud.ops.accounts import Role
from cloud.store.operators import Session

COOKIE = "locker_ops_session"
LOGIN_CSRF_COOKIE = "locker_ops_login"


class ConsoleRefusal(Exception):
    """A console request refused: ``status`` and ``code`` (machine-readable), ``message`` for
    the person."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class NotLoggedIn(ConsoleRefusal):
    def __init__(self) -> None:
        super().__init__(401, "not_logged_in", "Log in to use the operations console.")


async def operator(request: Request, svc: Svc) -> Session:
    token = request.cookies.get(COOKIE)
    if not token:
        raise NotLoggedIn
    session = await accounts.session_of(svc.pool, token, svc.clock.now())
    if session is None:
        raise NotLoggedIn
    return session


Operator = Annotated[Session, Depends(operator)]


async def _csrf(session: Operator, csrf: Annotated[str, Form()] = "") -> Session:
    # The session's own token, in the form: a page of another site cannot read it, so it
    # cannot make the browser post a valid one (the SameSite=Strict cookie is a second line).
    if not csrf or not hmac.compare_digest(csrf.encode(), session.csrf_token.encode()):
        raise ConsoleRefusal(
            403,
            "csrf_failed",
            "This form is out of date or not from this console. Reload the page and try again.",
        )
    return session


async def _acting(session: Annotated[Session, Depends(_csrf)]) -> Session:
    if not Role(session.role).allows(Role.SUPPORT):
        raise ConsoleRefusal(
            403,
            "role_too_low",
            f"Doors and parcels need the support role; you are {session.role}. Ask an admin.",
        )
    return session


Acting = Annotated[Session, Depends(_acting)]
"""An operator allowed to act (support or admin), whose form carried the session's CSRF token."""

SignedForm = Annotated[Session, Depends(_csrf)]
"""Any logged-in operator whose form carried the CSRF token (logging out)."""
