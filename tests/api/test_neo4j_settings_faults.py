"""Bad Neo4j settings and server faults, as an operator meets them: the ``hippograph``
command (a real process) or the store refuses with one clear line naming the variable
to check (``NEO4J_URI``, ``NEO4J_USER``/``NEO4J_PASSWORD``, ``NEO4J_DATABASE``) or the
cause (a server older than 5.26), never the password, and writes nothing; a server
restarted under a running service is recovered from without a restart of hippograph.

The tests that need a server use the suite's (``NEO4J_URI``, ``make test``); the
restart test starts one of its own, since it stops it.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from hippograph.api.bench.processes import (
    REMEMBER,
    GraphQLClient,
    ServerProcess,
    hippograph_command,
    hippograph_env,
)
from hippograph.api.settings import Settings, open_store
from hippograph.graph.model import StoreUnavailable
from hippograph.graph.neo4j_connection import MIN_VERSION, check_version, version_tuple
from hippograph.graph.neo4j_statements import COMPONENTS
from tests.neo4j_server import Neo4jServer
from tests.serving import readyz, wait_until
from tests.stores import neo4j_settings_env, neo4j_skip_reason, wipe_neo4j

PASSWORD = "not-the-password-9f3b"  # must never be printed
STATS = "query Stats($ns: String!) { stats(namespace: $ns) { memories } }"
# Short driver timeouts so that the outage answers within seconds.
TIMEOUTS = {
    "neo4j_connection_timeout_s": "2",
    "neo4j_acquisition_timeout_s": "4",
    "neo4j_retry_time_s": "3",
    "ready_timeout_s": "3",
}
BOUND_S = 120.0  # a hang fails the test instead of stalling it; not a timing assertion


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(data_dir: Path, store: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*hippograph_command(), *args],
        env=hippograph_env(data_dir, store=store),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _one_line_failure(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def neo4j_env() -> dict[str, str]:
    """The suite server's variables, its database emptied (skips without a server)."""
    reason = neo4j_skip_reason()
    if reason:
        pytest.skip(reason)
    wipe_neo4j()
    return neo4j_settings_env()


# -- unreachable, wrong credentials, unknown database -------------------------------------


def test_an_unreachable_server_is_one_line_naming_neo4j_uri_and_never_the_password(
    tmp_path: Path,
) -> None:
    uri = f"bolt://127.0.0.1:{_free_port()}"  # nothing listens there
    done = _run(
        tmp_path / "data",
        {"NEO4J_URI": uri, "NEO4J_USER": "neo4j", "NEO4J_PASSWORD": PASSWORD},
        "stats",
        "-n",
        "ns",
    )
    line = _one_line_failure(done, uri, "NEO4J_URI", "unavailable")
    assert PASSWORD not in done.stderr + done.stdout, line


@pytest.mark.neo4j
def test_a_wrong_password_names_neo4j_user_and_neo4j_password_and_writes_nothing(
    tmp_path: Path, neo4j_env: dict[str, str]
) -> None:
    wrong = {**neo4j_env, "NEO4J_PASSWORD": PASSWORD}
    done = _run(tmp_path / "data", wrong, "remember", "-n", "ns", "never written")
    line = _one_line_failure(done, neo4j_env["NEO4J_URI"], "NEO4J_USER", "NEO4J_PASSWORD")
    assert PASSWORD not in done.stderr + done.stdout, line
    assert neo4j_env["NEO4J_PASSWORD"] not in done.stderr + done.stdout, line
    counted = _run(tmp_path / "data", neo4j_env, "stats", "-n", "ns", "--json")
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout)["memories"] == 0


@pytest.mark.neo4j
def test_an_unknown_database_names_neo4j_database_and_writes_nothing(
    tmp_path: Path, neo4j_env: dict[str, str]
) -> None:
    wrong = {**neo4j_env, "NEO4J_DATABASE": "nosuchdb"}
    done = _run(tmp_path / "data", wrong, "remember", "-n", "ns", "never written")
    line = _one_line_failure(done, "NEO4J_DATABASE", "'nosuchdb'")
    assert neo4j_env["NEO4J_PASSWORD"] not in done.stderr + done.stdout, line
    counted = _run(tmp_path / "data", neo4j_env, "stats", "-n", "ns", "--json")
    assert json.loads(counted.stdout)["memories"] == 0, counted.stderr


@pytest.mark.neo4j
def test_a_password_without_neo4j_user_is_for_user_neo4j(
    tmp_path: Path, neo4j_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert neo4j_env.get("NEO4J_USER") == "neo4j"  # the suite's server: user neo4j
    monkeypatch.delenv("NEO4J_USER", raising=False)
    monkeypatch.delenv("NEO4J_DATABASE", raising=False)
    settings = Settings(data_dir=tmp_path, encoder="hashing")
    assert settings.neo4j_user is None and settings.neo4j_password is not None
    store = open_store(settings)
    try:
        store.ping()
        assert store.namespaces() == []
    finally:
        store.close()
    without_user = {k: v for k, v in neo4j_env.items() if k != "NEO4J_USER"}
    done = _run(tmp_path / "data", without_user, "remember", "-n", "ns", "hello")
    assert done.returncode == 0, done.stderr


# -- the server's version ------------------------------------------------------------------


@pytest.mark.neo4j
def test_the_version_check_passes_the_real_servers_answer(
    neo4j_env: dict[str, str],
) -> None:
    import neo4j

    auth = (neo4j_env["NEO4J_USER"], neo4j_env["NEO4J_PASSWORD"])
    with (
        neo4j.GraphDatabase.driver(neo4j_env["NEO4J_URI"], auth=auth) as driver,
        driver.session() as session,
    ):
        rows = [r.data() for r in session.run(COMPONENTS.cypher)]
    kernel = next(r for r in rows if r["name"] == "Neo4j Kernel")
    version = kernel["versions"][0]
    assert version_tuple(version) >= MIN_VERSION, version
    check_version(version, neo4j_env["NEO4J_URI"])  # does not raise
    # the same answer from a server one minor version older is refused
    major, minor = version_tuple(version)[:2]
    older = f"{major}.{minor - 1}.0" if (major, minor) == MIN_VERSION else "5.25.1"
    with pytest.raises(StoreUnavailable, match=rf"version {older}; .*Neo4j 5\.26 or later"):
        check_version(older, neo4j_env["NEO4J_URI"])


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ("5.26.0", True),
        ("5.26.30", True),
        ("5.27.1", True),
        ("2025.01.0", True),  # calendar versions come after 5.26
        ("2025.10.1-aura", True),
        ("5.25.9", False),
        ("5.9.0", False),  # numeric, not text, comparison: 9 < 26
        ("5.3", False),
        ("4.4.30", False),
        ("", False),
        ("dev", False),
    ],
)
def test_versions_below_5_26_are_refused_naming_the_version_found_and_the_minimum(
    version: str, supported: bool
) -> None:
    if supported:
        check_version(version, "bolt://db:7687")
        return
    with pytest.raises(StoreUnavailable) as refused:
        check_version(version, "bolt://db:7687")
    message = str(refused.value)
    assert "5.26" in message and "bolt://db:7687" in message
    assert (version or "unknown") in message


# -- a transaction that cannot finish ---------------------------------------------------


@pytest.mark.neo4j
def test_a_write_held_up_past_the_transaction_timeout_is_rolled_back_as_store_unavailable(
    neo4j_env: dict[str, str],
) -> None:
    """Another connection holds the namespace's write lock (as one that died mid-write
    does until the server notices): the store's write waits for it, the server aborts
    it after the transaction timeout, and the call raises StoreUnavailable naming the
    variable, with nothing of it written."""
    import neo4j

    from hippograph.graph.model import Memory
    from hippograph.graph.neo4j_store import Neo4jStore
    from hippograph.graph.store import WriteBatch

    store = Neo4jStore(
        neo4j_env["NEO4J_URI"],
        neo4j_env["NEO4J_USER"],
        neo4j_env["NEO4J_PASSWORD"],
        transaction_timeout=2.0,
        retry_time=0.0,
    )
    auth = (neo4j_env["NEO4J_USER"], neo4j_env["NEO4J_PASSWORD"])
    try:
        store.write("ns", WriteBatch(memories=[Memory(id="first", namespace="ns", content="a")]))
        with (
            neo4j.GraphDatabase.driver(neo4j_env["NEO4J_URI"], auth=auth) as driver,
            driver.session() as session,
        ):
            holder = session.begin_transaction()
            holder.run("MATCH (n:HippographNamespace {name: 'ns'}) SET n.held = true").consume()
            try:
                with pytest.raises(StoreUnavailable) as raised:
                    store.write(
                        "ns",
                        WriteBatch(memories=[Memory(id="second", namespace="ns", content="b")]),
                    )
            finally:
                holder.rollback()
        message = str(raised.value)
        assert "HIPPOGRAPH_NEO4J_TRANSACTION_TIMEOUT_S" in message, message
        assert neo4j_env["NEO4J_PASSWORD"] not in message
        assert [m.id for m in store.get("ns", ["first", "second"])] == ["first"]
        assert store.generation("ns") == 1
        # the lock released, the same write goes through
        store.write("ns", WriteBatch(memories=[Memory(id="second", namespace="ns", content="b")]))
        assert store.generation("ns") == 2
    finally:
        store.close()


# -- a restart under a running service ----------------------------------------------------


@pytest.mark.neo4j
def test_a_neo4j_restart_under_a_running_service_is_recovered_from(
    tmp_path: Path, own_neo4j: Neo4jServer
) -> None:
    server = ServerProcess(
        tmp_path / "data", tmp_path / "serve.log", store=own_neo4j.env(), **TIMEOUTS
    )
    try:
        server.wait_ready()
        with GraphQLClient(server.base, timeout=BOUND_S) as client:
            client.data(REMEMBER, {"ns": "ns", "input": {"id": "before", "content": "before"}})
            own_neo4j.stop()  # a clean shutdown, as an upgrade or a restart does
            wait_until(lambda: readyz(server.base, BOUND_S)[0] == 503, "/readyz to answer 503")
            response = client.post(STATS, {"ns": "ns"})
            errors = response.json()["errors"]
            assert [e["extensions"]["code"] for e in errors] == ["STORE_UNAVAILABLE"], errors
            assert errors[0]["extensions"]["retryable"] is True
            message = errors[0]["message"]
            assert own_neo4j.uri in message and "NEO4J_URI" in message and "\n" not in message
            assert own_neo4j.password not in response.text
            # the request metrics still answer (the per-namespace counts wait for the store)
            assert httpx.get(f"{server.base}/metrics", timeout=BOUND_S).status_code == 200
            own_neo4j.start()
            wait_until(lambda: readyz(server.base, BOUND_S)[0] == 200, "/readyz answering 200")
            client.data(REMEMBER, {"ns": "ns", "input": {"id": "after", "content": "after"}})
            assert client.data(STATS, {"ns": "ns"})["stats"]["memories"] == 2
        assert server.process.poll() is None  # the same process throughout
        assert own_neo4j.password not in server.log.read_text(errors="replace")
    finally:
        server.kill()
