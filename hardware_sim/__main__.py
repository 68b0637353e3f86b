"""``python -m hardware_sim``: see `hardware_sim.console`."""

from hardware_sim.console import main

raise SystemExit(main())
