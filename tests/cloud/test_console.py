"""The operations console over HTTP (no browser): logins, sessions, roles, CSRF, the pages and
every action, against the real service and PostgreSQL. tests/browser drives it in Chromium."""

import re
import uuid
from datetime import timedelta

import pytest

from cloud import lifecycle
from cloud.ops import accounts
from cloud.ops.accounts import Role
from cloud.store import alerts

PASSWORD = "correct horse battery"


async def make_operator(cloud, username, role):
    await accounts.create_operator(
        cloud.pool, username=username, password=PASSWORD, role=Role(role), now=cloud.clock.now()
    )


def field(html, name):
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} in the page"
    return found.group(1)


async def log_in(cloud, username, password=PASSWORD, *, next_page="/ops/"):
    """A browser-like client (cookies kept, redirects not followed) after a login attempt."""
    client = cloud.client()
    page = await client.get(f"/ops/login?next={next_page}")
    assert page.status_code == 200
    r = await client.post(
        "/ops/login",
        data={
            "username": username,
            "password": password,
            "login_csrf": field(page.text, "login_csrf"),
            "next": field(page.text, "next"),
        },
    )
    return client, r


async def csrf_of(client, path="/ops/"):
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return field(page.text, "csrf")


async def test_pages_need_a_login_and_send_the_browser_to_it(cloud):
    r = await cloud.anonymous.get("/ops/locations/LOC-1?notice=x")
    assert r.status_code == 303
    assert r.headers["location"] == "/ops/login?next=/ops/locations/LOC-1%3Fnotice%3Dx"
    # An action without a session is refused outright, not redirected.
    r = await cloud.anonymous.post("/ops/locations/LOC-1/open", data={"door": 1, "reason": "x"})
    assert r.status_code == 401
    assert 'data-code="not_logged_in"' in r.text
    # The carrier API's keys open nothing here.
    r = await cloud.admin.get("/ops/")
    assert r.status_code == 303


async def test_login_session_and_logout(cloud):
    await make_operator(cloud, "ola", "viewer")
    client, r = await log_in(cloud, "ola", next_page="/ops/collect")
    assert r.status_code == 303
    assert r.headers["location"] == "/ops/collect"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    page = await client.get("/ops/")
    assert page.status_code == 200
    assert "ola (viewer)" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

    r = await client.post("/ops/logout", data={"csrf": field(page.text, "csrf")})
    assert r.status_code == 303
    assert (await client.get("/ops/")).status_code == 303  # the session is gone


async def test_a_login_never_redirects_off_the_console(cloud):
    await make_operator(cloud, "ola", "viewer")
    for target in ("https://evil.example/", "//evil.example/ops/", "/api/v1/admin/carriers"):
        _, r = await log_in(cloud, "ola", next_page=target)
        assert r.status_code == 303
        assert r.headers["location"] == "/ops/", target


async def test_wrong_passwords_lock_the_account_and_say_so(cloud):
    await make_operator(cloud, "ola", "support")
    for _ in range(accounts.LOCK_AFTER - 1):
        _, r = await log_in(cloud, "ola", "wrong password!")
        assert r.status_code == 401
        assert "Wrong username or password." in r.text
    _, r = await log_in(cloud, "ola", "wrong password!")
    assert r.status_code == 401
    assert "locked until" in r.text
    # Locked: even the right password is refused until the lock ends.
    _, r = await log_in(cloud, "ola")
    assert r.status_code == 401
    assert "locked until" in r.text
    cloud.clock.advance(accounts.LOCK_FOR + timedelta(seconds=1))
    _, r = await log_in(cloud, "ola")
    assert r.status_code == 303
    # An unknown user is told the same as a wrong password.
    _, r = await log_in(cloud, "nobody", "whatever it is")
    assert r.status_code == 401
    assert "Wrong username or password." in r.text


async def test_a_session_expires(cloud):
    await make_operator(cloud, "ola", "viewer")
    client, r = await log_in(cloud, "ola")
    assert r.status_code == 303
    cloud.clock.advance(accounts.SESSION_LIFETIME + timedelta(seconds=1))
    assert (await client.get("/ops/")).status_code == 303


async def test_a_login_form_from_elsewhere_is_refused(cloud):
    await make_operator(cloud, "ola", "viewer")
    r = await cloud.anonymous.post(
        "/ops/login", data={"username": "ola", "password": PASSWORD, "login_csrf": "forged"}
    )
    assert r.status_code == 403
    assert 'data-code="csrf_failed"' in r.text


async def test_actions_need_the_sessions_csrf_token(cloud):
    await cloud.create_location(counts={"small": 2})
    await make_operator(cloud, "sam", "support")
    client, _ = await log_in(cloud, "sam")
    for token in ("", "not-the-token"):
        r = await client.post(
            "/ops/locations/LOC-1/open", data={"door": 1, "reason": "test", "csrf": token}
        )
        assert r.status_code == 403
        assert 'data-code="csrf_failed"' in r.text
    assert await _remote_commands(cloud) == []


async def test_a_viewer_sees_but_cannot_act(cloud):
    await cloud.create_location(counts={"small": 2})
    await make_operator(cloud, "vic", "viewer")
    client, _ = await log_in(cloud, "vic")
    page = await client.get("/ops/locations/LOC-1")
    assert page.status_code == 200
    assert 'id="open-form"' not in page.text  # no action forms for a viewer
    r = await client.post(
        "/ops/locations/LOC-1/open",
        data={"door": 1, "reason": "test", "csrf": field(page.text, "csrf")},
    )
    assert r.status_code == 403
    assert 'data-code="role_too_low"' in r.text
    assert await _remote_commands(cloud) == []


async def test_remote_open_is_queued_for_the_kiosk_and_audited_with_the_operator(cloud):
    await cloud.create_location(counts={"small": 2})
    await make_operator(cloud, "sam", "support")
    client, _ = await log_in(cloud, "sam")
    csrf = await csrf_of(client, "/ops/locations/LOC-1")
    r = await client.post(
        "/ops/locations/LOC-1/open",
        data={"door": 2, "reason": "  customer   on the phone ", "csrf": csrf},
    )
    assert r.status_code == 303
    assert r.headers["location"].startswith("/ops/locations/LOC-1?notice=")
    assert await _remote_commands(cloud) == [(2, "customer on the phone", "operator:sam")]
    page = await client.get(r.headers["location"])
    assert "Door 2: opening sent to the kiosk." in page.text
    audit = page.text[page.text.index('id="audit"') :]
    assert "sam" in audit
    assert "remote open" in audit
    assert "customer on the phone" in audit

    # No reason, an unknown door: refused, nothing queued.
    r = await client.post(
        "/ops/locations/LOC-1/open", data={"door": 2, "reason": " ", "csrf": csrf}
    )
    assert r.status_code == 422
    r = await client.post(
        "/ops/locations/LOC-1/open", data={"door": 9, "reason": "x", "csrf": csrf}
    )
    assert r.status_code == 404
    assert 'data-code="door_not_found"' in r.text
    assert len(await _remote_commands(cloud)) == 1


async def test_bulk_open_of_everything_due_for_collection(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 3})
    await make_operator(cloud, "sam", "support")
    parcels = []
    for n in range(3):
        r = await acme.post(
            "/api/v1/allocations",
            json={
                "location_id": "LOC-1",
                "package_id": f"P{n}",
                "order_id": f"O{n}",
                "customer_id": "C1",
                "package_size": "small",
            },
        )
        assert r.status_code == 201
        parcels.append(r.json())
    # Two deposited and then expired; the third only reserved (nothing to collect there).
    for parcel in parcels[:2]:
        r = await acme.post(
            f"/api/v1/allocations/{parcel['allocation_id']}/deposit",
            json={"driver_id": "d1", "scan_code": parcel["package_id"]},
        )
        assert r.status_code == 200, r.text
    await _expire_deposited(cloud)

    client, _ = await log_in(cloud, "sam")
    page = await client.get("/ops/locations/LOC-1")
    assert "Open all 2 doors due for collection" in page.text
    collect = await client.get("/ops/collect")
    assert collect.text.count("expired delivery") == 2
    r = await client.post(
        "/ops/locations/LOC-1/collect-all",
        data={"reason": "courier on site", "csrf": field(page.text, "csrf")},
    )
    assert r.status_code == 303
    async with cloud.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT d.door_number FROM allocations a JOIN doors d USING (door_id)"
            " WHERE a.status = 'expired' ORDER BY 1"
        )
        doors = [r["door_number"] for r in await cur.fetchall()]
    assert len(doors) == 2
    assert sorted(c[0] for c in await _remote_commands(cloud)) == doors
    assert {c[2] for c in await _remote_commands(cloud)} == {"operator:sam"}


async def test_maintenance_and_clearing_a_fault_from_the_console(cloud):
    await cloud.create_location(counts={"small": 2})
    await make_operator(cloud, "sam", "support")
    async with cloud.pool.connection() as conn:
        await alerts.raise_alert(
            conn,
            location_id="LOC-1",
            kiosk_id=None,
            kind="door_tampered",
            door_number=1,
            detail="{}",
            now=cloud.clock.now(),
        )
    client, _ = await log_in(cloud, "sam")
    page = await client.get("/ops/locations/LOC-1")
    assert 'data-alerts="door_tampered"' in page.text
    csrf = field(page.text, "csrf")
    alert_id = int(re.search(r'data-alert="(\d+)"', page.text).group(1))

    r = await client.post(
        "/ops/locations/LOC-1/maintenance",
        data={"door": 1, "on": "true", "reason": "hinge broken", "csrf": csrf},
    )
    assert r.status_code == 303
    live = await client.get("/ops/fragments/locations/LOC-1")
    assert 'id="door-1" data-status="maintenance"' in live.text
    r = await client.post(
        "/ops/alerts/clear",
        data={"alert": alert_id, "resolution": "checked on site", "csrf": csrf},
    )
    assert r.status_code == 303
    live = await client.get("/ops/fragments/locations/LOC-1")
    assert 'data-alerts=""' in live.text
    assert "cleared by sam" in live.text
    # Twice: there is nothing open to clear.
    r = await client.post(
        "/ops/alerts/clear", data={"alert": alert_id, "resolution": "again", "csrf": csrf}
    )
    assert r.status_code == 404
    r = await client.post(
        "/ops/locations/LOC-1/maintenance", data={"door": 1, "on": "false", "csrf": csrf}
    )
    assert r.status_code == 303
    page = await client.get("/ops/locations/LOC-1")
    audit = page.text[page.text.index('id="audit"') :]
    for action in ("maintenance on", "alert cleared", "maintenance off"):
        assert action in audit


async def test_the_fleet_list_searches_and_flags_faults(cloud):
    await cloud.create_location("WAW-1", counts={"small": 2}, address="Marszalkowska 1")
    await cloud.create_location("KRK-1", counts={"medium": 1}, address="Florianska 3")
    await make_operator(cloud, "vic", "viewer")
    client, _ = await log_in(cloud, "vic")
    page = await client.get("/ops/")
    assert 'id="loc-WAW-1"' in page.text
    assert 'id="loc-KRK-1"' in page.text
    found = await client.get("/ops/", params={"q": "florian"})
    assert 'id="loc-KRK-1"' in found.text
    assert 'id="loc-WAW-1"' not in found.text
    # LIKE's wildcards are searched for, not obeyed.
    assert "No location matches" in (await client.get("/ops/", params={"q": "%"})).text
    fragment = await client.get("/ops/fragments/fleet", params={"q": "WAW"})
    assert "small 0/2" in fragment.text
    assert "<html" not in fragment.text


async def test_an_unknown_location_is_a_page_not_a_traceback(cloud):
    await make_operator(cloud, "vic", "viewer")
    client, _ = await log_in(cloud, "vic")
    r = await client.get(f"/ops/locations/{uuid.uuid4().hex}")
    assert r.status_code == 404
    assert 'data-code="location_not_found"' in r.text


async def test_plotly_is_served_by_the_console_itself(cloud):
    r = await cloud.anonymous.get("/ops/static/plotly.min.js")
    assert r.status_code == 200
    assert len(r.content) > 1_000_000
    assert (await cloud.anonymous.get("/ops/static/../../etc/passwd")).status_code == 404


@pytest.mark.parametrize("path", ["/ops/", "/ops/collect", "/ops/fragments/fleet"])
async def test_console_pages_are_not_in_the_carrier_openapi(cloud, path):
    spec = (await cloud.anonymous.get("/openapi.json")).json()
    assert path not in spec["paths"]


async def _remote_commands(cloud):
    async with cloud.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT door_number, reason, requested_by FROM remote_commands ORDER BY created_at"
        )
        return [(r["door_number"], r["reason"], r["requested_by"]) for r in await cur.fetchall()]


async def _expire_deposited(cloud):
    later = cloud.clock.now() + timedelta(days=30)
    assert await lifecycle.expire_pickups(cloud.pool, later) >= 1


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-120, "now"),
        (59, "now"),
        (60, "1 min"),
        (3599, "59 min"),
        (7200, "2 h"),
        (3 * 86400, "3 d"),
    ],
)
def test_times_in_state_read_as_people_say_them(seconds, shown):
    from cloud.ops.pages import duration

    assert duration(timedelta(seconds=seconds)) == shown


async def test_a_new_pickup_code_from_the_console(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 2})
    await make_operator(cloud, "sam", "support")
    r = await acme.post(
        "/api/v1/allocations",
        json={
            "location_id": "LOC-1",
            "package_id": "P1",
            "order_id": "O1",
            "customer_id": "C1",
            "package_size": "small",
        },
    )
    parcel = r.json()
    r = await acme.post(
        f"/api/v1/allocations/{parcel['allocation_id']}/deposit",
        json={"driver_id": "d1", "scan_code": "P1"},
    )
    assert r.status_code == 200, r.text
    old_code = r.json()["pickup_code"]

    client, _ = await log_in(cloud, "sam")
    page = await client.get("/ops/locations/LOC-1")
    assert 'id="reissue-form"' in page.text
    r = await client.post(
        "/ops/locations/LOC-1/reissue-code",
        data={
            "allocation": parcel["allocation_id"],
            "reason": "customer lost the code",
            "csrf": field(page.text, "csrf"),
        },
    )
    assert r.status_code == 303
    after = await client.get(r.headers["location"])
    assert "Parcel P1: a new pickup code was sent to the customer." in after.text
    new_code = (await acme.get(f"/api/v1/allocations/{parcel['allocation_id']}")).json()[
        "pickup_code"
    ]
    assert new_code != old_code
    assert new_code not in after.text  # the operator never sees the customer's code
    audit = after.text[after.text.index('id="audit"') :]
    assert "pickup code reissued" in audit
    # The old code opens nothing.
    r = await acme.post("/api/v1/pickup", json={"location_id": "LOC-1", "pickup_code": old_code})
    assert (r.status_code, r.json()["error"]["code"]) == (410, "code_expired")
    # A parcel of another location is not this page's to touch.
    await cloud.create_location("LOC-2", counts={"small": 1})
    r = await client.post(
        "/ops/locations/LOC-2/reissue-code",
        data={
            "allocation": parcel["allocation_id"],
            "reason": "x",
            "csrf": field(page.text, "csrf"),
        },
    )
    assert r.status_code == 404
