"""Every Cypher statement of the Neo4j store ran against a live server during the suite:
every one ``neo4j_store.statements()`` lists (those of ``graph/neo4j_statements.py`` and
``graph/neo4j_read_statements.py``).

The linter (``make lint-cypher``) shows each statement parses and type-checks; this shows
each one *executed*. Every store the suite opens on the test server (in this process,
and in the servers and CLI commands it starts) appends the name of each statement it
runs to ``HIPPOGRAPH_NEO4J_TRACE`` (``tests/neo4j_server.py`` sets it); this test runs
after every other one (``runs_last``) and reads that file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hippograph.graph.neo4j_store import statements
from tests.stores import WHOLE_SUITE, neo4j_marks

pytestmark = neo4j_marks()


@pytest.mark.runs_last
def test_every_statement_of_the_neo4j_store_ran_against_the_live_server(
    request: pytest.FixtureRequest,
) -> None:
    if not request.config.stash.get(WHOLE_SUITE, False):
        pytest.skip("only a run of the whole suite executes every statement")
    trace = os.environ.get("HIPPOGRAPH_NEO4J_TRACE")
    assert trace, "HIPPOGRAPH_NEO4J_TRACE is not set: run the suite through tests/neo4j_server.py"
    path = Path(trace)
    ran = set(path.read_text(encoding="utf-8").split()) if path.exists() else set()
    names = {statement.name for statement in statements()}
    never = sorted(names - ran)
    assert not never, f"{len(never)} of {len(names)} statements never ran live: {never}"
    assert ran <= names, f"the trace names statements the store does not have: {ran - names}"
