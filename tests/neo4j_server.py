"""A real Neo4j 5.26 server for the test suite, started from ``tools/neo4j``.

Two uses:

- ``python tests/neo4j_server.py -- CMD ...`` (what ``make test`` and ``.ci/run`` do):
  starts one server on free loopback ports over a fresh temporary data directory, waits
  until Bolt accepts connections, runs ``CMD`` with ``NEO4J_URI``, ``NEO4J_USER``,
  ``NEO4J_PASSWORD``, ``NEO4J_HTTP_URL`` and ``HIPPOGRAPH_NEO4J_TRACE`` (the file every
  store appends the names of the statements it ran to) set, then stops the server, also
  when ``CMD`` fails or this script is interrupted, and exits with ``CMD``'s status.
  Without Java the command runs anyway with ``HIPPOGRAPH_NEO4J_SKIP_REASON`` set, so the
  Neo4j half skips and says why.
- :class:`Neo4jServer` in tests that need a server of their own, for instance to kill it
  with SIGKILL mid-write and start it again on the same data directory.

The launcher (``tools/neo4j``, built by ``make neo4j-build``) prints
``NEO4J_URI=bolt://127.0.0.1:PORT`` once Bolt accepts connections; that line is what
this module waits for.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["LAUNCHER", "Neo4jServer", "java_missing", "main"]

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "neo4j"
LAUNCHER = "org.hippograph.neo4j.Launcher"
USER = "neo4j"


def java_missing() -> str | None:
    """Why no server can be started here (None when it can)."""
    if shutil.which("java") is None:
        return "java is not on PATH: install a JDK 17+ to run the Neo4j half of the suite"
    if not (TOOL / "target" / "classes").is_dir() or not (TOOL / "target" / "lib").is_dir():
        return "tools/neo4j is not built: run `make neo4j-build` (needs Maven)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Neo4jServer:
    """One Neo4j server process over ``data_dir`` (kept between :meth:`start` calls, so a
    killed server restarts on what it had written), Bolt and HTTP on free loopback ports
    chosen once."""

    def __init__(
        self,
        data_dir: Path,
        *,
        password: str | None = None,
        heap: str = "1g",
        pagecache: str = "128m",
        log: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.password = password or "hg-" + secrets.token_hex(8)
        self.heap = heap
        self.pagecache = pagecache
        self.bolt_port = _free_port()
        self.http_port = _free_port()
        self.log = log or self.data_dir.parent / f"{self.data_dir.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def env(self) -> dict[str, str]:
        """The variables a hippograph process needs to use this server."""
        return {
            "NEO4J_URI": self.uri,
            "NEO4J_USER": USER,
            "NEO4J_PASSWORD": self.password,
            "NEO4J_HTTP_URL": self.http_url,
        }

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 180.0) -> Neo4jServer:
        """Start the server and return once Bolt accepts connections."""
        reason = java_missing()
        if reason:
            raise RuntimeError(reason)
        if self._process is not None and self._process.poll() is None:
            raise RuntimeError("the server is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "NEO4J_DATA_DIR": str(self.data_dir),
            "NEO4J_PASSWORD": self.password,
            "NEO4J_BOLT_PORT": str(self.bolt_port),
            "NEO4J_HTTP_PORT": str(self.http_port),
            "NEO4J_PAGECACHE": self.pagecache,
        }
        classpath = f"{TOOL / 'target' / 'classes'}{os.pathsep}{TOOL / 'target' / 'lib' / '*'}"
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                ["java", f"-Xmx{self.heap}", "-XX:+UseSerialGC", "-cp", classpath, LAUNCHER],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        assert self._process.stdout is not None
        ready = threading.Event()
        thread = threading.Thread(
            target=self._pump, args=(self._process.stdout, ready), daemon=True
        )
        thread.start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.2):
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"Neo4j exited with status {self._process.returncode} before Bolt was up; "
                    f"see {self.log}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"Neo4j did not accept Bolt within {timeout:.0f} s; see {self.log}"
                )
        return self

    def _pump(self, stream: object, ready: threading.Event) -> None:
        """Copy the server's output to the log; set ``ready`` at the ``NEO4J_URI=`` line."""
        with self.log.open("ab") as log:
            for line in iter(stream.readline, b""):  # type: ignore[attr-defined]
                log.write(line)
                log.flush()
                if line.startswith(b"NEO4J_URI="):
                    ready.set()

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL after ``timeout``."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM killer would."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait()

    def __enter__(self) -> Neo4jServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    """``neo4j_server.py -- CMD ...``: run CMD beside a fresh server (see the module doc)."""
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: neo4j_server.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1 :]
    env = dict(os.environ)
    if env.get("NEO4J_URI"):
        print(f"neo4j: using NEO4J_URI={env['NEO4J_URI']} from the environment", flush=True)
        return subprocess.call(command, env=env)
    reason = java_missing()
    if reason:
        print(f"neo4j: not started: {reason}; the Neo4j half of the suite skips", flush=True)
        env["HIPPOGRAPH_NEO4J_SKIP_REASON"] = reason
        return subprocess.call(command, env=env)
    workdir = Path(tempfile.mkdtemp(prefix="hippograph-neo4j-"))
    server = Neo4jServer(workdir / "neo4j", heap="1500m", pagecache="256m")
    stopping = False

    def interrupted(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        started = time.monotonic()
        server.start()
        print(
            f"neo4j: Neo4j 5.26 up at {server.uri} in {time.monotonic() - started:.1f} s "
            f"(log: {server.log})",
            flush=True,
        )
        env.update(server.env())
        env["HIPPOGRAPH_NEO4J_TRACE"] = str(workdir / "statements.trace")
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 130 if not stopping else 143
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
