"""The Neo4j server of ``tools/neo4j`` as a person uses it through ``make neo4j``: auth on
with the password from ``NEO4J_PASSWORD``, a data directory that survives restarts,
Neo4j Browser over HTTP, a clear refusal of a bad setting.

Each test starts its own server (tests/neo4j_server.py) on free loopback ports.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import neo4j
import pytest

from tests.neo4j_server import LAUNCHER, TOOL, USER, Neo4jServer, java_missing

pytestmark = [
    pytest.mark.neo4j,
    pytest.mark.skipif(java_missing() is not None, reason=str(java_missing())),
]


def count_notes(server: Neo4jServer, password: str) -> int:
    with neo4j.GraphDatabase.driver(server.uri, auth=(USER, password)) as driver:
        records, _, _ = driver.execute_query("MATCH (n:LauncherNote) RETURN count(n) AS n")
        return int(records[0]["n"])


def test_data_survive_a_restart_and_the_password_follows_the_variable(tmp_path: Path) -> None:
    server = Neo4jServer(tmp_path / "neo4j", password="first-password")
    with server:
        with neo4j.GraphDatabase.driver(server.uri, auth=(USER, "first-password")) as driver:
            driver.execute_query("CREATE (:LauncherNote {text: 'kept'})")
        with (
            neo4j.GraphDatabase.driver(server.uri, auth=(USER, "wrong-password")) as driver,
            pytest.raises(neo4j.exceptions.AuthError),
        ):
            driver.verify_connectivity()
        page = httpx.get(f"{server.http_url}/browser/", timeout=30)
        assert page.status_code == 200 and "<title>Neo4j Browser</title>" in page.text

    with server:  # the same password again: a plain restart
        assert count_notes(server, "first-password") == 1

    server.password = "second-password"
    with server:
        assert count_notes(server, "second-password") == 1
        with (
            neo4j.GraphDatabase.driver(server.uri, auth=(USER, "first-password")) as driver,
            pytest.raises(neo4j.exceptions.AuthError),
        ):
            driver.verify_connectivity()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("NEO4J_PASSWORD", "short", "NEO4J_PASSWORD must have at least 8 characters"),
        ("NEO4J_BOLT_PORT", "70000", "NEO4J_BOLT_PORT must be a port number"),
    ],
)
def test_a_bad_setting_is_refused_at_once_naming_the_variable(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    env = {**os.environ, "NEO4J_DATA_DIR": str(tmp_path / "neo4j"), variable: value}
    classpath = f"{TOOL / 'target' / 'classes'}{os.pathsep}{TOOL / 'target' / 'lib' / '*'}"
    done = subprocess.run(
        ["java", "-cp", classpath, LAUNCHER],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert value not in done.stderr or variable != "NEO4J_PASSWORD"
    assert "NEO4J_URI=" not in done.stdout
