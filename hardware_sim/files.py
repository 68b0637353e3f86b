"""Files a running simulator keeps for the programs around it.

- `DeviceLink`: a stable name for a pseudo-terminal. A pseudo-terminal gets a new number
  (``/dev/pts/7``) every run, so a kiosk configuration that names it works only once; a symbolic
  link such as ``/tmp/locker-doors`` keeps one name across runs, and the kiosk opens the link like
  any serial device.
- `StateFile`: a JSON file that always describes the simulated bank, for scripts, tests and
  dashboards. Doors change without any console command (a kiosk's pulse springs a door open a
  moment later), so a background thread reads the bank every ``interval_s`` and rewrites the file
  only when something changed. Each write goes to a temporary file that then replaces the old
  one, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class DeviceLink:
    """A symbolic link at ``path`` to the device ``target``.

    Args:
        path: Where the link goes; its directory must exist.
        target: The device it points to.
    """

    def __init__(self, path: Path, target: str) -> None:
        self.path = path
        self.target = target

    def create(self) -> None:
        """Makes the link, replacing a symbolic link left by an earlier run.

        Raises:
            FileExistsError: something other than a symbolic link is at ``path`` (it is left
                alone: it may be a real device or someone's file).
            OSError: the link cannot be made (no such directory, no permission).
        """
        if self.path.is_symlink():
            self.path.unlink()
        elif self.path.exists():
            raise FileExistsError("exists and is not a symbolic link; not replacing it")
        os.symlink(self.target, self.path)

    def remove(self) -> None:
        """Removes the link if it still points to ``target`` (another run may have taken it)."""
        try:
            if self.path.is_symlink() and os.readlink(self.path) == self.target:
                self.path.unlink()
        except OSError:
            pass  # already gone, or the directory went away: nothing left to clean


class StateFile:
    """Keeps ``path`` up to date with ``snapshot()``, plus ``"running": true`` until `stop`.

    Args:
        path: The file to write.
        snapshot: Returns the state as JSON-ready values; called from the writer thread.
        interval_s: How often the state is read.
    """

    def __init__(
        self, path: Path, snapshot: Callable[[], dict[str, Any]], *, interval_s: float = 0.1
    ) -> None:
        self.path = path
        self._snapshot = snapshot
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = ""
        self._failed = False

    def write_now(self, *, running: bool = True) -> None:
        """Writes the current state if it changed since the last write.

        Raises:
            OSError: the file cannot be written (a missing directory, no permission).
        """
        text = json.dumps(self._snapshot() | {"running": running}, indent=2) + "\n"
        if text == self._last:
            return
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError:
            temporary.unlink(missing_ok=True)
            raise
        self._last = text

    def start(self) -> None:
        """Starts the refresh thread. Idempotent."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="state-file", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stops the thread and writes a last state with ``"running": false``. Idempotent."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.write_now(running=False)
        except OSError as error:
            log.warning("state file %s: last write failed: %s", self.path, error)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            try:
                self.write_now()
            except OSError as error:
                # Keep simulating: the file is a convenience, the pseudo-terminals are the job.
                if not self._failed:
                    log.warning("state file %s: write failed: %s", self.path, error)
                self._failed = True
            else:
                self._failed = False
