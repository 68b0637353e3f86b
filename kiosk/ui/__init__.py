"""The kiosk's touchscreen UI (Textual): home, pickup, driver drop-off, returns and staff.

Build it with `kiosk.ui.app.make_app`, which takes its services (`kiosk.ui.services.UiServices`):
the flows' context, the staff PIN check, the sync status. The daemon runs it as a supervised task
(`kiosk.ui.runner.run_ui`) whose crash never stops the door monitor; see ``docs/kiosk.md``,
"Touchscreen UI".
"""
