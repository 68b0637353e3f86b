"""The service's store: the only code that reads and writes PostgreSQL rows (migrations aside).

One concept per module:

- `cloud.store.database`: the pool, the migrations, the embedded server, the health ping.
- `cloud.store.kiosks`: registered kiosks (keys, code secret) and their presence.
- `cloud.store.publications`: each location's log revision and how far it is published.
- `cloud.store.remote_commands`: remote door openings waiting for a sync worker to publish.
- `cloud.store.snapshots`: a snapshot's consistent read and its doors in maintenance.
- `cloud.store.carriers`: carriers and the hashes of their API keys.
- `cloud.store.notifications`: the notification outbox (enqueue, lease, outcome, cancel).
- `cloud.store.alerts`: the fleet alerts an operator should look at.
"""
