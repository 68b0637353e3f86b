"""The operations console: web pages for operators (not carriers) served by the cloud service.

- `cloud.ops.accounts`: operator accounts, password checks, lockout, sessions.
- `cloud.ops.guard`: the FastAPI dependencies that put a logged-in operator, their role and the
  CSRF check in front of every page and action.
- `cloud.ops.pages`: the fleet list, a location's page, parcels to collect (and their live
  fragments).
- `cloud.ops.actions`: what an operator can do from the pages, each audited with their name.
- `cloud.ops.charts`: the plots (plotly), built from `cloud.store.console`'s series.

docs/operations.md shows every page and action.
"""
