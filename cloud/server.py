"""Running the app under uvicorn on a socket we bind ourselves.

Binding first lets us fall back to a free port (the machine's own services hold
the usual ones) and report the real address before the first request.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import uvicorn
from fastapi import FastAPI


def bind(host: str, port: int, *, fallback_to_free: bool = False) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (port 0: any free port).

    Raises:
        OSError: the port is taken and ``fallback_to_free`` is False.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        if not fallback_to_free or port == 0:
            sock.close()
            raise
        sock.bind((host, 0))
    return sock


async def serve(
    app: FastAPI,
    sock: socket.socket,
    *,
    on_ready: Callable[[str], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
    log_level: str = "info",
) -> None:
    """Serves until SIGINT/SIGTERM (uvicorn's handlers) or ``stop`` is set, then shuts
    down cleanly (lifespan included).

    ``on_ready`` gets the base URL once the app has started (database open).
    """
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # startup failed: surface the error
            return
        await asyncio.sleep(0.05)
    if on_ready is not None:
        await on_ready(f"http://{host}:{port}")
    if stop is None:
        await task
        return
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopper.cancel()
    await task
