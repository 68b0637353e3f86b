"""The demo: cloud, broker, a kiosk on simulated doors and parcels to pick up, on one machine.

The only package that brings the two sides together (it imports `cloud`, `kiosk`,
`hardware_sim` and `shared`; none of them imports it). ``locker-demo`` (`demo.cli`) runs it:

- `demo.run`: every part started in order and stopped in reverse;
- `demo.seed`: the demo carrier, locations and parcels, through the public HTTP API;
- `demo.provisioning`: the demo kiosk, registered, and the layout of its simulated doors;
- `demo.system`: the kiosk daemon on the simulated bank, and the parcels deposited at it;
- `demo.person`: the person who shuts each door a while after it opens;
- `demo.terminal`: the touchscreen's terminal, the log file, and typed scans when headless;
- `demo.options`: what the command was asked for.
"""
