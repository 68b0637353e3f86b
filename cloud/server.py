"""Running the app under uvicorn on a socket we bind ourselves.

Binding first lets us fall back to a free port (the machine's own services hold
the usual ones) and report the real address before the first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from fastapi import FastAPI


def bind(host: str, port: int, *, fallback_to_free: bool = False) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (port 0: any free port).

    Raises:
        OSError: the port is taken and ``fallback_to_free`` is False.
    """
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle off (TCP_NODELAY) only on
    # accepted sockets whose proto is IPPROTO_TCP, and accepted sockets inherit the
    # listener's. With Nagle on, uvicorn's separate header and body writes wait for
    # the client's delayed ACK: ~40 ms added to every response (docs/BENCHMARKS.md).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        if not fallback_to_free or port == 0:
            sock.close()
            raise
        sock.bind((host, 0))
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server without its signal capture.

    uvicorn re-raises a captured SIGINT after shutting down, which turns a clean
    Ctrl-C into a KeyboardInterrupt and exit status 130; `serve` handles the
    signals itself so that a stop requested by signal is an ordinary, clean exit.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _on_stop_signals(server: uvicorn.Server) -> Callable[[], None]:
    """Makes SIGINT/SIGTERM ask the server to stop (a second one: stop now)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()

    def request_exit() -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_exit)

    def restore() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    return restore


async def serve(
    app: FastAPI,
    sock: socket.socket,
    *,
    on_ready: Callable[[str], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
    log_level: str = "info",
    log_to_terminal: bool = True,
) -> None:
    """Serves until SIGINT/SIGTERM (uvicorn's handlers) or ``stop`` is set, then shuts
    down cleanly (lifespan included).

    ``on_ready`` gets the base URL once the app has started (database open). Without
    ``log_to_terminal``, uvicorn's records go to the root logger's handlers rather than to
    uvicorn's own console handlers (the demo's touchscreen owns the terminal).
    """
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        log_config=uvicorn.config.LOGGING_CONFIG if log_to_terminal else None,
    )
    server = _Server(config)
    restore_signals = _on_stop_signals(server)
    try:
        await _run(server, sock, f"http://{host}:{port}", on_ready, stop)
    finally:
        restore_signals()


async def _run(
    server: uvicorn.Server,
    sock: socket.socket,
    url: str,
    on_ready: Callable[[str], Awaitable[None]] | None,
    stop: asyncio.Event | None,
) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # startup failed: surface the error
            return
        await asyncio.sleep(0.05)
    if on_ready is not None:
        await on_ready(url)
    if stop is None:
        await task
        return
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopper.cancel()
    await task
