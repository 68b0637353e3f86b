"""``locker-sim bank`` as a field tech runs it: a real process on real pseudo-terminals, driven
by the kiosk's own serial door bank and scanner reader through the configuration it prints."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import select
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hardware_sim import pty_device
from hardware_sim.console import CONFIG_BEGIN, CONFIG_END, PROMPT, main
from kiosk.hardware import (
    DoorBank,
    UnlockOutcome,
    create_door_bank,
    create_scanner,
    parse_door_bank_config,
    parse_scanner_config,
)

SIM = (sys.executable, "-m", "hardware_sim")
# The simulator is another process on a machine that may be busy, so nothing here depends on
# it answering quickly: deadlines are generous (a passing test never waits for them), and a door
# expected to open gets seconds to do so. Only a door that cannot open (jammed) is given up on
# quickly, which is safe whatever the load: the short timeout can only confirm that it stayed shut.
DEADLINE_S = 30.0
PATIENT_UNLOCK = {"open_timeout_s": 10.0, "poll_interval_s": 0.02}
QUICK_UNLOCK = {"open_timeout_s": 0.4, "poll_interval_s": 0.02}
PATIENT_BUS = {"request_timeout_s": 2.0, "retries": 2}
SIZES = "small=8,medium=6,large=4,xlarge=2"


class Sim:
    """A running ``locker-sim bank``: commands go to its stdin; stdout and stderr are merged."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.banner: list[str] = []
        self.scanner_only = False

    @classmethod
    async def start(cls, *args: str) -> Sim:
        process = await asyncio.create_subprocess_exec(
            *SIM,
            "bank",
            *args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        sim = cls(process)
        while not sim.banner or sim.banner[-1] != CONFIG_END:
            sim.banner.append(await sim.readline())
        return sim

    @property
    def config(self) -> dict[str, Any]:
        """The kiosk configuration printed between the markers, as TOML reads it."""
        begin = self.banner.index(CONFIG_BEGIN)
        return tomllib.loads("\n".join(self.banner[begin:]))

    def door_bank(
        self, config: dict[str, Any] | None = None, *, expect_open: bool = True
    ) -> DoorBank:
        """The kiosk's own door bank, built from the printed (or the given) configuration;
        ``expect_open=False`` for a bank that only unlocks doors that cannot open."""
        table = (config or self.config)["doors"]
        table = table | (PATIENT_UNLOCK if expect_open else QUICK_UNLOCK)
        table["serial"] = table["serial"] | PATIENT_BUS
        return create_door_bank(parse_door_bank_config(table))

    async def readline(self) -> str:
        assert self.process.stdout is not None
        async with asyncio.timeout(DEADLINE_S):
            line = await self.process.stdout.readline()
        assert line, f"locker-sim ended early; it said: {self.banner}"
        return line.decode().rstrip("\n")

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{line}\n".encode())
        await self.process.stdin.drain()

    async def command(self, line: str) -> str:
        """Sends one command and returns the line it answers (every command but a listing
        answers with one line; ``doors json`` too)."""
        await self.send(line)
        return await self.readline()

    async def doors(self) -> dict[int, dict[str, Any]]:
        listing = json.loads(await self.command("doors json"))
        return {door["door"]: door for door in listing["doors"]}

    async def finish(self) -> tuple[int, str]:
        """Waits for the process to end; its exit status and the rest of its output."""
        async with asyncio.timeout(DEADLINE_S):
            rest, _ = await self.process.communicate()
        assert self.process.returncode is not None
        return self.process.returncode, rest.decode()


@pytest.fixture
async def start_sim() -> AsyncIterator[Callable[..., Awaitable[Sim]]]:
    """Starts simulators; kills any still running at the end of the test."""
    started: list[Sim] = []

    async def start(*args: str) -> Sim:
        started.append(await Sim.start(*args))
        return started[-1]

    yield start
    for sim in started:
        if sim.process.returncode is None:
            sim.process.kill()
            await sim.process.wait()


@pytest.mark.parametrize("protocol", ["8a80", "kerong"])
async def test_the_kiosk_drives_the_printed_bank_and_the_listing_follows(
    start_sim: Callable[..., Awaitable[Sim]], protocol: str
) -> None:
    sim = await start_sim(
        *("--doors", "20", "--sizes", SIZES, "--protocol", protocol),
        *("--locks-per-board", "12", "--spring-delay", "0.02"),
    )
    assert sim.banner[0].startswith("locker-sim bank: 20 doors (8 small, 6 medium")
    assert sim.config["doors"]["serial"]["boards"] == [
        {"address": 1 if protocol == "8a80" else 0, "locks": 12},
        {"address": 2 if protocol == "8a80" else 1, "locks": 8},
    ]

    async with sim.door_bank() as bank:
        assert bank.doors == tuple(range(1, 21))
        assert (await bank.unlock(14)).outcome is UnlockOutcome.OPENED
        door = (await sim.doors())[14]
        assert (door["size"], door["state"], door["pulses"], door["lock"]) == (
            "medium",
            "open",
            1,
            2,
        )
        assert await sim.command("open 5") == "door 5: opened by hand"
        assert await sim.command("close 14") == "door 14: closed"
        states = await bank.read_states()
        assert states[5].is_open
        assert not states[14].is_open

    assert await sim.command("jam 3") == "door 3: jammed"
    async with sim.door_bank(expect_open=False) as bank:
        assert (await bank.unlock(3)).outcome is UnlockOutcome.OPEN_NOT_DETECTED
    door = (await sim.doors())[3]
    assert (door["state"], door["jammed"], door["pulses"]) == ("locked", True, 1)

    unknown = await sim.command("wiggle")
    assert unknown == "error: unknown command 'wiggle'; 'help' lists the commands"
    assert (await sim.command("jam 21")).startswith("error: jam: no door 21; doors are 1-20")

    codes = create_scanner(parse_scanner_config(sim.config["scanner"])).codes()
    try:
        assert await _scan_until_read(sim, codes, "JJD0001234567") == "JJD0001234567"
    finally:
        await codes.aclose()

    await sim.send("quit")
    assert await sim.finish() == (0, "")


async def test_startup_commands_links_config_and_state_files(
    start_sim: Callable[..., Awaitable[Sim]], tmp_path: Path
) -> None:
    script = tmp_path / "faults.txt"
    script.write_text("# a jammed door and a parcel\njam 2\n\nput 1\n", encoding="utf-8")
    paths = {name: tmp_path / name for name in ("doors", "scanner", "kiosk.toml", "state.json")}
    sim = await start_sim(
        *("--protocol", "kerong", "--doors", "4", "--spring-delay", "0.02"),
        *("--script", str(script), "--run", "stick-sensor 4 open; doors json"),
        *("--port-link", str(paths["doors"]), "--scanner-link", str(paths["scanner"])),
        *("--config-out", str(paths["kiosk.toml"]), "--state-file", str(paths["state.json"])),
    )
    said = [await sim.readline() for _ in range(4)]
    assert said[:3] == ["door 2: jammed", "door 1: occupied", "door 4: sensor stuck open"]
    assert json.loads(said[3])["doors"][1]["jammed"] is True
    config = tomllib.loads(paths["kiosk.toml"].read_text(encoding="utf-8"))
    assert config == sim.config
    assert config["doors"]["serial"]["port"] == str(paths["doors"])
    assert config["scanner"]["port"] == str(paths["scanner"])
    assert paths["doors"].is_symlink()
    assert paths["scanner"].is_symlink()

    async with sim.door_bank(config) as bank:
        states = await bank.read_states()
        assert states[1].occupied  # Kerong IR bits
        assert not states[2].occupied
        assert states[4].is_open  # the stuck sensor
        assert not states[3].is_open
        assert (await bank.unlock(3)).outcome is UnlockOutcome.OPENED
    async with sim.door_bank(config, expect_open=False) as bank:
        assert (await bank.unlock(2)).outcome is UnlockOutcome.OPEN_NOT_DETECTED

    # The state file follows the doors with no command: the kiosk opened door 3.
    await _until(lambda: _state(paths["state.json"])["doors"][2]["state"] == "open")
    assert _state(paths["state.json"])["running"] is True

    assert sim.process.stdin is not None
    sim.process.stdin.close()  # end of input stops it
    assert await sim.finish() == (0, "")
    assert not paths["doors"].exists()
    assert not paths["scanner"].is_symlink()
    assert _state(paths["state.json"])["running"] is False


def _state(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


async def _until(check: Callable[[], bool]) -> None:
    """Waits for ``check()``, polling: it reads what another process writes, so there is no
    event to wait on."""
    async with asyncio.timeout(DEADLINE_S):
        while True:
            if check():
                return
            await asyncio.sleep(0.05)


async def _scan_until_read(sim: Sim, codes: AsyncGenerator[str, None], code: str) -> str:
    """Scans ``code`` until the kiosk's reader yields a code, which it returns.

    The reader opens its port in a worker thread, and opening drops input already waiting, so a
    code scanned before that moment is lost; there is no telling from here when it has happened.
    """
    first = asyncio.ensure_future(anext(codes))
    try:
        async with asyncio.timeout(DEADLINE_S):
            while not first.done():
                command = code if sim.scanner_only else f"scan {code}"
                assert await sim.command(command) == f"scanned {code!r}"
                await asyncio.wait({first}, timeout=0.5)
        return first.result()
    finally:
        if not first.done():
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first


@pytest.mark.parametrize("how", ["quit", "exit", "eof", "sigint", "sigterm", "sigint-no-input"])
async def test_every_way_of_stopping_is_clean(
    start_sim: Callable[..., Awaitable[Sim]], tmp_path: Path, how: str
) -> None:
    link = tmp_path / "doors"
    no_input = ["--no-input"] if how.endswith("no-input") else []
    sim = await start_sim("--doors", "2", "--port-link", str(link), *no_input)
    if no_input:
        assert await sim.readline() == "serving; Ctrl-C stops"
    else:
        assert await sim.command("jam 1") == "door 1: jammed"  # it is reading commands
    assert sim.process.stdin is not None
    if how in ("quit", "exit"):
        await sim.send(how)
    elif how == "eof":
        sim.process.stdin.close()
    else:
        sim.process.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)

    status, rest = await sim.finish()

    assert (status, rest) == (0, "")
    assert not link.is_symlink()


def test_a_reader_that_goes_away_stops_it_quietly(tmp_path: Path) -> None:
    link = tmp_path / "doors"
    with subprocess.Popen(
        [*SIM, "bank", "--doors", "300", "--port-link", str(link)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None
        assert process.stdin is not None
        assert process.stderr is not None
        try:
            assert process.stdout.readline().startswith(b"locker-sim bank: 300 doors")
            process.stdout.close()  # as `locker-sim bank | head -1` does
            with contextlib.suppress(BrokenPipeError):  # it may be gone before all are written
                process.stdin.write(b"doors\n" * 3)
                process.stdin.flush()
            with contextlib.suppress(BrokenPipeError):  # closed even when the flush fails
                process.stdin.close()
            status = process.wait(timeout=DEADLINE_S)
            errors = process.stderr.read()
        finally:
            if process.poll() is None:
                process.kill()

    assert status == 1
    assert errors == b""
    assert not link.is_symlink()


def test_the_interactive_console_prompts_and_stops_at_ctrl_d() -> None:
    # Keys are typed as a person types them: each line once its prompt is on the screen. Typed
    # ahead of the prompt, the Ctrl-D would be lost, not by the simulator but by the terminal:
    # in canonical mode the kernel queues a typed-ahead Ctrl-D as an end of line holding a NUL
    # byte, and readline, which switches the terminal to raw mode for each prompt, then reads
    # that NUL (a no-op key) instead of an end of input, and waits for more keys.
    with _Terminal([*SIM, "bank", "--doors", "2"]) as terminal:
        for prompts, keys in enumerate((b"jam 2\n", b"wiggle\n", b"\x04"), 1):
            terminal.wait_for(lambda screen, n=prompts: screen.count(PROMPT) >= n)
            terminal.type(keys)
        status = terminal.wait_for_exit()
        screen = terminal.screen

    assert status == 0
    assert f"{PROMPT}jam 2\r\ndoor 2: jammed" in screen
    assert "error: unknown command 'wiggle'" in screen
    assert "type 'help' for commands, 'quit' to stop" in screen


class _Terminal:
    """A program on a pseudo-terminal, as a field tech runs it in a terminal window."""

    DEADLINE_S = 30.0  # only a hung program waits this long

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.screen = ""
        self._output = b""

    def __enter__(self) -> _Terminal:
        self._controller, self._terminal = os.openpty()
        # A dumb terminal: readline then writes no escape sequences (bracketed paste) around
        # the prompt, and no user's inputrc changes the keys.
        env = os.environ | {"TERM": "dumb", "INPUTRC": "/dev/null"}
        self.process = subprocess.Popen(
            self.args, stdin=self._terminal, stdout=self._terminal, stderr=self._terminal, env=env
        )
        return self

    def __exit__(self, *_: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self._controller)
        os.close(self._terminal)

    def type(self, keys: bytes) -> None:
        os.write(self._controller, keys)

    def wait_for(self, done: Callable[[str], bool]) -> None:
        """Reads the screen until ``done(screen)``; fails if the program ends or hangs first."""
        deadline = time.monotonic() + self.DEADLINE_S
        while not done(self.screen):
            assert self.process.poll() is None, f"ended early; the screen: {self.screen!r}"
            assert time.monotonic() < deadline, f"hung; the screen: {self.screen!r}"
            self._read(0.1)

    def wait_for_exit(self) -> int:
        """Reads the screen until the program ends; its exit status."""
        deadline = time.monotonic() + self.DEADLINE_S
        while self.process.poll() is None:
            assert time.monotonic() < deadline, f"hung; the screen: {self.screen!r}"
            self._read(0.1)
        self._read(0)  # what it wrote last
        return self.process.returncode

    def _read(self, wait_s: float) -> None:
        # Reading as it comes also keeps the program from blocking on a full terminal.
        while select.select([self._controller], [], [], wait_s)[0]:
            self._output += os.read(self._controller, 65536)
            wait_s = 0
        self.screen = self._output.decode(errors="replace")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--doors", "0"], "a bank needs at least 1 door, got 0"),
        (["--doors", "x"], "argument --doors: invalid int value: 'x'"),
        (["--sizes", "small=2,tiny=3"], "argument --sizes: unknown size 'tiny'"),
        (["--doors", "20", "--sizes", "small=8,medium=6"], "adds up to 14 doors, not 20"),
        (["--doors", "1601"], "1601 doors do not fit on 8A/80 boards: at most 1600"),
        (["--protocol", "kerong", "--doors", "257"], "at most 256 (16 boards of 16 locks)"),
        (["--protocol", "rs232", "--doors", "2"], "argument --protocol: invalid choice: 'rs232'"),
        (["--doors", "2", "--boards", "1:8,33:8"], "8A/80 board addresses are 1-32, not 33"),
        (["--doors", "2", "--polarity", "set_means_open"], "apply to kerong boards only"),
        (["--doors", "2", "--spring-delay", "-1"], "expected 0-60 seconds, got -1"),
        (["--doors", "2", "--terminator", "tab"], "expected cr, lf or crlf, got 'tab'"),
        (["--doors", "2", "--run", "jam 3"], "--run command 1: jam: no door 3; doors are 1-2"),
        (["--doors", "2", "--script", "/no/such/file"], "cannot read /no/such/file"),
        (["--doors", "2", "--port-link", "/no/such/dir/doors"], "link /no/such/dir/doors: No such"),
        (["--doors", "2", "--config-out", "/no/such/dir/k.toml"], "--config-out /no/such/dir"),
        (["--doors", "2", "--state-file", "/no/such/dir/s.json"], "--state-file /no/such/dir"),
        ([], "give the number of doors, the size mix, or both"),
        (["--doors", "2", "--locks-per-board", "51"], "8A/80 boards have 1-50 locks, not 51"),
        (["--doors", "2", "--boards", "1:x"], "lock count of board 1 must be a whole number"),
        (["--doors", "40", "--boards", "1:8,2:8"], "16 locks in all, too few for 40 doors"),
        (["--doors", "2", "--run", "delay soon"], "'soon' is not a number of seconds"),
        (["--doors", "2", "--run", "garbage zz"], "expected bytes in hex"),
        (
            ["--doors", "2", "--port-link", "/tmp/same", "--state-file", "/tmp/./same"],
            "--port-link and --state-file name the same file",
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bank", *args])

    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("locker-sim bank: error: ")
    assert message in line
    assert line.endswith("(see locker-sim bank --help)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "locker-sim: error: the following arguments are required: COMMAND"),
        (["frob"], "locker-sim: error: argument COMMAND: invalid choice: 'frob'"),
        (["bank", "--doors", "2", "extra"], "locker-sim: error: unrecognized arguments: extra"),
        (["scanner", "--terminator", "tab"], "locker-sim scanner: error: argument --terminator"),
        (["scanner", "--link", "/no/such/dir/scanner"], "link /no/such/dir/scanner: No such file"),
    ],
)
def test_bad_subcommands_and_scanner_arguments_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)

    assert exited.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert message in line


def test_no_pseudo_terminal_to_be_had_exits_1_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_pty() -> tuple[int, int]:
        raise OSError(errno.EAGAIN, "Out of pseudo-terminals")

    monkeypatch.setattr(pty_device.os, "openpty", no_pty)

    assert main(["bank", "--doors", "2"]) == 1
    assert main(["scanner"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "locker-sim bank: error: cannot open a pseudo-terminal: Out of pseudo-terminals",
        "locker-sim scanner: error: cannot open a pseudo-terminal: Out of pseudo-terminals",
    ]


async def test_the_scanner_command_sends_each_line_as_a_code(tmp_path: Path) -> None:
    link = tmp_path / "scanner"
    process = await asyncio.create_subprocess_exec(
        *SIM,
        *("scanner", "--terminator", "crlf", "--link", str(link)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    sim = Sim(process)
    sim.scanner_only = True  # each line is a code, not a console command
    try:
        assert await sim.readline() == f"scanner: {link}; type codes, one per line"
        assert link.is_symlink()
        codes = create_scanner(parse_scanner_config({"port": str(link)})).codes()
        try:
            assert await _scan_until_read(sim, codes, "(00)340123450000000018") == (
                "(00)340123450000000018"
            )
        finally:
            await codes.aclose()
        assert (
            await sim.command("café")
            == "error: a scanned code is non-empty ASCII on one line, got 'café'"
        )
        assert process.stdin is not None
        process.stdin.close()
        assert await sim.finish() == (0, "")
        assert not link.is_symlink()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_a_link_over_a_real_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "ttyUSB0"
    precious.write_text("not mine", encoding="utf-8")

    with pytest.raises(SystemExit) as exited:
        main(["bank", "--doors", "1", "--scanner-link", str(precious)])

    assert exited.value.code == 2
    assert "exists and is not a symbolic link" in capsys.readouterr().err
    assert precious.read_text(encoding="utf-8") == "not mine"


LOCKER_SIM = str(Path(sys.executable).with_name("locker-sim"))


@pytest.mark.parametrize("program", [[*SIM], [LOCKER_SIM]], ids=["module", "script"])
def test_the_installed_commands_exit_2_without_a_traceback(program: list[str]) -> None:
    if not Path(program[0]).exists():
        pytest.skip("the locker-sim console script is not installed")
    done = subprocess.run(
        [*program, "bank", "--doors", "3", "--sizes", "small=1,huge=2"],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )

    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("locker-sim bank: error: argument --sizes: unknown size 'huge'")
    assert done.stdout == ""
