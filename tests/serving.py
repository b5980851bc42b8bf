"""A real uvicorn server over loopback for tests that drive the ASGI app by HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from starlette.applications import Starlette

__all__ = ["serving"]


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
