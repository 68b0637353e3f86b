"""The carrier and admin HTTP API (FastAPI)."""
