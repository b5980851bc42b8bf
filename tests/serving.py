"""A real uvicorn server over loopback for tests that drive the ASGI app by HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

__all__ = ["readyz", "serving", "wait_until"]


@contextmanager
def serving(app: Starlette, *, ready_timeout: float = 120.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread until the block
    ends; yields its base URL once ``/readyz`` answers 200, and checks it stopped."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Accepted sockets inherit it. asyncio sets it only on sockets whose proto is
    # IPPROTO_TCP (this one's is 0); without it every response waits ~40 ms for the
    # client's delayed ACK of its headers.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.05)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
        assert not thread.is_alive(), "the server did not stop"


def wait_until(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Poll ``check`` every 0.1 s; fail naming ``what`` after ``timeout`` seconds (a bound
    that turns a hang into a failure, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def readyz(base: str, timeout: float) -> tuple[int, dict[str, Any]]:
    """``GET /readyz``: (status, JSON body), or (0, the transport error) when refused."""
    try:
        response = httpx.get(f"{base}/readyz", timeout=timeout)
    except httpx.TransportError as exc:
        return 0, {"transport": str(exc)}
    return response.status_code, response.json()
