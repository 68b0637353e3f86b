"""The kiosk daemon: local store, door flows, door monitor, configuration and command line.

Importing this package loads no hardware library and no networking: backends are built from
configuration when the daemon starts. See ``docs/kiosk.md``.
"""
