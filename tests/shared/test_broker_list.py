"""A broker cluster's nodes for one client (issue 13): parsed as one list with one identity, and
tried in turn from a random first node."""

from __future__ import annotations

import random

import pytest

from shared.broker_list import BrokerRotation, parse_broker_urls
from shared.broker_url import BrokerUrlError


def test_a_comma_list_and_an_array_give_the_same_nodes() -> None:
    from_string = parse_broker_urls("mqtt://b1:1884, mqtt://b2 ,mqtt://b3:1886")
    from_array = parse_broker_urls(["mqtt://b1:1884", "mqtt://b2", "mqtt://b3:1886"])
    assert from_string == from_array
    assert [(url.host, url.port) for url in from_string] == [
        ("b1", 1884),
        ("b2", 1883),
        ("b3", 1886),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "at least one"),
        (" , ", "at least one"),
        ("mqtt://b1,mqtts://b2", "same scheme"),
        ("mqtts://k@b1,mqtts://b2", "same scheme, user name and password"),
        ("mqtt://b1:1883,mqtt://b1", "appears twice"),
        ("mqtt://b1,http://b2", "expected mqtt://"),
    ],
)
def test_a_bad_list_is_refused_with_a_reason(value: str, message: str) -> None:
    with pytest.raises(BrokerUrlError, match=message):
        parse_broker_urls(value)


def test_rotation_moves_to_the_next_node_after_each_failure_and_wraps() -> None:
    rotation = BrokerRotation(["a", "b", "c"], rng=random.Random(7))
    first = rotation.current
    tried = [first] + [rotation.failed() for _ in range(5)]
    start = ["a", "b", "c"].index(first)
    assert tried == [["a", "b", "c"][(start + n) % 3] for n in range(6)]


def test_a_fleet_starts_spread_over_the_nodes() -> None:
    rng = random.Random(1)
    firsts = [BrokerRotation(["a", "b", "c"], rng=rng).current for _ in range(300)]
    assert {node: firsts.count(node) for node in "abc"} == {
        node: pytest.approx(100, abs=30) for node in "abc"
    }


def test_one_node_is_always_the_current_one() -> None:
    rotation = BrokerRotation(["only"])
    assert [rotation.current, rotation.failed(), rotation.failed()] == ["only"] * 3


def test_no_nodes_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one node"):
        BrokerRotation([])
