"""The cloud side of the MQTT sync with the kiosks (``docs/protocol.md``).

- `cloud.sync.keys`: the cloud's signing key, registered kiosks and their keys;
- `cloud.sync.provisioning`: a new kiosk's identity, files and registration;
- `cloud.sync.publisher`: the change log on each location's changes topic; answers to
  ``sync_request``; remote door commands;
- `cloud.sync.snapshot`: a location's whole state at one revision;
- `cloud.sync.events`: kiosk events applied once, in sequence order, under the kiosk's cursor;
- `cloud.sync.facts`: what each kiosk event changes in the allocations and doors;
- `cloud.sync.presence`: birth, death (epoch-matched) and heartbeats;
- `cloud.sync.worker`: the MQTT connection, its reconnect loop, and the dispatch of messages.
"""
