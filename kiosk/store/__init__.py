"""The kiosk's local store: SQLite (WAL, ``synchronous=FULL``) with versioned migrations.

One concept per module:

- `kiosk.store.database`: opening the file, the transaction every write goes through;
- `kiosk.store.schema`: the migrations;
- `kiosk.store.records`: the value objects rows come out as;
- `kiosk.store.code_hash`: codes as HMAC-SHA256 under the kiosk's secret;
- `kiosk.store.doors`, `allocations`, `codes`, `operations`: the location's state;
- `kiosk.store.outbox`: events for the cloud; `kiosk.store.audit`: who did what to which door;
- `kiosk.store.keypad`: the brute-force guard's counters;
- `kiosk.store.changes`: what sync (and staff) apply from outside the flows.

See ``docs/kiosk.md`` for the schema and the rules.
"""

from kiosk.store.code_hash import CodeHasher
from kiosk.store.database import KioskIdentity, NotInTransaction, Store, StoreError

__all__ = ["CodeHasher", "KioskIdentity", "NotInTransaction", "Store", "StoreError"]
