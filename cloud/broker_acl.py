"""A running broker's ACL brought level with the fleet CA, live, without a restart (issue 9).

Mosquitto's dynamic-security plugin reads ``dynamic-security.json`` at start only, but takes
commands at runtime on ``$CONTROL/dynamic-security/v1`` (answers on ``.../response``) from a
client whose role allows it. The CA's ``admin`` identity (`FleetCa.issue_admin`, role
``broker-admin`` in `cloud.broker_config`) is that client: it can do nothing else.

`apply_acl` asks the broker which clients and roles it has, then sends what is missing or extra
compared with `cloud.broker_config.dynamic_security` (the same state `mosquitto-config`
writes): ``createRole`` plus ``addRoleACL`` for a new location's kiosk role, ``createClient``
(with its role) for a new identity, ``addClientRole`` for an identity that moved location, and
``deleteClient`` for one no longer live (revoked or expired: the plugin also disconnects it).
The plugin saves every change to its file, so a later restart keeps it. Everything is
idempotent: running it twice changes nothing the second time.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiomqtt

from cloud.broker_config import CONTROL_TOPIC, dynamic_security
from cloud.fleet_ca import FleetCa

RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"


class BrokerAclError(Exception):
    """The broker refused a command, or did not answer."""


@dataclass
class AclChanges:
    """What `apply_acl` changed on the broker."""

    roles_created: list[str] = field(default_factory=list)
    clients_created: list[str] = field(default_factory=list)
    clients_deleted: list[str] = field(default_factory=list)
    roles_granted: list[str] = field(default_factory=list)  # "client -> role"

    @property
    def changed(self) -> bool:
        return bool(
            self.roles_created or self.clients_created or self.clients_deleted or self.roles_granted
        )


class _Control:
    """One admin connection: sends a batch of commands, returns their responses in order."""

    def __init__(self, client: aiomqtt.Client, timeout_s: float) -> None:
        self._client = client
        self._timeout_s = timeout_s

    async def run(self, *commands: dict[str, Any]) -> list[dict[str, Any]]:
        if not commands:
            return []
        await self._client.publish(CONTROL_TOPIC, json.dumps({"commands": list(commands)}), qos=1)
        try:
            async with asyncio.timeout(self._timeout_s):
                async for message in self._client.messages:
                    payload = message.payload
                    if not isinstance(payload, bytes | bytearray):
                        continue
                    responses = json.loads(payload).get("responses", [])
                    if len(responses) == len(commands):
                        return list(responses)
        except TimeoutError:
            raise BrokerAclError(
                f"no answer on {RESPONSE_TOPIC} within {self._timeout_s} s: is this client the"
                " broker's admin identity (`ca-issue-admin`, then `mosquitto-config`)?"
            ) from None
        raise BrokerAclError("the connection ended before the broker answered")


def _data(response: dict[str, Any]) -> dict[str, Any]:
    if "error" in response:
        raise BrokerAclError(f"{response.get('command')}: {response['error']}")
    data = response.get("data", {})
    return data if isinstance(data, dict) else {}


def _check(responses: list[dict[str, Any]], *, tolerate: tuple[str, ...] = ()) -> None:
    for response in responses:
        error = response.get("error")
        if error and not any(text in str(error) for text in tolerate):
            raise BrokerAclError(f"{response.get('command')}: {error}")


async def apply_acl(
    ca: FleetCa,
    now: datetime,
    *,
    host: str,
    port: int,
    tls_context: ssl.SSLContext,
    admin_identity: str,
    timeout_s: float = 10.0,
) -> AclChanges:
    """Makes the running broker's clients and roles those of the CA's live identities.

    Raises:
        BrokerAclError: the broker refused a command or did not answer.
        aiomqtt.MqttError: the admin could not connect.
    """
    wanted = dynamic_security(ca, now)
    wanted_roles = {str(r["rolename"]): r for r in wanted["roles"]}  # type: ignore[attr-defined]
    wanted_clients = {
        str(c["username"]): str(c["roles"][0]["rolename"])
        for c in wanted["clients"]  # type: ignore[attr-defined]
    }
    changes = AclChanges()
    async with aiomqtt.Client(
        host, port, identifier=admin_identity, tls_context=tls_context, timeout=timeout_s
    ) as client:
        await client.subscribe(RESPONSE_TOPIC, qos=1)
        control = _Control(client, timeout_s)
        listed = await control.run(
            {"command": "listClients", "verbose": True, "count": -1, "offset": 0},
            {"command": "listRoles", "verbose": False, "count": -1, "offset": 0},
        )
        have_clients = {
            str(c["username"]): {str(r["rolename"]) for r in c.get("roles", [])}
            for c in _data(listed[0]).get("clients", [])
        }
        have_roles = {str(r) for r in _data(listed[1]).get("roles", [])}

        role_commands: list[dict[str, Any]] = []
        for name, role in wanted_roles.items():
            if name not in have_roles:
                changes.roles_created.append(name)
                role_commands.append({"command": "createRole", "rolename": name})
            # ACLs are (re)added to every wanted role: an existing one is refused and ignored.
            for acl in role["acls"]:
                role_commands.append(
                    {"command": "addRoleACL", "rolename": name, "priority": 0, **acl}
                )
        _check(await control.run(*role_commands), tolerate=("already exists",))

        client_commands: list[dict[str, Any]] = []
        for username, rolename in wanted_clients.items():
            if username not in have_clients:
                changes.clients_created.append(username)
                client_commands.append(
                    {
                        "command": "createClient",
                        "username": username,
                        "textname": username,
                        "roles": [{"rolename": rolename}],
                    }
                )
            elif rolename not in have_clients[username]:
                changes.roles_granted.append(f"{username} -> {rolename}")
                client_commands.append(
                    {"command": "addClientRole", "username": username, "rolename": rolename}
                )
        for username in sorted(set(have_clients) - set(wanted_clients) - {admin_identity}):
            changes.clients_deleted.append(username)
            client_commands.append({"command": "deleteClient", "username": username})
        _check(await control.run(*client_commands))
    return changes
