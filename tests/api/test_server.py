"""The GraphQL service over real HTTP: uvicorn on a loopback port, httpx as the client.

Servers run in a background thread over a temporary data directory, most with the
hashing encoder; one end-to-end test uses the real model, and one runs ``hippograph
serve`` as a process to check that SIGTERM shuts it down cleanly with the data kept.
No assertion is about timing.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from hippograph.api.app import create_app
from hippograph.api.bench.processes import hippograph_env
from hippograph.api.settings import Settings
from hippograph.embeddings import HashingEncoder
from hippograph.graph import MemoryGraph
from tests.stores import KINDS, neo4j_marks, open_store, store_env, store_settings, wipe_neo4j

REPO = Path(__file__).resolve().parents[2]
ADMIN = "admin-key-0123456789abcdef"
ALICE = "alice-key-0123456789abcdef"
BOB = "bob-key-0123456789abcdef"
KEYS = f"{ADMIN}=*; {ALICE}=ns-alice,shared; {BOB}=ns-bob"
BOOM = "secret internal detail"

REMEMBER = """
mutation Remember($ns: String!, $input: MemoryInput!) {
  remember(namespace: $ns, input: $input) {
    id namespace content kind tier sessionId importance metadata
  }
}"""
REMEMBER_MANY = """
mutation RememberMany($ns: String!, $inputs: [MemoryInput!]!) {
  rememberMany(namespace: $ns, inputs: $inputs) { id }
}"""
RECALL = """
query Recall($ns: String!, $q: String!, $k: Int! = 5, $context: RecallContext) {
  recall(namespace: $ns, query: $q, k: $k, context: $context) {
    memory { id content }
    score
    parts { similarity activation recency importance context }
    path { from type weight }
  }
}"""
STATS = """
query Stats($ns: String!) {
  stats(namespace: $ns) {
    namespace memories entities
    tiers { tier count } kinds { kind count } associations { type count }
    index { kind vectors dead } graph { nodes edges }
  }
}"""


# -- servers ----------------------------------------------------------------------------


class ExplodingEncoder(HashingEncoder):
    """The hashing encoder, failing (as a bug would) on any text containing EXPLODE."""

    def encode(self, texts: Any) -> np.ndarray:
        if any("EXPLODE" in t for t in texts):
            raise RuntimeError(BOOM)
        return super().encode(texts)


class GatedEncoder(HashingEncoder):
    """The hashing encoder, whose first encode (the warm-up) waits for ``gate``."""

    def __init__(self) -> None:
        super().__init__(dim=64)
        self.gate = threading.Event()

    def encode(self, texts: Any) -> np.ndarray:
        self.gate.wait(timeout=60)
        return super().encode(texts)


@dataclass
class Server:
    """A running app and a client for it."""

    base: str
    app: Starlette
    server: uvicorn.Server
    thread: threading.Thread

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        key: str | None = ADMIN,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(
            f"{self.base}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=headers,
            timeout=60,
            **kwargs,
        )

    def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = ADMIN
    ) -> dict[str, Any]:
        """The JSON body of a GraphQL request answered 200."""
        response = self.post(query, variables, key=key)
        assert response.status_code == 200, response.text
        return response.json()

    def data(
        self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = ADMIN
    ) -> dict[str, Any]:
        body = self.gql(query, variables, key=key)
        assert "errors" not in body, body
        return body["data"]

    def error(
        self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = ADMIN
    ) -> dict[str, Any]:
        """The one error of a request that must fail."""
        body = self.gql(query, variables, key=key)
        assert len(body.get("errors", [])) == 1, body
        return body["errors"][0]

    def stats(self, namespace: str) -> dict[str, Any]:
        return self.data(STATS, {"ns": namespace})["stats"]

    def get(self, path: str, *, key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.get(f"{self.base}{path}", headers=headers, timeout=30)


def _wait(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def running(app: Starlette, *, ready: bool = True) -> Iterator[Server]:
    """Serve ``app`` on a free loopback port in a background thread until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    running = Server(f"http://127.0.0.1:{port}", app, server, thread)
    try:
        _wait(lambda: running.get("/healthz").status_code == 200, "liveness")
        if ready:
            _wait(lambda: running.get("/readyz").status_code == 200, "readiness")
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
        assert not thread.is_alive(), "the server did not stop"


@pytest.fixture(scope="module")
def env() -> Iterator[None]:
    """No HIPPOGRAPH_* setting leaks in from the machine running the tests."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("HIPPOGRAPH_"):
                mp.delenv(name)
        yield


def strict_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Keys for three principals and small limits, so each is easy to exceed."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "encoder": "hashing",
        "api_keys": KEYS,
        "max_content_chars": 200,
        "max_batch": 5,
        "max_k": 20,
        "max_hops": 3,
        "max_query_aliases": 3,
        "max_query_tokens": 2_000,
        "max_query_cost": 400,
        "max_body_bytes": 64 * 1024,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(kind, id=kind, marks=neo4j_marks() if kind == "neo4j" else ())
        for kind in KINDS
    ],
)
def kind(request: pytest.FixtureRequest) -> str:
    """The store of this module's servers, once per store. Module-scoped (not the
    per-test ``store_kind``, whose emptying of Neo4j would pull the database from under
    the module's running servers): Neo4j is emptied once, and every test here writes
    its own namespaces."""
    store: str = request.param
    if store == "neo4j":
        wipe_neo4j()
    return store


@pytest.fixture(scope="module")
def server(env: None, kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The main server: API keys, small limits, and an encoder that fails on EXPLODE."""
    data_dir = tmp_path_factory.mktemp("server")
    settings = strict_settings(data_dir)
    graph = MemoryGraph(
        data_dir,
        encoder=ExplodingEncoder(dim=256),
        config=settings.graph_config(),
        store=open_store(kind, data_dir),
    )
    with running(create_app(settings, graph=graph)) as s:
        yield s


@pytest.fixture(scope="module")
def open_server(env: None, kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """No API keys (open), and a query depth limit of 1; its store from the settings."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("open"),
        encoder="hashing",
        max_query_depth=1,
        **store_settings(kind),
    )
    with running(create_app(settings)) as s:
        yield s


# -- the real model, end to end -----------------------------------------------------------


@pytest.fixture
def model_kind(kind: str) -> Iterator[str]:
    """``kind``, with Neo4j emptied afterwards: the 384-dimensional namespace the
    real-model test leaves there would make the module's hashing-encoder servers refuse
    to warm up (ModelMismatch). That test is the module's first, so it runs before they
    start."""
    yield kind
    if kind == "neo4j":
        wipe_neo4j()


def test_remember_then_recall_with_the_real_model_explains_parts_and_path(
    env: None, model_kind: str, tmp_path: Path
) -> None:
    kind = model_kind
    # Few seeds and no context passages (they would make "felt" a seed by reading it with
    # the memory before it), so that a memory can come back only through an association.
    settings = Settings(
        data_dir=tmp_path,
        encoder="minilm",
        dense_seeds=2,
        lexical_seeds=2,
        context_passages=False,
        **store_settings(kind),
    )
    with running(create_app(settings)) as s:
        ns = "agent-7"
        group = s.data(
            REMEMBER,
            {
                "ns": ns,
                "input": {
                    "content": "Caroline went to the LGBTQ support group on Sunday.",
                    "sessionId": "s1",
                    "metadata": {"source": "chat"},
                },
            },
        )["remember"]
        assert group["tier"] == "WORKING" and group["kind"] == "EVENT"
        assert group["metadata"] == {"source": "chat"}
        felt, wants = s.data(
            REMEMBER_MANY,
            {
                "ns": ns,
                "inputs": [
                    {"content": "It made her feel accepted and understood.", "sessionId": "s1"},
                    {
                        "content": "She wants to become a counsellor one day.",
                        "sessionId": "s1",
                        "kind": "FACT",
                        "links": [{"target": group["id"], "type": "CAUSES", "weight": 0.9}],
                    },
                ],
            },
        )["rememberMany"]
        s.data(
            REMEMBER_MANY,
            {
                "ns": ns,
                "inputs": [
                    {"content": "Melanie painted a sunrise over the lake.", "sessionId": "s2"},
                    {"content": "The lake house needs a new roof.", "sessionId": "s2"},
                ],
            },
        )

        found = s.data(
            RECALL, {"ns": ns, "q": "support group", "k": 5, "context": {"sessionId": "s1"}}
        )["recall"]

        assert found[0]["memory"]["id"] == group["id"]
        for r in found:
            parts = r["parts"]
            assert set(parts) == {"similarity", "activation", "recency", "importance", "context"}
            assert all(0.0 <= v <= 1.0 for v in parts.values()), parts
        assert [r["score"] for r in found] == sorted((r["score"] for r in found), reverse=True)
        by_id = {r["memory"]["id"]: r for r in found}
        # "It made her feel..." shares no words with the query: it follows the group visit
        assert felt["id"] in by_id
        path = by_id[felt["id"]]["path"]
        assert path and path[0]["from"] == group["id"] and path[0]["type"] == "FOLLOWS"
        assert by_id[group["id"]]["parts"]["context"] == 1.0  # same session
        assert wants["id"] in by_id


# -- the schema through HTTP ------------------------------------------------------------


def test_remember_recall_get_associate_forget_and_stats(server: Server) -> None:
    ns = "ns-crud"
    first = server.data(
        REMEMBER,
        {
            "ns": ns,
            "input": {"content": "Alice moved to Paris in May", "id": "m1", "sessionId": "s"},
        },
    )["remember"]
    assert first["id"] == "m1" and first["namespace"] == ns and first["importance"] == 0.5
    server.data(
        REMEMBER,
        {
            "ns": ns,
            "input": {
                "content": "Bob visited Alice in Paris",
                "id": "m2",
                "sessionId": "s",
                "occurredAt": "2024-05-09T12:00:00Z",
                "importance": 0.9,
            },
        },
    )

    memory = server.data(
        'query { memory(namespace: "ns-crud", id: "m2") { id occurredAt importance } }'
    )["memory"]
    assert memory == {"id": "m2", "occurredAt": "2024-05-09T12:00:00+00:00", "importance": 0.9}
    assert (
        server.data('query { memory(namespace: "ns-crud", id: "nope") { id } }')["memory"] is None
    )

    edge = server.data(
        'mutation { associate(namespace: "ns-crud", input: {source: "m2", target: "m1", '
        "type: CAUSES, weight: 0.7}) { source target type weight explicit } }"
    )["associate"]
    assert edge == {
        "source": "m2",
        "target": "m1",
        "type": "CAUSES",
        "weight": 0.7,
        "explicit": True,
    }
    edges = server.data(
        'query { associations(namespace: "ns-crud", id: "m2", types: [CAUSES, FOLLOWS]) '
        "{ source target type } }"
    )["associations"]
    assert {(e["source"], e["target"], e["type"]) for e in edges} == {
        ("m2", "m1", "CAUSES"),
        ("m1", "m2", "FOLLOWS"),
    }

    found = server.data(RECALL, {"ns": ns, "q": "Paris"})["recall"]
    assert {r["memory"]["id"] for r in found} == {"m1", "m2"}

    stats = server.stats(ns)
    assert stats["memories"] == 2 and stats["index"]["vectors"] == 2
    assert {t["tier"]: t["count"] for t in stats["tiers"]}["WORKING"] == 2
    assert {a["type"]: a["count"] for a in stats["associations"]}["CAUSES"] == 1

    assert server.data('mutation { forget(namespace: "ns-crud", id: "m1") }')["forget"] is True
    assert server.data('mutation { forget(namespace: "ns-crud", id: "m1") }')["forget"] is False
    assert server.stats(ns)["memories"] == 1


def test_every_response_carries_a_request_id(server: Server) -> None:
    a = server.post(STATS, {"ns": "ns-ids"})
    b = server.post(STATS, {"ns": "ns-ids"}, key=None)
    ids = [a.headers["x-request-id"], b.headers["x-request-id"]]
    assert len(set(ids)) == 2 and all(len(i) == 32 for i in ids)
    assert b.json()["errors"][0]["extensions"]["requestId"] == ids[1]


# -- errors and limits -----------------------------------------------------------------


def test_bad_input_names_the_field_and_changes_nothing(server: Server) -> None:
    ns = "ns-bad"
    server.data(REMEMBER, {"ns": ns, "input": {"content": "a first memory", "id": "one"}})
    before = server.stats(ns)
    cases = [
        ({"content": "   "}, "input.content"),
        ({"content": "x", "importance": 1.5}, "input.importance"),
        ({"content": "x", "id": "one"}, "input.id"),  # already stored
        ({"content": "x", "metadata": [1, 2]}, "input.metadata"),
        ({"content": "x", "links": [{"target": "one", "type": "MENTIONS"}]}, "input.links[0].type"),
    ]
    for item, field in cases:
        error = server.error(REMEMBER, {"ns": ns, "input": item})
        assert error["extensions"]["code"] == "BAD_INPUT", error
        assert error["extensions"]["field"] == field
        assert error["message"].startswith(field)
        assert error["path"] == ["remember"]
    # GraphQL's own checks: syntax, unknown fields, wrong types, malformed scalars
    for query, variables in [
        ("query { stats(namespace: ", None),
        ('query { stats(namespace: "ns-bad") { nope } }', None),
        (REMEMBER, {"ns": ns, "input": {"content": "x", "kind": "DREAM"}}),
        (RECALL, {"ns": ns, "q": "x", "context": {"at": "last tuesday"}}),
        (RECALL, {"ns": ns, "q": "x", "k": "five"}),
    ]:
        error = server.error(query, variables)
        assert error["extensions"]["code"] == "BAD_INPUT", error
    error = server.error(RECALL, {"ns": ns, "q": "x", "k": 0})
    assert error["extensions"] == {
        "code": "BAD_INPUT",
        "field": "k",
        "requestId": error["extensions"]["requestId"],
    }
    response = httpx.post(
        f"{server.base}/graphql",
        content=b"{not json",
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_INPUT"
    assert server.stats(ns) == before


def test_not_found(server: Server) -> None:
    ns = "ns-missing"
    server.data(REMEMBER, {"ns": ns, "input": {"content": "here", "id": "here"}})
    before = server.stats(ns)
    error = server.error(
        'mutation { associate(namespace: "ns-missing", input: {source: "here", target: "gone"}) '
        "{ weight } }"
    )
    assert error["extensions"]["code"] == "NOT_FOUND" and "gone" in error["message"]
    error = server.error(
        REMEMBER, {"ns": ns, "input": {"content": "x", "links": [{"target": "gone"}]}}
    )
    assert (
        error["extensions"]["code"] == "NOT_FOUND" and "input.links[0].target" in error["message"]
    )
    error = server.error('query { associations(namespace: "ns-missing", id: "gone") { weight } }')
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert server.stats(ns) == before


def test_limits_are_exceeded_with_the_limit_named_and_nothing_written(server: Server) -> None:
    ns = "ns-limits"
    server.data(REMEMBER, {"ns": ns, "input": {"content": "seed memory"}})
    before = server.stats(ns)
    cases = [
        (
            REMEMBER,
            {"ns": ns, "input": {"content": "x" * 201}},
            "input.content",
            "MAX_CONTENT_CHARS",
        ),
        (
            REMEMBER_MANY,
            {"ns": ns, "inputs": [{"content": f"m{i}"} for i in range(6)]},
            "inputs",
            "MAX_BATCH",
        ),
        (
            REMEMBER_MANY,
            {"ns": ns, "inputs": [{"content": "ok"}, {"content": "y" * 500}]},
            "inputs[1].content",
            "MAX_CONTENT_CHARS",
        ),
        (RECALL, {"ns": ns, "q": "seed", "k": 21}, "k", "MAX_K"),
        (
            'query { recall(namespace: "ns-limits", query: "seed", hops: 4) { score } }',
            None,
            "hops",
            "MAX_HOPS",
        ),
    ]
    for query, variables, field, setting in cases:
        error = server.error(query, variables)
        assert error["extensions"]["code"] == "LIMIT_EXCEEDED", error
        assert error["extensions"]["field"] == field
        assert f"HIPPOGRAPH_{setting}" in error["message"] and "limit is" in error["message"]
    assert server.stats(ns) == before


def test_documents_over_the_aliases_tokens_or_cost_limits_are_rejected_before_running(
    server: Server,
) -> None:
    ns = "ns-doc"
    many = " ".join(
        f'a{i}: remember(namespace: "{ns}", input: {{content: "m{i}"}}) {{ id }}' for i in range(4)
    )
    deep_cost = (
        'query { recall(namespace: "ns-doc", query: "q", k: 20) { memory { id namespace '
        "content kind tier sessionId createdAt occurredAt lastAccessedAt accessCount "
        "importance metadata } score parts { similarity activation recency importance "
        "context } path { from type weight } } }"
    )
    fragments = "\n".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40)
    )
    diamond = "query { ...F0 }\n" + fragments + "\nfragment F40 on Query { __typename }"
    cases = [
        ("mutation { " + many + " }", "MAX_QUERY_ALIASES"),
        ("query { " + "__typename " * 2_500 + "}", "MAX_QUERY_TOKENS"),
        (deep_cost, "MAX_QUERY_COST"),
        (diamond, "MAX_QUERY_COST"),  # 2^40 fields once expanded: costed without expanding
    ]
    for query, setting in cases:
        body = server.gql(query)
        assert body["data"] is None
        codes = {e["extensions"]["code"] for e in body["errors"]}
        assert codes == {"LIMIT_EXCEEDED"}, body
        assert any(f"HIPPOGRAPH_{setting}" in e["message"] for e in body["errors"])
    assert server.stats(ns)["memories"] == 0
    response = server.post(REMEMBER, {"ns": ns, "input": {"content": "z" * (65 * 1024)}})
    assert response.status_code == 413
    error = response.json()["errors"][0]
    assert (
        error["extensions"]["code"] == "LIMIT_EXCEEDED"
        and "HIPPOGRAPH_MAX_BODY_BYTES" in error["message"]
    )


def test_query_depth_limit(open_server: Server) -> None:
    body = open_server.gql(
        'query { recall(namespace: "d", query: "q") { memory { id } } }', key=None
    )
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert "HIPPOGRAPH_MAX_QUERY_DEPTH=1" in error["message"]
    assert open_server.data('query { stats(namespace: "d") { memories } }', key=None)


def test_internal_errors_hide_details_and_are_logged_with_the_request_id(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    ns = "ns-internal"
    caplog.set_level(logging.INFO)
    response = server.post(REMEMBER, {"ns": ns, "input": {"content": "please EXPLODE now"}})
    assert response.status_code == 200
    [error] = response.json()["errors"]
    request_id = response.headers["x-request-id"]
    assert error["extensions"] == {"code": "INTERNAL", "requestId": request_id}
    assert request_id in error["message"]
    assert BOOM not in response.text and "Traceback" not in response.text
    logged = [
        r for r in caplog.records if r.levelno >= logging.ERROR and request_id in r.getMessage()
    ]
    assert logged and logged[0].exc_info is not None and BOOM in str(logged[0].exc_info[1])
    assert server.stats(ns)["memories"] == 0


# -- authentication and isolation --------------------------------------------------------


def test_unauthenticated_requests_get_401_with_a_graphql_body(server: Server) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": f"Basic {ADMIN}"},
        {"Authorization": "Bearer"},
    ):
        response = httpx.post(
            f"{server.base}/graphql",
            json={"query": STATS, "variables": {"ns": "ns-alice"}},
            headers=headers,
        )
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        body = response.json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_keys_see_only_their_namespaces_and_learn_nothing_about_others(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bob_memory = server.data(
        REMEMBER, {"ns": "ns-bob", "input": {"content": "Bob's secret plan", "id": "plan"}}, key=BOB
    )["remember"]
    server.data(REMEMBER, {"ns": "ns-alice", "input": {"content": "Alice's diary"}}, key=ALICE)
    server.data(REMEMBER, {"ns": "shared", "input": {"content": "a shared note"}}, key=ALICE)
    bob_before = server.stats("ns-bob")

    # alice reads and writes her namespaces
    assert server.data(STATS, {"ns": "ns-alice"}, key=ALICE)["stats"]["memories"] == 1
    assert server.data(STATS, {"ns": "shared"}, key=ALICE)["stats"]["memories"] == 1
    # ...and nothing of bob's: the same answer whether the id exists or not
    answers = []
    for memory_id in (bob_memory["id"], "no-such-id"):
        error = server.error(
            f'query {{ memory(namespace: "ns-bob", id: "{memory_id}") {{ content }} }}', key=ALICE
        )
        assert error["extensions"]["code"] == "FORBIDDEN"
        answers.append(error["message"])
        error = server.error(
            f'query {{ associations(namespace: "ns-bob", id: "{memory_id}") {{ target }} }}',
            key=ALICE,
        )
        answers.append(error["message"])
    assert answers[0] == answers[2] and answers[1] == answers[3]
    for query, variables in [
        (RECALL, {"ns": "ns-bob", "q": "secret plan"}),
        (STATS, {"ns": "ns-bob"}),
        (REMEMBER, {"ns": "ns-bob", "input": {"content": "alice was here"}}),
        (REMEMBER_MANY, {"ns": "ns-bob", "inputs": [{"content": "alice was here"}]}),
        ('mutation { forget(namespace: "ns-bob", id: "plan") }', None),
    ]:
        body = server.gql(query, variables, key=ALICE)
        assert body["data"] is None, body
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert "secret" not in json.dumps(body)
    # bob cannot see alice's either; the admin key sees both
    assert server.error(STATS, {"ns": "ns-alice"}, key=BOB)["extensions"]["code"] == "FORBIDDEN"
    assert server.data(STATS, {"ns": "ns-alice"}, key=ADMIN)["stats"]["memories"] == 1
    # one document over two namespaces: the allowed field answers, the other is refused
    body = server.gql(
        'query { a: stats(namespace: "ns-alice") { memories } '
        'b: stats(namespace: "ns-bob") { memories } }',
        key=ALICE,
    )
    assert body["data"] is None or body["data"].get("a") == {"memories": 1}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert server.stats("ns-bob") == bob_before
    # keys are never logged
    logged = " ".join(json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert "request" in logged
    for key in (ADMIN, ALICE, BOB):
        assert key not in logged


def test_api_keys_are_secret_in_settings() -> None:
    settings = Settings(api_keys=KEYS)
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert ALICE not in text


@pytest.mark.timeout(120)  # a regression would start serving: fail, don't hang
def test_malformed_api_keys_refuse_to_serve_without_echoing_them(
    env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hippograph.api.cli import main

    for spec in ("sekrit-without-namespaces", "sekrit-a=ns1;sekrit-a=ns2", "sekrit-b=*,ns1"):
        monkeypatch.setenv("HIPPOGRAPH_API_KEYS", spec)
        assert main(["serve", "--port", "0"]) == 2
        err = capsys.readouterr().err
        assert "HIPPOGRAPH_API_KEYS entry" in err and "sekrit" not in err


def test_serving_beyond_loopback_without_keys_warns(caplog: pytest.LogCaptureFixture) -> None:
    from hippograph.api.app import _announce
    from hippograph.api.auth import ApiKeys

    caplog.set_level(logging.INFO, logger="hippograph.server")
    _announce(None, "0.0.0.0", 8000)
    _announce(None, "127.0.0.1", 8000)
    _announce(ApiKeys.parse("short=*"), "0.0.0.0", 8000)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "anyone who can reach it" in warnings[0] and "0.0.0.0" in warnings[0]
    assert "127.0.0.1 only" in warnings[1]
    assert "key 1 is shorter than 16 characters" in warnings[2]
    assert not any("short=" in m for m in warnings)


# -- atomicity and concurrency -----------------------------------------------------------


def test_remember_many_with_one_bad_item_stores_none(server: Server) -> None:
    ns = "ns-atomic"
    server.data(
        REMEMBER_MANY,
        {"ns": ns, "inputs": [{"content": "first", "id": "a"}, {"content": "second", "id": "b"}]},
    )
    before = server.stats(ns)
    bad_batches = [
        (
            [{"content": "ok one"}, {"content": "ok two"}, {"content": "bad", "importance": 7}],
            "BAD_INPUT",
            "inputs[2].importance",
        ),
        (
            [{"content": "ok", "id": "c"}, {"content": "dup", "id": "c"}],
            "BAD_INPUT",
            "inputs[1].id",
        ),
        (
            [{"content": "ok"}, {"content": "link", "links": [{"target": "nowhere"}]}],
            "NOT_FOUND",
            "inputs[1].links[0].target",
        ),
        ([{"content": "ok"}, {"content": "EXPLODE during embedding"}], "INTERNAL", None),
    ]
    for inputs, code, field in bad_batches:
        error = server.error(REMEMBER_MANY, {"ns": ns, "inputs": inputs})
        assert error["extensions"]["code"] == code, error
        if field:
            assert error["message"].startswith(field)
        assert server.stats(ns) == before


def test_twenty_clients_recall_correctly_while_one_writes(server: Server) -> None:
    ns = "ns-busy"
    readers, rounds, writes = 20, 5, 20
    ids = [
        m["id"]
        for m in server.data(
            REMEMBER_MANY,
            {
                "ns": ns,
                "inputs": [
                    {"content": f"zebra{i} quokka{i} marmot{i}", "id": f"animal-{i}"}
                    for i in range(5)
                ],
            },
        )["rememberMany"]
    ]
    for start in range(5, readers, 5):
        ids += [
            m["id"]
            for m in server.data(
                REMEMBER_MANY,
                {
                    "ns": ns,
                    "inputs": [
                        {"content": f"zebra{i} quokka{i} marmot{i}", "id": f"animal-{i}"}
                        for i in range(start, start + 5)
                    ],
                },
            )["rememberMany"]
        ]
    barrier = threading.Barrier(readers + 1)

    def read(i: int) -> list[str]:
        tops = []
        with httpx.Client(
            base_url=server.base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60
        ) as client:
            barrier.wait(timeout=30)
            for _ in range(rounds):
                response = client.post(
                    "/graphql",
                    json={
                        "query": RECALL,
                        "variables": {"ns": ns, "q": f"zebra{i} quokka{i}", "k": 3},
                    },
                )
                assert response.status_code == 200
                body = response.json()
                assert "errors" not in body, body
                tops.append(body["data"]["recall"][0]["memory"]["id"])
        return tops

    def write() -> list[str]:
        written = []
        with httpx.Client(
            base_url=server.base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60
        ) as client:
            barrier.wait(timeout=30)
            for j in range(writes):
                response = client.post(
                    "/graphql",
                    json={
                        "query": REMEMBER,
                        "variables": {
                            "ns": ns,
                            "input": {
                                "content": f"a note about writing number {j}",
                                "sessionId": "w",
                            },
                        },
                    },
                )
                body = response.json()
                assert "errors" not in body, body
                written.append(body["data"]["remember"]["id"])
        return written

    with ThreadPoolExecutor(max_workers=readers + 1) as pool:
        reading = [pool.submit(read, i) for i in range(readers)]
        writing = pool.submit(write)
        tops = [f.result(timeout=120) for f in reading]
        written = writing.result(timeout=120)

    assert tops == [[f"animal-{i}"] * rounds for i in range(readers)]
    assert len(set(written)) == writes
    assert server.stats(ns)["memories"] == readers + writes


# -- health, readiness, metrics ------------------------------------------------------------


def test_healthz_and_readyz(server: Server) -> None:
    assert server.get("/healthz").json() == {"status": "ok"}
    ready = server.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_a_namespace_of_another_model_answers_model_mismatch_and_the_rest_is_served(
    env: None, kind: str, tmp_path: Path
) -> None:
    # Found on Neo4j, where every graph shares the database: one namespace embedded by
    # another model made the warm-up fail, so /readyz never answered 200 for any.
    data_dir = tmp_path / "data"
    other = MemoryGraph(data_dir, encoder=HashingEncoder(dim=32), store=open_store(kind, data_dir))
    other.remember("ns-other-model", "embedded with 32 dimensions")
    other.close()
    settings = Settings(data_dir=data_dir, encoder="hashing", **store_settings(kind))
    with running(create_app(settings)) as s:  # ready
        mismatch = s.error(STATS, {"ns": "ns-other-model"}, key=None)
        assert mismatch["extensions"]["code"] == "MODEL_MISMATCH", mismatch
        stored = s.data(REMEMBER, {"ns": "ns-this-model", "input": {"content": "x"}}, key=None)
        assert stored["remember"]["content"] == "x"
        assert s.stats("ns-this-model")["memories"] == 1
        assert s.get("/metrics").status_code == 200


def test_readyz_is_503_until_the_encoder_has_warmed_up(env: None, tmp_path: Path) -> None:
    # about the encoder's warm-up, not the store: SQLite only
    settings = Settings(data_dir=tmp_path, encoder="hashing", **store_settings("sqlite"))
    encoder = GatedEncoder()
    graph = MemoryGraph(tmp_path, encoder=encoder, config=settings.graph_config())
    with running(create_app(settings, graph=graph), ready=False) as s:
        assert s.get("/healthz").status_code == 200
        starting = s.get("/readyz")
        assert starting.status_code == 503 and starting.json()["status"] == "starting"
        encoder.gate.set()
        _wait(lambda: s.get("/readyz").status_code == 200, "readiness")


def test_metrics_reflect_the_traffic(server: Server) -> None:
    ns = "ns-metrics"
    server.data(
        REMEMBER_MANY,
        {
            "ns": ns,
            "inputs": [
                {"content": "alpha beta", "sessionId": "m"},
                {"content": "beta gamma", "sessionId": "m"},
            ],
        },
    )
    for _ in range(3):
        server.data(RECALL, {"ns": ns, "q": "beta"})
    server.error(REMEMBER, {"ns": ns, "input": {"content": ""}})
    stats = server.stats(ns)

    assert server.get("/metrics").status_code == 401
    forbidden = server.get("/metrics", key=ALICE)
    assert (
        forbidden.status_code == 403
        and forbidden.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    )
    response = server.get("/metrics", key=ADMIN)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("hippograph_request_duration_seconds_count", operation="recall", outcome="ok") >= 3
    assert (
        value("hippograph_request_duration_seconds_count", operation="rememberMany", outcome="ok")
        >= 1
    )
    assert (
        value("hippograph_request_duration_seconds_count", operation="remember", outcome="error")
        >= 1
    )
    for stage in ("embed", "seed", "activate", "score", "fetch", "learn"):
        assert value("hippograph_recall_stage_duration_seconds_count", stage=stage) >= 3
    assert value("hippograph_errors_total", code="BAD_INPUT") >= 1
    assert value("hippograph_errors_total", code="UNAUTHENTICATED") >= 1
    assert value("hippograph_ready") == 1
    assert value("hippograph_memories", namespace=ns, tier="working") == stats["memories"] == 2
    for a in stats["associations"]:
        assert value("hippograph_associations", namespace=ns, type=a["type"]) == a["count"]
    assert value("hippograph_index_vectors", namespace=ns) == 2


def test_an_open_server_needs_no_key(open_server: Server) -> None:
    body = open_server.gql(
        REMEMBER.replace("namespace content kind tier sessionId importance metadata", ""),
        {"ns": "open", "input": {"content": "no key needed"}},
        key=None,
    )
    assert body == {"data": {"remember": {"id": body["data"]["remember"]["id"]}}}
    assert open_server.get("/metrics").status_code == 200


def test_graphiql_page_for_browsers(server: Server) -> None:
    pytest.importorskip("hippograph.api.graphiql")
    response = httpx.get(f"{server.base}/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    response = httpx.get(f"{server.base}/graphql", headers={"Accept": "application/json"})
    assert response.status_code == 405
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_INPUT"


# -- the process: SIGTERM, then a restart -------------------------------------------------


def _serve(data_dir: Path, port: int, kind: str) -> subprocess.Popen[str]:
    env = hippograph_env(data_dir, store=store_env(kind))
    script = Path(sys.executable).with_name("hippograph")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "hippograph.api.cli"]
    return subprocess.Popen(
        [*command, "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(process: subprocess.Popen[str], base: str) -> Callable[[], bool]:
    def check() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.communicate()[1]}")
        return httpx.get(f"{base}/readyz").status_code == 200

    return check


def _stop(process: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, list[dict[str, Any]]]:
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    return process.returncode, [
        json.loads(line) for line in err.splitlines() if line.startswith("{")
    ]


def test_sigterm_shuts_down_cleanly_and_the_data_is_there_after_restart(
    env: None, kind: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = _serve(data_dir, port, kind)
    try:
        _wait(_ready(process, base), "the server")
        for i in range(3):
            response = httpx.post(
                f"{base}/graphql",
                json={
                    "query": REMEMBER,
                    "variables": {
                        "ns": "kept",
                        "input": {
                            "content": f"durable memory {i}",
                            "id": f"d{i}",
                            "sessionId": "s",
                        },
                    },
                },
            )
            assert "errors" not in response.json()
        response = httpx.post(
            f"{base}/graphql", json={"query": RECALL, "variables": {"ns": "kept", "q": "durable"}}
        )
        assert len(response.json()["data"]["recall"]) == 3
        code, log = _stop(process, signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, log
    messages = [entry["message"] for entry in log]
    assert any("HIPPOGRAPH_API_KEYS is unset" in m for m in messages)  # the open-server warning
    assert "graph closed (checkpointed)" in messages
    assert log[-1]["message"] == "stopped" and log[-1]["signals"] == ["SIGTERM"]
    assert any(
        entry.get("operation") == "remember" and entry.get("namespace") == "kept" for entry in log
    )
    assert list((data_dir / "derived").glob("*.faiss"))  # saved at close

    process = _serve(data_dir, port, kind)
    try:
        _wait(_ready(process, base), "the restarted server")
        body = httpx.post(
            f"{base}/graphql", json={"query": STATS, "variables": {"ns": "kept"}}
        ).json()
        assert body["data"]["stats"]["memories"] == 3
        assert body["data"]["stats"]["index"]["vectors"] == 3
        found = httpx.post(
            f"{base}/graphql",
            json={"query": RECALL, "variables": {"ns": "kept", "q": "durable memory 1"}},
        ).json()
        assert found["data"]["recall"][0]["memory"]["id"] == "d1"
        code, _ = _stop(process, signal.SIGINT)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0


# -- lifecycle through GraphQL ------------------------------------------------------------

RUN_LIFECYCLE = """
mutation Run($ns: String!, $jobs: [String!], $dry: Boolean!, $at: DateTime) {
  runLifecycle(namespace: $ns, jobs: $jobs, dryRun: $dry, at: $at) {
    namespace dryRun
    jobs { job runId dryRun startedAt finishedAt seconds counts { name value } }
  }
}
"""
RECALL_TIERS = """
query Recall($ns: String!, $q: String!, $tiers: [Tier!]) {
  recall(namespace: $ns, query: $q, k: 3, tiers: $tiers, learn: false) { memory { id tier } }
}
"""
RUNS = """
query Runs($ns: String!) {
  stats(namespace: $ns) { tiers { tier count } lifecycleRuns { job dryRun counts { name value } } }
}
"""


def test_run_lifecycle_archives_and_recall_with_archived_tier_rehydrates(server: Server) -> None:
    ns = "ns-lifecycle"
    old = [
        {
            "content": f"Note {i} about the shed and its blue paint",
            "sessionId": "old",
            "occurredAt": f"2020-02-0{i + 1}T09:00:00Z",
            "importance": 0.2,
        }
        for i in range(3)
    ]
    stored = server.data(REMEMBER_MANY, {"ns": ns, "inputs": old})["rememberMany"]
    # just remembered, an old history is not idle: a run today archives nothing
    today = server.data(RUN_LIFECYCLE, {"ns": ns, "jobs": None, "dry": True})["runLifecycle"]
    assert {c["name"]: c["value"] for c in today["jobs"][1]["counts"]}["archived"] == 0
    later = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    dry = server.data(RUN_LIFECYCLE, {"ns": ns, "jobs": None, "dry": True, "at": later})
    dry = dry["runLifecycle"]
    assert dry["dryRun"] and [j["job"] for j in dry["jobs"]] == [
        "decay",
        "tiering",
        "dedup",
        "consolidate",
        "archive",
    ]
    tiering = {c["name"]: c["value"] for c in dry["jobs"][1]["counts"]}
    assert tiering["archived"] == 3
    ran = server.data(
        RUN_LIFECYCLE, {"ns": ns, "jobs": ["tiering", "archive"], "dry": False, "at": later}
    )
    archive = {c["name"]: c["value"] for c in ran["runLifecycle"]["jobs"][1]["counts"]}
    assert archive["memories"] == 3
    hot_tiers = ["WORKING", "EPISODIC", "SEMANTIC"]
    hot = server.data(RECALL_TIERS, {"ns": ns, "q": "shed blue paint", "tiers": hot_tiers})
    assert hot["recall"] == []
    back = server.data(RECALL_TIERS, {"ns": ns, "q": "shed blue paint", "tiers": ["ARCHIVED"]})
    ids = {r["memory"]["id"] for r in back["recall"]}
    assert ids and ids <= {m["id"] for m in stored}
    assert all(r["memory"]["tier"] == "WORKING" for r in back["recall"])
    stats = server.data(RUNS, {"ns": ns})["stats"]
    runs = stats["lifecycleRuns"]
    assert [r["job"] for r in runs[:2]] == ["archive", "tiering"] and not runs[0]["dryRun"]
    bad = server.error(RUN_LIFECYCLE, {"ns": ns, "jobs": ["shrink"], "dry": False})
    assert bad["extensions"]["code"] == "BAD_INPUT" and "shrink" in bad["message"]
    denied = server.error(RUN_LIFECYCLE, {"ns": ns, "jobs": None, "dry": True}, key=BOB)
    assert denied["extensions"]["code"] == "FORBIDDEN"
