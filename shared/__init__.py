"""Domain types common to the kiosk and the cloud: sizes, state machines, codes."""
