"""Multi-process safety: one process at a time opens a SQLite data directory.

A second ``hippograph`` process (a CLI import next to a running server, two CLI
commands at once) is refused at once with a message naming the directory and the
holder, exit code 1, nothing written. The lock is ``flock`` on ``DIR/hippograph.lock``
(``hippograph.api.settings``), so the kernel releases it when the holder dies, SIGKILL included.
Read-only commands (stats, get, check, export) are refused too: one rule, no exceptions.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hippograph.api.bench.crash_commands import write_jsonl
from hippograph.api.bench.crash_server import NAMESPACE, STATS
from hippograph.api.bench.processes import (
    REMEMBER,
    GraphQLClient,
    ServerProcess,
    hippograph,
    hippograph_command,
    hippograph_env,
)
from hippograph.api.settings import DataDirInUse, Settings, hold_data_dir, open_graph

# about the embedded SQLite store (the load driver, the data-dir lock)
pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("no_neo4j_env")]

StartServer = Callable[..., ServerProcess]  # the start_server fixture (conftest.py)

MEMORY = """
query Memory($ns: String!, $id: ID!) { memory(namespace: $ns, id: $id) { id } }"""


def _refusal(done: subprocess.CompletedProcess[str], data_dir: Path, pid: int, what: str) -> None:
    """Exit 1 and one line naming the directory, the holder's pid and its command."""
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"hippograph: error: data directory {data_dir} is in use by ")
    assert f"pid {pid} (hippograph {what}" in lines[0]
    assert "stop it, or send the work to the running server over GraphQL" in lines[0]


def _stats(data_dir: Path) -> dict[str, int]:
    done = hippograph(data_dir, "stats", "-n", NAMESPACE, "--json")
    assert done.returncode == 0, done.stderr
    stats: dict[str, int] = json.loads(done.stdout)
    return stats


def test_an_import_next_to_a_running_server_is_refused_and_writes_nothing(
    start_server: StartServer, data_dir: Path, tmp_path: Path
) -> None:
    server = start_server()
    with GraphQLClient(server.base) as client:
        client.data(REMEMBER, {"ns": NAMESPACE, "input": {"id": "served", "content": "served"}})
        source = tmp_path / "import.jsonl"
        write_jsonl(source, 50)
        done = hippograph(data_dir, "import", "-n", NAMESPACE, str(source))
        _refusal(done, data_dir, server.pid, "serve")
        # read-only commands are refused the same way
        for command in (["stats", "-n", NAMESPACE], ["check"]):
            _refusal(hippograph(data_dir, *command), data_dir, server.pid, "serve")
        assert client.data(STATS, {"ns": NAMESPACE})["stats"]["memories"] == 1
        assert client.data(MEMORY, {"ns": NAMESPACE, "id": "i0"})["memory"] is None
        # the server goes on writing
        client.data(REMEMBER, {"ns": NAMESPACE, "input": {"id": "after", "content": "after"}})
    assert server.stop() == 0
    assert not (data_dir / "hippograph.lock").read_text()  # emptied when released
    assert _stats(data_dir)["memories"] == 2  # the server's two, none of the import's
    done = hippograph(data_dir, "import", "-n", NAMESPACE, str(source))
    assert done.returncode == 0, done.stderr  # with the server gone, the import works
    assert _stats(data_dir)["memories"] == 52


def test_the_lock_dies_with_a_killed_server(start_server: StartServer, data_dir: Path) -> None:
    first = start_server()
    assert (data_dir / "hippograph.lock").read_text().startswith(f"{first.pid}\n")
    assert first.kill()
    second = start_server()  # the kernel released the flock of the killed process
    assert (data_dir / "hippograph.lock").read_text().startswith(f"{second.pid}\n")
    _refusal(hippograph(data_dir, "stats", "-n", NAMESPACE), data_dir, second.pid, "serve")
    # a second server on the same directory does not start (it logs the same message)
    third = start_server(ready=False)
    assert third.process.wait(timeout=60) != 0
    assert f"is in use by pid {second.pid}" in third.tail()
    with GraphQLClient(second.base) as client:
        client.data(REMEMBER, {"ns": NAMESPACE, "input": {"content": "still served"}})
    assert second.stop() == 0


def test_of_two_cli_commands_at_once_the_second_is_refused(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "big.jsonl"
    write_jsonl(source, 3_000)
    lock = data_dir / "hippograph.lock"
    importing = subprocess.Popen(
        [*hippograph_command(), "import", "-n", NAMESPACE, str(source)],
        env=hippograph_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().startswith(f"{importing.pid}\n")):
            assert importing.poll() is None, importing.communicate()
            assert time.monotonic() < deadline, "the import never took the lock"
            time.sleep(0.02)
        done = hippograph(data_dir, "remember", "-n", NAMESPACE, "--id", "late", "too late")
        still_importing = importing.poll() is None
        out, err = importing.communicate(timeout=300)
    finally:
        if importing.poll() is None:
            importing.kill()
    assert still_importing, "the import ended before the second command: no overlap tested"
    _refusal(done, data_dir, importing.pid, "import")
    assert importing.returncode == 0, err
    assert "imported 3000 memories" in out
    assert _stats(data_dir)["memories"] == 3_000  # the refused command wrote nothing
    done = hippograph(data_dir, "remember", "-n", NAMESPACE, "--id", "late", "in time")
    assert done.returncode == 0, done.stderr
    assert _stats(data_dir)["memories"] == 3_001


def test_graphs_opened_in_one_process_share_the_lock_until_the_last_closes(
    data_dir: Path,
) -> None:
    # In one process the lock is counted, not exclusive: the CLI and the in-process
    # server tests open and close graphs over one directory, sometimes two at a time.
    settings = Settings(data_dir=data_dir, encoder="hashing")
    with hold_data_dir(settings):
        first = open_graph(settings)
        second = open_graph(settings)
        first.close()
        refused = hippograph(data_dir, "stats", "-n", NAMESPACE)
        assert refused.returncode == 1 and "is in use by pid" in refused.stderr
        second.close()
        refused = hippograph(data_dir, "stats", "-n", NAMESPACE)
        assert refused.returncode == 1  # hold_data_dir still holds it
    assert hippograph(data_dir, "stats", "-n", NAMESPACE).returncode == 0


def test_data_dir_in_use_is_raised_in_python_too(start_server: StartServer, data_dir: Path) -> None:
    server = start_server()
    settings = Settings(data_dir=data_dir, encoder="hashing")
    with pytest.raises(DataDirInUse, match=f"in use by pid {server.pid}") as raised:
        open_graph(settings)
    assert raised.value.code == "DATA_DIR_IN_USE"
    with pytest.raises(DataDirInUse), hold_data_dir(settings):
        pass
