"""``hippograph bench load``, the server: :func:`hippograph.api.app.create_app` under
uvicorn in a separate process on a free loopback port, serving a data directory with
the real model (``minilm``) or the hashing encoder at the data's 384 dimensions
(``hashing``), until the block of :func:`serving` ends.

The stored vectors are the generator's either way; the data directory's saved indexes
are labelled with the chosen encoder's name (their contents do not depend on the encoder
that is named), so the server does not rebuild them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from hippograph.api.bench.processes import free_port, server_env
from hippograph.api.bench.synthetic import DIM
from hippograph.embeddings.encoder import MODEL_NAME

__all__ = ["ENCODERS", "Served", "run_server", "serving"]

READY_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 120.0

ENCODERS = ("minilm", "hashing")

# The server process: the app over a graph with the chosen 384-d encoder.
_SERVER = r"""
import sys
from hippograph.api.bench.load_server import run_server
sys.exit(run_server(int(sys.argv[1])))
"""


def run_server(port: int) -> int:
    """The server process: settings from the environment, the settings' encoder (the
    hashing one at the data's dimension), uvicorn on 127.0.0.1:``port`` until SIGTERM."""
    import faiss
    import uvicorn

    from hippograph.api.app import configure_logging, create_app
    from hippograph.api.settings import Settings, make_encoder, open_store
    from hippograph.embeddings import HashingEncoder
    from hippograph.graph import MemoryGraph

    settings = Settings()
    faiss.omp_set_num_threads(settings.faiss_threads)
    store = open_store(settings)
    graph = MemoryGraph(
        settings.data_dir,
        encoder=HashingEncoder(dim=DIM)
        if settings.encoder == "hashing"
        else make_encoder(settings),
        config=settings.graph_config(),
        store=store,
    )
    app = create_app(settings, graph=graph)  # the app owns and closes the graph
    configure_logging(settings.log_level)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        server_header=False,
    )
    server = uvicorn.Server(config)

    # uvicorn shuts down on SIGTERM, then re-raises it to the handler it found: this one,
    # so a clean stop exits 0 (as ``hippograph serve`` does)
    def note(signum: int, frame: FrameType | None) -> None:
        pass

    signal.signal(signal.SIGTERM, note)
    signal.signal(signal.SIGINT, note)
    server.run()
    return 0 if server.started else 1


@dataclass
class Served:
    """A running server: its base URL, its log, and (once stopped) its exit code."""

    url: str
    log_path: Path
    process: subprocess.Popen[bytes]
    ready_s: float
    exit_code: int | None = None


@contextmanager
def serving(
    data_dir: Path,
    *,
    encoder: str = "hashing",
    log_path: Path | None = None,
    worker_threads: int | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> Iterator[Served]:
    """Serve ``data_dir`` in a separate process on a free loopback port until the block
    ends; then SIGTERM (a clean shutdown, its exit code in ``Served.exit_code``), or
    SIGKILL if it has not stopped within two minutes.

    The ``HIPPOGRAPH_*`` settings of the calling environment are not passed on: the
    server runs with the defaults, ``encoder`` (one of :data:`ENCODERS`; the saved indexes
    of ``data_dir`` are labelled for it, see the module docstring), the lifecycle
    schedule off and warnings-only logs.
    """
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
    _label_indexes(data_dir, encoder)
    log_path = log_path or data_dir.with_name(data_dir.name + "-server.log")
    port = free_port()
    env = server_env(data_dir, encoder, worker_threads)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(port)], env=env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the server exited ({process.returncode}) before it was ready:\n"
                    + _tail(log_path)
                )
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready within {ready_timeout_s:g} s")
            time.sleep(0.2)
        served = Served(url, log_path, process, time.perf_counter() - started)
        yield served
        process.send_signal(signal.SIGTERM)
        served.exit_code = process.wait(timeout=STOP_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _label_indexes(data_dir: Path, encoder: str) -> None:
    """Name ``encoder``'s model in the metadata of the vector indexes saved in
    ``data_dir``: the bench's vectors are the generator's, whichever encoder serves."""
    name = MODEL_NAME if encoder == "minilm" else f"hashing-{DIM}"
    for path in (data_dir / "derived").glob("*.json"):
        saved = json.loads(path.read_text())
        meta = saved.get("meta")
        if isinstance(meta, dict) and "model" in meta and meta["model"] != name:
            meta["model"] = name
            path.write_text(json.dumps(saved, indent=1))


def _tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(errors="replace") if path.is_file() else ""
    return "\n".join(text.splitlines()[-lines:])
