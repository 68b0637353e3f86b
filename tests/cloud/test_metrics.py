"""/metrics: parsed with prometheus-client's own parser, each figure moving with what moves it."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cloud.metrics import UNMATCHED_ROUTE


async def scrape(client):
    """{(sample name, frozenset of labels): value} of one scrape."""
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def allocation(package_id, size="small"):
    return {
        "location_id": "LOC-1",
        "package_id": package_id,
        "order_id": f"O-{package_id}",
        "customer_id": "C1",
        "package_size": size,
    }


async def test_requests_are_counted_by_route_template_and_status(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 1})
    before = await scrape(cloud.anonymous)

    r = await acme.post("/api/v1/allocations", json=allocation("P1"))
    assert r.status_code == 201
    allocation_id = r.json()["allocation_id"]
    assert (await acme.get(f"/api/v1/allocations/{allocation_id}")).status_code == 200
    assert (await cloud.anonymous.get("/no/such/path/12345")).status_code == 404

    after = await scrape(cloud.anonymous)
    route = "/api/v1/allocations"
    created = ("locker_http_requests_total", {"route": route, "method": "POST", "status": "201"})
    assert value(after, created[0], **created[1]) == value(before, created[0], **created[1]) + 1
    # The template, not the raw path with its id: one series for every parcel.
    one = {"route": "/api/v1/allocations/{allocation_id}", "method": "GET", "status": "200"}
    assert value(after, "locker_http_requests_total", **one) >= 1
    assert not any(allocation_id in str(labels) for _, labels in after)
    missing = {"route": UNMATCHED_ROUTE, "method": "GET", "status": "404"}
    assert value(after, "locker_http_requests_total", **missing) == (
        value(before, "locker_http_requests_total", **missing) + 1
    )
    timed = {"route": route, "method": "POST"}
    assert value(after, "locker_http_request_duration_seconds_count", **timed) == (
        value(before, "locker_http_request_duration_seconds_count", **timed) + 1
    )
    assert value(after, "locker_http_request_duration_seconds_sum", **timed) > value(
        before, "locker_http_request_duration_seconds_sum", **timed
    )


async def test_allocations_are_counted_by_outcome_and_doors_by_state(cloud):
    acme = await cloud.create_carrier()
    await cloud.create_location(counts={"small": 1, "medium": 1})
    before = await scrape(cloud.anonymous)
    assert value(before, "locker_doors", status="available", size="small") == 1
    assert value(before, "locker_doors", status="available", size="medium") == 1

    assert (await acme.post("/api/v1/allocations", json=allocation("P1"))).status_code == 201
    assert (await acme.post("/api/v1/allocations", json=allocation("P1"))).status_code == 200
    # Small is taken, so P2 gets the medium door; then nothing is left for P3.
    assert (await acme.post("/api/v1/allocations", json=allocation("P2"))).status_code == 201
    full = await acme.post("/api/v1/allocations", json=allocation("P3"))
    assert full.status_code == 409

    after = await scrape(cloud.anonymous)
    for outcome, more in (("reserved", 2), ("existing", 1), (full.json()["error"]["code"], 1)):
        assert value(after, "locker_allocations_total", outcome=outcome) == (
            value(before, "locker_allocations_total", outcome=outcome) + more
        ), outcome
    assert value(after, "locker_allocation_batch_size_count") >= (
        value(before, "locker_allocation_batch_size_count") + 4
    )
    assert value(after, "locker_doors", status="reserved", size="small") == 1
    assert value(after, "locker_doors", status="reserved", size="medium") == 1
    assert value(after, "locker_doors", status="available", size="small") == 0


@pytest.mark.parametrize("cloud_settings_extra", [{"metrics_token": "scrape-secret"}])
async def test_a_metrics_token_guards_the_figures(cloud):
    refused = await cloud.anonymous.get("/metrics")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "missing_api_key"
    wrong = await cloud.client("admin-or-anything").get("/metrics")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    samples = await scrape(cloud.client("scrape-secret"))
    assert ("locker_kiosks", frozenset({("status", "online")})) in samples


async def test_metrics_stay_out_of_the_carrier_openapi(cloud):
    spec = (await cloud.anonymous.get("/openapi.json")).json()
    assert "/metrics" not in spec["paths"]
