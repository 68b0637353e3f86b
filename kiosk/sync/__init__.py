"""The kiosk side of cloud sync over MQTT (``docs/protocol.md``).

One concept per module:

- `kiosk.sync.client`: `KioskSync`, the coordinator that owns the MQTT connection (reconnect
  loop, connection order, message checks, outbox pump and heartbeats);
- `kiosk.sync.apply`: the cloud's change log applied to the store (checkpoints, snapshots, gaps);
- `kiosk.sync.deferred`: cloud changes the kiosk cannot apply now, kept until their blocker ends;
- `kiosk.sync.commands`: remote opens, once per command id even across restarts;
- `kiosk.sync.pump`: which outbox events to publish when, and what an ack does;
- `kiosk.sync.presence`: the epoch, birth, death (the will) and heartbeat bodies.
"""
