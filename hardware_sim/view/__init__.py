"""The field tech's full-screen view of a simulated bank (``locker-sim bank --view``).

`make_app` builds the Textual app over a `SimulatedBank`: a grid of doors refreshed on a timer,
the selected door's details and actions, its board's faults, and a barcode input that scans
through the simulated scanner.
"""

from hardware_sim.view.app import BankViewApp, make_app

__all__ = ["BankViewApp", "make_app"]
