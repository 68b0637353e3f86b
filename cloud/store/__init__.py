"""The service's store: the only code that reads and writes PostgreSQL rows (migrations aside).

One concept per module:

- `cloud.store.database`: the pool, the migrations, the embedded server.
"""
