"""Isolation between namespaces over real HTTP (uvicorn on a loopback port, httpx).

Key A holds namespace ``ns-a``, key B holds ``ns-b``. Through every root field of the
schema (read from the running server by introspection: a field without a case here fails
:func:`test_every_root_field_has_an_isolation_case`), key B can neither read, write,
forget, associate, run lifecycle jobs on, nor learn the existence of ``ns-a``'s memories:

* on ``ns-a`` itself every field is ``FORBIDDEN``, and the answer is the same, byte for
  byte once the request id and the names the caller sent are masked, whether the id it
  names exists there or not, and whether ``ns-a`` exists or not;
* in its own ``ns-b``, ids taken from ``ns-a`` (memories, a merged duplicate's alias,
  archived memories, entities) are absent: the answer is the same as for a random id;
* after every case ``ns-a`` is exactly as it was: every memory with all its fields,
  entities, associations with their weights, lifecycle runs, stats and archive files.

``GET /graph`` (the neighbourhood page) is held to the same rules.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from hippograph.api.app import create_app
from hippograph.api.settings import STORE_VARIABLES, Settings
from hippograph.graph import MemoryGraph
from tests.serving import serving
from tests.stores import KINDS, neo4j_marks, store_env, wipe_neo4j

KEY_A = "isolation-a-key-0123456789abcdef"
KEY_B = "isolation-b-key-0123456789abcdef"
ADMIN = "isolation-admin-key-0123456789ab"
KEYS = f"{KEY_A}=ns-a; {KEY_B}=ns-b; {ADMIN}=*"  # as in HIPPOGRAPH_API_KEYS
NS_A, NS_B, GHOST = "ns-a", "ns-b", "ns-ghost"  # GHOST: no key but ADMIN's; never written

REMEMBER = """
mutation Remember($ns: String!, $input: MemoryInput!) {
  remember(namespace: $ns, input: $input) { id namespace content sessionId }
}"""
REMEMBER_MANY = """
mutation RememberMany($ns: String!, $inputs: [MemoryInput!]!) {
  rememberMany(namespace: $ns, inputs: $inputs) { id namespace content }
}"""
MEMORY = """
query Memory($ns: String!, $id: ID!) {
  memory(namespace: $ns, id: $id) { id namespace content tier sessionId metadata }
}"""
RECALL = """
query Recall($ns: String!, $q: String!, $tiers: [Tier!], $context: RecallContext,
             $learn: Boolean!) {
  recall(namespace: $ns, query: $q, k: 20, tiers: $tiers, context: $context, learn: $learn) {
    memory { id namespace content tier } score path { from type weight }
  }
}"""
ASSOCIATIONS = """
query Associations($ns: String!, $id: ID!) {
  associations(namespace: $ns, id: $id) { source target type weight explicit }
}"""
STATS = """
query Stats($ns: String!) {
  stats(namespace: $ns) {
    namespace memories entities
    tiers { tier count } kinds { kind count } associations { type count }
    index { kind vectors dead } graph { nodes edges }
    lifecycleRuns { job runId dryRun counts { name value } }
  }
}"""
ASSOCIATE = """
mutation Associate($ns: String!, $input: AssociationInput!) {
  associate(namespace: $ns, input: $input) { source target type weight }
}"""
FORGET = "mutation Forget($ns: String!, $id: ID!) { forget(namespace: $ns, id: $id) }"
UPDATE = """
mutation Update($ns: String!, $id: ID!, $input: MemoryUpdate!) {
  updateMemory(namespace: $ns, id: $id, input: $input) { id content supersededBy }
}"""
RUN_LIFECYCLE = """
mutation Run($ns: String!, $jobs: [String!], $dry: Boolean!) {
  runLifecycle(namespace: $ns, jobs: $jobs, dryRun: $dry) {
    namespace dryRun jobs { job dryRun counts { name value } }
  }
}"""
ROOT_FIELDS = """
{ __schema {
    queryType { fields { name } }
    mutationType { fields { name } }
    subscriptionType { fields { name } }
} }"""


# -- the server -------------------------------------------------------------------------


@dataclass
class Server:
    base: str
    app: Starlette
    http: httpx.Client

    @property
    def graph(self) -> MemoryGraph:
        service = self.app.state.hippograph.service
        assert service is not None
        return service.graph

    def post(self, query: str, variables: dict[str, Any], key: str) -> dict[str, Any]:
        """The JSON body of a GraphQL request, which must be answered 200."""
        response = self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def data(self, query: str, variables: dict[str, Any], key: str = ADMIN) -> dict[str, Any]:
        body = self.post(query, variables, key)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data


@dataclass
class World:
    """What ``ns-a`` holds, as ids key B might guess, and what ``ns-b`` holds."""

    a_memories: list[str] = field(default_factory=list)  # live memory ids
    a_alias: str = ""  # a duplicate merged away: it answers get() with its survivor
    a_archived: list[str] = field(default_factory=list)
    a_entities: list[str] = field(default_factory=list)  # entity:<key>
    a_contents: list[str] = field(default_factory=list)
    b_memories: list[str] = field(default_factory=list)

    @property
    def a_ids(self) -> list[str]:
        return [*self.a_memories, self.a_alias, *self.a_archived, *self.a_entities]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(kind, id=kind, marks=neo4j_marks() if kind == "neo4j" else ())
        for kind in KINDS
    ],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The service configured as an operator would: from HIPPOGRAPH_* variables (and
    Neo4j's, once per store; module-scoped, so Neo4j is emptied once for the module)."""
    kind: str = request.param
    if kind == "neo4j":
        wipe_neo4j()
    store = store_env(kind)
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("HIPPOGRAPH_") or name in STORE_VARIABLES:
                mp.delenv(name)
        for name, value in store.items():
            mp.setenv(name, value)
        mp.setenv("HIPPOGRAPH_API_KEYS", KEYS)
        mp.setenv("HIPPOGRAPH_DATA_DIR", str(tmp_path_factory.mktemp("isolation")))
        mp.setenv("HIPPOGRAPH_ENCODER", "hashing")
        mp.setenv("HIPPOGRAPH_LIFECYCLE_INTERVAL_S", "0")  # no jobs but the tests' own
        app = create_app(Settings())
        with serving(app) as base, httpx.Client(base_url=base, timeout=60) as http:
            yield Server(base, app, http)


A_TEXTS = [
    "Caroline went to the LGBTQ support group on Sunday.",
    "It made her feel accepted, she told Melanie at the Lake House.",
    "Caroline wants to become a counsellor; her secret plan is to apply in June.",
]
B_TEXTS = [
    "Bob fixed the green bicycle in the garage.",
    "The garage door squeaks every morning.",
]


@contextlib.contextmanager
def stored_long_ago(server: Server) -> Iterator[None]:
    """Memories remembered meanwhile are stored as of February 2020 (the graph's clock):
    idle since then, the lifecycle archives them (idleness counts from storing)."""
    graph = server.graph
    clock = graph.clock
    graph.clock = lambda: datetime(2020, 2, 10, tzinfo=UTC)
    try:
        yield
    finally:
        graph.clock = clock


@pytest.fixture(scope="module")
def world(server: Server) -> World:
    """``ns-a``: a session of memories with entities and an explicit link, a merged
    duplicate and three archived memories. ``ns-b``: its own memories, one with the same
    text as ``ns-a``'s duplicates (a dedup across namespaces would merge them), and old
    ones its lifecycle run archives."""
    w = World()
    stored = server.data(
        REMEMBER_MANY,
        {
            "ns": NS_A,
            "inputs": [
                {"id": f"alpha-{i}-7f3c", "content": text, "sessionId": "alpha-session"}
                for i, text in enumerate(A_TEXTS)
            ]
            + [
                {"id": "alpha-dup-1-7f3c", "content": "The blue shed needs paint."},
                {"id": "alpha-dup-2-7f3c", "content": "The blue shed needs paint."},
            ],
        },
        key=KEY_A,
    )["rememberMany"]
    with stored_long_ago(server):  # idle since 2020: cold
        stored += server.data(
            REMEMBER_MANY,
            {
                "ns": NS_A,
                "inputs": [
                    {
                        "id": f"alpha-old-{i}-7f3c",
                        "content": f"An old note {i} about the orchard and its pear trees",
                        "sessionId": "alpha-old",
                        "occurredAt": f"2020-02-0{i + 1}T09:00:00Z",
                        "importance": 0.2,
                    }
                    for i in range(3)
                ],
            },
            key=KEY_A,
        )["rememberMany"]
    server.data(
        ASSOCIATE,
        {
            "ns": NS_A,
            "input": {"source": "alpha-2-7f3c", "target": "alpha-0-7f3c", "type": "CAUSES"},
        },
        key=KEY_A,
    )
    run = server.data(
        RUN_LIFECYCLE, {"ns": NS_A, "jobs": ["tiering", "dedup", "archive"], "dry": False}, KEY_A
    )["runLifecycle"]
    counts = {j["job"]: {c["name"]: c["value"] for c in j["counts"]} for j in run["jobs"]}
    assert counts["archive"]["memories"] == 3, counts
    w.a_archived = [f"alpha-old-{i}-7f3c" for i in range(3)]
    merged = {m["id"] for m in stored} - {
        m.id for chunk in server.graph.store.iter_memories(NS_A) for m in chunk
    }
    assert len(merged) == 1, merged
    w.a_alias = merged.pop()
    w.a_memories = [
        m.id
        for chunk in server.graph.store.iter_memories(NS_A)
        for m in chunk
        if m.id not in w.a_archived
    ]
    w.a_entities = list(server.graph.store.entities(NS_A))
    assert "entity:caroline" in w.a_entities
    w.a_contents = list(A_TEXTS)  # not the duplicate's text: ns-b holds it too
    # key A sees all of it: the ids are real
    for memory_id in (*w.a_memories, w.a_alias, *w.a_archived):
        assert server.data(MEMORY, {"ns": NS_A, "id": memory_id}, KEY_A)["memory"] is not None
    assert server.data(ASSOCIATIONS, {"ns": NS_A, "id": "entity:caroline"}, KEY_A)["associations"]

    b = server.data(
        REMEMBER_MANY,
        {
            "ns": NS_B,
            "inputs": [{"content": text, "sessionId": "bravo-session"} for text in B_TEXTS]
            + [{"content": "The blue shed needs paint."}],
        },
        key=KEY_B,
    )["rememberMany"]
    with stored_long_ago(server):
        b += server.data(
            REMEMBER_MANY,
            {
                "ns": NS_B,
                "inputs": [
                    {
                        "content": f"An old note {i} about the orchard and its pear trees",
                        "occurredAt": f"2020-02-0{i + 1}T09:00:00Z",
                        "importance": 0.2,
                    }
                    for i in range(3)
                ],
            },
            key=KEY_B,
        )["rememberMany"]
    w.b_memories = [m["id"] for m in b]
    return w


# -- what must not change, and what must not differ -------------------------------------


def _digest(value: Any) -> str | None:
    return None if value is None else hashlib.sha256(memoryview(value).tobytes()).hexdigest()


def snapshot(server: Server, namespace: str) -> dict[str, Any]:
    """Everything ``namespace`` holds: the store's rows (vectors as digests), its stats
    as the service reports them, and its archive files."""
    graph = server.graph
    graph.checkpoint()  # recall side effects into the store
    store = graph.store
    memories = sorted(
        (
            m.id,
            m.content,
            m.kind.value,
            m.tier.value,
            m.session_id,
            m.created_at.isoformat(),
            m.when.isoformat(),
            str(m.last_accessed_at),
            m.access_count,
            m.importance,
            m.content_hash,
            json.dumps(m.metadata, sort_keys=True),
            _digest(m.embedding),
            _digest(m.passages),
            _digest(m.context_embedding),
        )
        for chunk in store.iter_memories(namespace, embeddings=True)
        for m in chunk
    )
    associations = sorted(
        (
            a.source,
            a.target,
            a.type.value,
            a.weight,
            a.explicit,
            a.activation_count,
            str(a.created_at),
            str(a.last_activated_at),
        )
        for chunk in store.iter_associations(namespace)
        for a in chunk
    )
    archive = graph.archive_dir(namespace)
    files = (
        {
            str(p.relative_to(archive)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(archive.rglob("*"))
            if p.is_file()
        }
        if archive.exists()
        else {}
    )
    return {
        "generation": store.generation(namespace),
        "memories": memories,
        "entities": store.entities(namespace),
        "associations": associations,
        "runs": sorted((r.id, r.job, r.dry_run) for r in store.runs(namespace)),
        "aliases": store.resolve_aliases(
            namespace, [m[0] for m in memories] + ["alpha-dup-2-7f3c"]
        ),
        "stats": server.data(STATS, {"ns": namespace})["stats"],
        "archive": files,
    }


@pytest.fixture
def untouched(server: Server, world: World) -> Iterator[None]:
    """``ns-a`` (and the namespace no one writes) are exactly the same after the test."""
    before = {ns: snapshot(server, ns) for ns in (NS_A, GHOST)}
    yield
    for ns, expected in before.items():
        assert snapshot(server, ns) == expected, ns
    assert GHOST not in server.graph.store.namespaces()


def masked(body: dict[str, Any], **names: str) -> str:
    """``body`` as canonical JSON, without request ids, each of ``names``' values (the
    ids and namespaces the caller sent) replaced by its placeholder."""
    body = copy.deepcopy(body)
    for error in body.get("errors") or []:
        error.get("extensions", {}).pop("requestId", None)
    text = json.dumps(body, sort_keys=True, ensure_ascii=False)
    for placeholder, value in sorted(names.items(), key=lambda kv: -len(kv[1])):
        text = text.replace(json.dumps(value, ensure_ascii=False)[1:-1], f"<{placeholder}>")
    return text


def ghost_id() -> str:
    return f"ghost-{uuid.uuid4().hex[:12]}"


def assert_reveals_nothing(body: dict[str, Any], world: World, *sent: str) -> None:
    """No id or text of ``ns-a`` in an answer to key B, beyond what it sent itself."""
    text = json.dumps(body, ensure_ascii=False)
    for secret in (*world.a_ids, *world.a_contents, "alpha-session"):
        if secret not in sent:
            assert secret not in text, (secret, body)


Request = Callable[[str, str], tuple[str, dict[str, Any]]]  # (namespace, id) -> query, vars


def assert_forbidden_alike(server: Server, world: World, request: Request) -> None:
    """Key B on ``ns-a``: FORBIDDEN, nothing returned, and the same answer for every id of
    ``ns-a`` as for an id that is nowhere, and the same on a namespace that does not
    exist (``ns-ghost``)."""
    expected = None
    for namespace in (NS_A, GHOST):
        for memory_id in (*world.a_ids, ghost_id()):
            query, variables = request(namespace, memory_id)
            body = server.post(query, variables, KEY_B)
            assert body["data"] is None or set(body["data"].values()) == {None}, body
            assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body
            assert_reveals_nothing(body, world, memory_id)
            got = masked(body, id=memory_id, namespace=namespace)
            expected = expected or got
            assert got == expected, (namespace, memory_id)


def assert_absent_alike(
    server: Server, world: World, request: Request, ids: list[str] | None = None
) -> dict[str, Any]:
    """Key B in its own ``ns-b``, naming ids of ``ns-a``: the same answer as for an id that
    is nowhere (an entity id: as for an entity that is nowhere), once masked. Returns the
    answer for the memory id that is nowhere."""
    baselines = {}
    for ghost in ("ghost-0123456789ab", "entity:ghost-0123456789ab"):
        query, variables = request(NS_B, ghost)
        baselines[ghost.startswith("entity:")] = body = server.post(query, variables, KEY_B)
        assert_reveals_nothing(body, world)
    for memory_id in ids if ids is not None else world.a_ids:
        baseline = baselines[memory_id.startswith("entity:")]
        ghost = (
            "entity:ghost-0123456789ab" if memory_id.startswith("entity:") else "ghost-0123456789ab"
        )
        query, variables = request(NS_B, memory_id)
        body = server.post(query, variables, KEY_B)
        assert_reveals_nothing(body, world, memory_id)
        assert masked(body, id=memory_id) == masked(baseline, id=ghost), (memory_id, body, baseline)
    return baselines[False]


# -- one case per root field --------------------------------------------------------------


def case_recall(server: Server, world: World) -> None:
    def recall(namespace: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        return RECALL, {
            "ns": namespace,
            "q": f"{A_TEXTS[2]} {memory_id}",
            "tiers": None,
            "context": None,
            "learn": True,
        }

    assert_forbidden_alike(server, world, recall)
    # In ns-b, asking with ns-a's words, session, entities, the archived tier (which would
    # rehydrate ns-a's archive if it were searched) and ids: only ns-b comes back.
    for text in (*A_TEXTS, "orchard pear trees", *world.a_ids):
        for tiers in (None, ["ARCHIVED"], ["WORKING", "EPISODIC", "SEMANTIC", "ARCHIVED"]):
            body = server.post(
                RECALL,
                {
                    "ns": NS_B,
                    "q": text,
                    "tiers": tiers,
                    "context": {
                        "sessionId": "alpha-session",
                        "entities": ["Caroline", "Melanie", "Lake House"],
                        "text": text,
                    },
                    "learn": True,
                },
                KEY_B,
            )
            assert "errors" not in body, body
            assert_reveals_nothing(body, world, text)
            for found in body["data"]["recall"]:
                assert found["memory"]["namespace"] == NS_B
                assert all(
                    step["from"] in world.b_memories or step["from"].startswith("entity:")
                    for step in found["path"]
                ), found


def case_memory(server: Server, world: World) -> None:
    def memory(namespace: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        return MEMORY, {"ns": namespace, "id": memory_id}

    assert_forbidden_alike(server, world, memory)
    assert assert_absent_alike(server, world, memory) == {"data": {"memory": None}}


def case_associations(server: Server, world: World) -> None:
    def associations(namespace: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        return ASSOCIATIONS, {"ns": namespace, "id": memory_id}

    assert_forbidden_alike(server, world, associations)
    memory_ids = [*world.a_memories, world.a_alias, *world.a_archived]
    absent = assert_absent_alike(server, world, associations, memory_ids)
    assert [e["extensions"]["code"] for e in absent["errors"]] == ["NOT_FOUND"]

    def entity(namespace: str, entity_id: str) -> tuple[str, dict[str, Any]]:
        return ASSOCIATIONS, {"ns": namespace, "id": entity_id}

    # an entity of ns-a named in ns-b: as empty as an entity that is nowhere
    query, variables = entity(NS_B, "entity:ghost-0123456789ab")
    assert server.data(query, variables, KEY_B) == {"associations": []}
    for entity_id in world.a_entities:
        query, variables = entity(NS_B, entity_id)
        assert server.data(query, variables, KEY_B) == {"associations": []}, entity_id


def case_stats(server: Server, world: World) -> None:
    def stats(namespace: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        return STATS, {"ns": namespace}

    assert_forbidden_alike(server, world, stats)
    mine = server.data(STATS, {"ns": NS_B}, KEY_B)["stats"]
    store = server.graph.store
    assert mine["namespace"] == NS_B
    assert mine["memories"] == sum(len(chunk) for chunk in store.iter_memories(NS_B))
    assert mine["entities"] == len(store.entities(NS_B))
    assert_reveals_nothing({"data": mine}, world)


def case_remember(server: Server, world: World) -> None:
    def remember_with_id(namespace: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        return REMEMBER, {"ns": namespace, "input": {"content": "B's note", "id": memory_id}}

    def remember_linked(namespace: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        return REMEMBER, {
            "ns": namespace,
            "input": {"content": "B's", "links": [{"target": memory_id}]},
        }

    assert_forbidden_alike(server, world, remember_with_id)
    assert_forbidden_alike(server, world, remember_linked)
    before = snapshot(server, NS_B)
    linked = assert_absent_alike(server, world, remember_linked)
    assert [e["extensions"]["code"] for e in linked["errors"]] == ["NOT_FOUND"]
    assert snapshot(server, NS_B)["memories"] == before["memories"]
    # an id taken in ns-a is free in ns-b: stored, as a random id would be (then forgotten)
    for memory_id in [*world.a_ids, ghost_id()]:
        if memory_id.startswith("entity:"):
            continue
        query, variables = remember_with_id(NS_B, memory_id)
        stored = server.data(query, variables, KEY_B)["remember"]
        assert stored == {
            "id": memory_id,
            "namespace": NS_B,
            "content": "B's note",
            "sessionId": None,
        }
        assert server.data(FORGET, {"ns": NS_B, "id": memory_id}, KEY_B) == {"forget": True}


def case_rememberMany(server: Server, world: World) -> None:
    def remember_many(namespace: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        return REMEMBER_MANY, {
            "ns": namespace,
            "inputs": [
                {"content": "B's first", "id": f"{memory_id}-copy"},
                {"content": "B's second", "links": [{"target": memory_id, "type": "CAUSES"}]},
            ],
        }

    assert_forbidden_alike(server, world, remember_many)
    before = snapshot(server, NS_B)
    absent = assert_absent_alike(server, world, remember_many)
    assert [e["extensions"]["code"] for e in absent["errors"]] == ["NOT_FOUND"]
    assert snapshot(server, NS_B)["memories"] == before["memories"]  # all or nothing


def case_associate(server: Server, world: World) -> None:
    b_id = world.b_memories[0]

    def to_a(namespace: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        source = b_id if namespace == NS_B else world.a_memories[0]
        return ASSOCIATE, {"ns": namespace, "input": {"source": source, "target": memory_id}}

    def from_a(namespace: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        return ASSOCIATE, {
            "ns": namespace,
            "input": {"source": memory_id, "target": b_id, "type": "CAUSES", "weight": 0.5},
        }

    def other_a(memory_id: str) -> str:
        return world.a_memories[1] if memory_id != world.a_memories[1] else world.a_memories[0]

    def within_a(namespace: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        return ASSOCIATE, {
            "ns": namespace,
            "input": {"source": memory_id, "target": other_a(memory_id)},
        }

    before = snapshot(server, NS_B)
    for request in (to_a, from_a, within_a):
        assert_forbidden_alike(server, world, request)
        absent = assert_absent_alike(server, world, request)
        assert [e["extensions"]["code"] for e in absent["errors"]] == ["NOT_FOUND"], absent
    assert snapshot(server, NS_B)["associations"] == before["associations"]


def case_forget(server: Server, world: World) -> None:
    def forget(namespace: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        return FORGET, {"ns": namespace, "id": memory_id}

    assert_forbidden_alike(server, world, forget)
    assert assert_absent_alike(server, world, forget) == {"data": {"forget": False}}
    # still there for key A
    for memory_id in (*world.a_memories, world.a_alias, *world.a_archived):
        assert server.data(MEMORY, {"ns": NS_A, "id": memory_id}, KEY_A)["memory"] is not None


def case_updateMemory(server: Server, world: World) -> None:
    def update(namespace: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        return UPDATE, {"ns": namespace, "id": memory_id, "input": {"content": "A new version"}}

    def in_place(namespace: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        return UPDATE, {"ns": namespace, "id": memory_id, "input": {"importance": 0.7}}

    def supersede(namespace: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        return REMEMBER, {
            "ns": namespace,
            "input": {"content": "It changed, see the old one", "supersedes": [memory_id]},
        }

    before = snapshot(server, NS_B)
    for request in (update, in_place, supersede):
        assert_forbidden_alike(server, world, request)
        absent = assert_absent_alike(server, world, request)
        assert [e["extensions"]["code"] for e in absent["errors"]] == ["NOT_FOUND"], absent
    assert snapshot(server, NS_B) == before


def case_runLifecycle(server: Server, world: World) -> None:
    for dry in (True, False):
        for jobs in (None, ["dedup"], ["archive"]):

            def run(
                namespace: str, memory_id: str, jobs: list[str] | None = jobs, dry: bool = dry
            ) -> tuple[str, dict[str, Any]]:
                return RUN_LIFECYCLE, {"ns": namespace, "jobs": jobs, "dry": dry}

            assert_forbidden_alike(server, world, run)
    # every job on ns-b (which holds a copy of ns-a's duplicate text and archivable notes)
    report = server.data(RUN_LIFECYCLE, {"ns": NS_B, "jobs": None, "dry": False}, KEY_B)
    assert report["runLifecycle"]["namespace"] == NS_B
    assert_reveals_nothing(report, world)
    assert server.data(STATS, {"ns": NS_B}, KEY_B)["stats"]["lifecycleRuns"]


CASES: dict[str, Callable[[Server, World], None]] = {
    "recall": case_recall,
    "memory": case_memory,
    "associations": case_associations,
    "stats": case_stats,
    "remember": case_remember,
    "rememberMany": case_rememberMany,
    "associate": case_associate,
    "forget": case_forget,
    "updateMemory": case_updateMemory,
    "runLifecycle": case_runLifecycle,
}


def test_every_root_field_has_an_isolation_case(server: Server) -> None:
    schema = server.data(ROOT_FIELDS, {})["__schema"]
    fields = {
        f["name"]
        for kind in ("queryType", "mutationType", "subscriptionType")
        if schema[kind] is not None
        for f in schema[kind]["fields"]
    }
    assert fields == set(CASES), f"without a case: {fields - set(CASES)}"


@pytest.mark.parametrize("root_field", sorted(CASES))
def test_key_b_can_neither_reach_nor_detect_namespace_a(
    server: Server, world: World, untouched: None, root_field: str
) -> None:
    CASES[root_field](server, world)


def test_key_a_still_reaches_everything_in_namespace_a(server: Server, world: World) -> None:
    """The control: the ids the cases guessed are real, and key A's view is complete."""
    for memory_id in (*world.a_memories, world.a_alias, *world.a_archived):
        memory = server.data(MEMORY, {"ns": NS_A, "id": memory_id}, KEY_A)["memory"]
        assert memory is not None and memory["namespace"] == NS_A
    stats = server.data(STATS, {"ns": NS_A}, KEY_A)["stats"]
    assert stats["memories"] == len(world.a_memories) + len(world.a_archived)
    found = server.data(
        RECALL,
        {"ns": NS_A, "q": A_TEXTS[2], "tiers": None, "context": None, "learn": False},
        KEY_A,
    )["recall"]
    assert world.a_memories[2] in {r["memory"]["id"] for r in found}


def test_graph_page_is_held_to_the_same_rules(
    server: Server, world: World, untouched: None
) -> None:
    """``GET /graph``: forbidden alike on ``ns-a``; absent alike for ``ns-a``'s ids in
    ``ns-b``."""

    def page(namespace: str, focus: str) -> tuple[int, str]:
        response = server.http.get(
            "/graph",
            params={"namespace": namespace, "focus": focus},
            headers={"Authorization": f"Bearer {KEY_B}"},
        )
        text = response.text
        for value, placeholder in ((focus, "<id>"), (namespace, "<namespace>")):
            text = text.replace(value, placeholder)
        # request ids differ per request
        text = "\n".join(line for line in text.splitlines() if "equestId" not in line)
        try:
            body = json.loads(text)
        except ValueError:
            return response.status_code, text
        for error in body.get("errors") or []:
            error.get("extensions", {}).pop("requestId", None)
        return response.status_code, json.dumps(body, sort_keys=True)

    if server.http.get("/graph").status_code == 404:
        pytest.skip("no /graph route in this build")
    forbidden = {page(ns, memory_id) for ns in (NS_A, GHOST) for memory_id in world.a_ids}
    forbidden.add(page(NS_A, ghost_id()))
    assert len(forbidden) == 1 and next(iter(forbidden))[0] == 403, forbidden
    absent = {page(NS_B, memory_id) for memory_id in world.a_ids if ":" not in memory_id}
    absent.add(page(NS_B, ghost_id()))
    assert len(absent) == 1 and next(iter(absent))[0] == 404, absent
    for secret in (*world.a_contents, "alpha-session"):
        assert all(secret not in text for _, text in forbidden | absent)
