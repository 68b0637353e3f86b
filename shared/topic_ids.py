"""The ids that name MQTT topics (location ids, kiosk ids), as new ones must be spelled.

A location id is a level of every sync topic (``locker/v1/{location}/...``) and a kiosk id is
the kiosk's MQTT client id. The broker cluster is NATS (docs/protocol.md, "Broker cluster"),
whose MQTT listener maps the topic separator ``/`` to its subject separator ``.``: a topic with a
``.`` (or a space) is refused and the connection closed, so a location with a dot in its id
could never be served. New ids are therefore 1 to 64 of ``A-Z a-z 0-9 _ -``; the cloud refuses
any other when a location is created or a kiosk provisioned. `shared.protocol` still reads
dotted ids, so a location created before this rule keeps working on Mosquitto.
"""

from __future__ import annotations

import re

TOPIC_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
RULE = "1 to 64 of A-Z a-z 0-9 _ - (no '.': a NATS MQTT topic cannot carry one)"


class TopicIdError(ValueError):
    """An id that cannot name an MQTT topic on every broker the project supports."""


def check_topic_id(what: str, value: str) -> str:
    """Returns ``value`` if it may name a topic.

    Raises:
        TopicIdError: naming ``what`` (``location id``, ``kiosk id``), the value and the rule.
    """
    if not TOPIC_ID.match(value):
        raise TopicIdError(f"{what} {value!r} is not valid: {RULE}")
    return value
