"""What happens to a parcel: one operation per state change, for the API and the kiosk alike.

- `cloud.parcels.requests`: what a carrier asks for (a door for a parcel, a door for a return);
- `cloud.parcels.reserve`: reserving a door, one request or a batch, with one statement;
- `cloud.parcels.batcher`: gathering concurrent requests into batches;
- `cloud.parcels.deposit`: the parcel (or a return) is in its door;
- `cloud.parcels.pickup`: the customer's code opens its parcels, and the code is spent;
- `cloud.parcels.finish`: cancel, expire, collect: the allocation ends or waits for staff;
- `cloud.parcels.returns`: a customer's return, from its code to its door;
- `cloud.parcels.notices`: what the customer is told, and when;
- `cloud.parcels.lookup`: the allocation a caller names, as that caller may see it.

Each operation takes a `cloud.store.transaction.Unit` (one transaction; the change log is
appended when it ends) and the records it acts on; the carrier API (`cloud.api.routes_carrier`),
the lifecycle jobs (`cloud.lifecycle`) and the kiosk events (`cloud.sync.facts`) all call these.
Invariants and rules: ``docs/allocation-service.md``.
"""
