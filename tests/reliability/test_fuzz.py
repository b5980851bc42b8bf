"""Fuzzing the GraphQL endpoint with bad input, against the real app on a loopback port.

Requests come from three sources:

* documents generated from the served schema (read by introspection) by
  hypothesis-graphql: valid queries and mutations, and ``Mode.NEGATIVE`` documents with
  one schema violation each. They are steered towards the namespaces and ids that exist,
  so that they reach the engine and not only the validator, and sprinkled with hostile
  text and odd numbers (``k: -1``, ``limit: 2147483647``);
* hypothesis-drawn JSON variables for fixed operations, and arbitrary bytes as bodies;
* hand-written hostile bodies: invalid UTF-8, NaN and Infinity, JSON that is not an
  object or is nested past the parser's limit, deep documents, strings over the content
  limit and bodies at the body limit, unknown enums, fields and arguments.

Every exchange goes through :meth:`Fuzzer.exchange`, which checks that the answer is a
GraphQL result in strict JSON (HTTP 200, or 400/401/413 for a body that cannot be read,
a missing key or a body over the limit; never 500), that every error carries an
``extensions.code`` of :data:`hippograph.api.schema.ERROR_CODES` other than ``INTERNAL`` (a bug),
and that ``/healthz`` still answers. A request is *rejected* when nothing it asked for
ran: the body was refused, the document was refused before it ran (errors without a
``path``), or every root field it selected failed. A rejected request must change
nothing: the ``stats`` and a store snapshot (every memory with all its fields, entities,
associations with their weights, lifecycle runs, the store generation) of each namespace
it named, and the list of namespaces, are compared before and after. Namespaces a
request did not name must not change whatever it did.

SQL- and Cypher-looking text is stored verbatim and comes back byte-identical, and the
store still holds everything else afterwards.

The default run checks about 900 requests; the slow run (``pytest -m slow``) over 12,000.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import graphql
import httpx
import hypothesis_graphql as hg
import pytest
from graphql import (
    ArgumentNode,
    DocumentNode,
    IntValueNode,
    NameNode,
    ObjectFieldNode,
    ObjectValueNode,
    OperationDefinitionNode,
    StringValueNode,
    ValueNode,
    Visitor,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes
from pydantic import SecretStr
from starlette.applications import Starlette

from hippograph.api.app import create_app
from hippograph.api.schema import ERROR_CODES
from hippograph.api.settings import Settings
from hippograph.embeddings import HashingEncoder
from hippograph.graph import MemoryGraph
from tests.serving import serving

pytestmark = pytest.mark.reliability

ADMIN = "fuzz-admin-key-0123456789abcdef"
FUZZER = "fuzz-agent-key-0123456789abcdef"
KEYS = f"{ADMIN}=*;{FUZZER}=fz-a,fz-b"
# Namespaces the generated requests are steered to: the fuzzer's key holds fz-a and fz-b,
# only the admin key may use fz-locked. SENTINEL is never named by a fuzzed request.
POOL = ("fz-a", "fz-b", "fz-locked")
SENTINEL = "fz-sentinel"
HOSTILE_NS = "fz-hostile"  # the verbatim tests' own namespace

MAX_CONTENT_CHARS = 2_000
MAX_BODY_BYTES = 1 << 20
DEFAULT_EXAMPLES = 300  # generated documents in the default run
SLOW_EXAMPLES = 10_000

# Text that would do damage if any layer interpreted it: SQL, FTS5 query syntax, Cypher,
# template and shell syntax, and characters that trip up naive escaping.
HOSTILE_TEXT = (
    "'); DROP TABLE nodes; --",
    "Robert'); DROP TABLE memory_fts; --",
    "1' OR '1'='1",
    '" OR ""="',
    "x'; DELETE FROM associations WHERE '1'='1",
    "; ATTACH DATABASE '/tmp/pwn.db' AS pwn; --",
    "MATCH (n) DETACH DELETE n",
    "MATCH (n:Memory) SET n.content = 'pwned' RETURN n",
    "CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'DETACH DELETE n', {})",
    "'}) MATCH (n) DETACH DELETE n //",
    "memory_fts MATCH '*'",
    'NEAR("drop" "table", 2) OR content:* AND NOT ^x',
    '"unterminated',
    "a*",
    "{{7*7}} ${jndi:ldap://127.0.0.1/a} $(rm -rf /) `id`",
    "<script>alert(1)</script>",
    "\\",
    "\x00nul\x00in the middle\x00",
    "\u202eright-to-left override\u202c and a zero\u200bwidth space",
    "\ufeffbyte order mark",
    "line\r\nbreak\ttab\x0bvertical\x1fcontrol",
    "emoji 🙂🧠 and astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "entity:caroline",
    "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇",
)

STATS = """
query Stats($ns: String!) {
  stats(namespace: $ns) {
    namespace memories entities
    tiers { tier count } kinds { kind count } associations { type count }
    index { kind vectors dead } graph { nodes edges }
    lifecycleRuns { job runId dryRun counts { name value } }
  }
}"""
REMEMBER = """
mutation Remember($ns: String!, $input: MemoryInput!) {
  remember(namespace: $ns, input: $input) {
    id namespace content sessionId metadata kind importance
  }
}"""
REMEMBER_MANY = """
mutation RememberMany($ns: String!, $inputs: [MemoryInput!]!) {
  rememberMany(namespace: $ns, inputs: $inputs) { id content }
}"""
MEMORY = """
query Memory($ns: String!, $id: ID!) {
  memory(namespace: $ns, id: $id) { id namespace content sessionId metadata }
}"""
RECALL = """
query Recall($ns: String!, $q: String!, $k: Int, $hops: Int, $tiers: [Tier!],
             $context: RecallContext, $learn: Boolean! = true) {
  recall(namespace: $ns, query: $q, k: $k, hops: $hops, tiers: $tiers, context: $context,
         learn: $learn) {
    memory { id content } score path { from type weight }
  }
}"""
ASSOCIATE = """
mutation Associate($ns: String!, $input: AssociationInput!) {
  associate(namespace: $ns, input: $input) { source target type weight }
}"""
ASSOCIATIONS = """
query Associations($ns: String!, $id: ID!, $types: [AssociationType!], $limit: Int!) {
  associations(namespace: $ns, id: $id, types: $types, limit: $limit) { source target type }
}"""
FORGET = "mutation Forget($ns: String!, $id: ID!) { forget(namespace: $ns, id: $id) }"
RUN_LIFECYCLE = """
mutation Run($ns: String!, $jobs: [String!], $dry: Boolean!, $at: DateTime) {
  runLifecycle(namespace: $ns, jobs: $jobs, dryRun: $dry, at: $at) { dryRun jobs { job } }
}"""
# Operations whose variables are drawn by hypothesis (see test_fuzzed_variables...)
OPERATIONS = {
    "remember": REMEMBER,
    "rememberMany": REMEMBER_MANY,
    "memory": MEMORY,
    "recall": RECALL,
    "associate": ASSOCIATE,
    "associations": ASSOCIATIONS,
    "forget": FORGET,
    "runLifecycle": RUN_LIFECYCLE,
}


# -- the server -------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def strict_json(raw: bytes) -> Any:
    """``raw`` as RFC 8259 JSON: UTF-8, no NaN or Infinity."""
    return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)


@dataclass(frozen=True)
class Request:
    """One HTTP request to ``/graphql``: a body and a key, and what the checks need to
    know about it: the namespaces it names and the GraphQL document, when it has one."""

    body: bytes
    key: str | None = ADMIN
    namespaces: frozenset[str] = frozenset()
    query: str | None = None
    content_type: str = "application/json"


def gql(
    query: str,
    variables: Mapping[str, Any] | None = None,
    *,
    key: str | None = ADMIN,
    namespaces: tuple[str, ...] | frozenset[str] = (),
) -> Request:
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode("utf-8")
    return Request(body, key, frozenset(namespaces), query)


def raw(body: bytes, *, namespaces: tuple[str, ...] = (), query: str | None = None) -> Request:
    return Request(body, ADMIN, frozenset(namespaces), query)


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    rejected: bool

    @property
    def codes(self) -> list[str]:
        return [e["extensions"]["code"] for e in self.body.get("errors", [])]

    @property
    def data(self) -> Any:
        return self.body.get("data")


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _digest(value: Any) -> str | None:
    if value is None:
        return None
    return hashlib.sha256(memoryview(value).tobytes()).hexdigest()


def store_snapshot(graph: MemoryGraph, namespace: str) -> dict[str, Any]:
    """Everything an export of ``namespace`` would hold (vectors as digests), read from
    the store, plus its generation and lifecycle runs."""
    store = graph.store
    memories = [
        (
            m.id,
            m.content,
            m.kind.value,
            m.tier.value,
            m.session_id,
            m.created_at.isoformat(),
            m.when.isoformat(),
            m.last_accessed_at.isoformat() if m.last_accessed_at else None,
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
    ]
    associations = [
        (
            a.source,
            a.target,
            a.type.value,
            a.weight,
            a.explicit,
            a.activation_count,
            a.created_at.isoformat(),
            a.last_activated_at.isoformat() if a.last_activated_at else None,
        )
        for chunk in store.iter_associations(namespace)
        for a in chunk
    ]
    return {
        "generation": store.generation(namespace),
        "counts": store.stats(namespace),
        "memories": sorted(memories),
        "entities": store.entities(namespace),
        "associations": sorted(associations),
        "runs": sorted((r.id, r.job, r.dry_run) for r in store.runs(namespace)),
    }


class Fuzzer:
    """A client of the running app that checks every exchange (see the module docstring)
    and counts them."""

    def __init__(self, base: str, app: Starlette) -> None:
        self.http = httpx.Client(base_url=base, timeout=120)
        self.app = app
        self.sent = 0
        self.rejected = 0
        self.statuses: dict[int, int] = {}
        self.codes: dict[str, int] = {}
        self.sentinel: dict[str, Any] = {}

    @property
    def graph(self) -> MemoryGraph:
        service = self.app.state.hippograph.service
        assert service is not None
        return service.graph

    def settle(self) -> None:
        """Flush recall side effects (access counts, Hebbian weights) into the store, so
        that what a snapshot reads does not move under it."""
        self.graph.checkpoint()

    def namespaces(self) -> list[str]:
        return sorted(self.graph.store.namespaces())

    def stats(self, namespace: str) -> Any:
        response = self.http.post(
            "/graphql",
            json={"query": STATS, "variables": {"ns": namespace}},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        body = strict_json(response.content)
        if body.get("errors"):
            # a name the engine refuses (empty, too long...): then it holds nothing
            assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_INPUT"}, body
            return None
        return body["data"]["stats"]

    def state(self, named: frozenset[str]) -> dict[str, Any]:
        """What a request may change: a full snapshot and the ``stats`` of each namespace
        it names; of the others, the store generation (bumped by every write) and counts."""
        self.settle()
        store = self.graph.store
        return {
            "namespaces": self.namespaces(),
            "others": {ns: (store.generation(ns), store.stats(ns)) for ns in (*POOL, SENTINEL)},
            "store": {ns: store_snapshot(self.graph, ns) for ns in named},
            "stats": {ns: self.stats(ns) for ns in named},
        }

    def check_sentinel(self) -> None:
        """The namespace no request names is exactly as it was seeded."""
        self.settle()
        assert store_snapshot(self.graph, SENTINEL) == self.sentinel

    def send(self, request: Request) -> httpx.Response:
        headers = {"Content-Type": request.content_type}
        if request.key is not None:
            headers["Authorization"] = f"Bearer {request.key}"
        return self.http.post("/graphql", content=request.body, headers=headers)

    def exchange(self, request: Request) -> Answer:
        """Send ``request`` and check the answer and the state before and after."""
        # a name that is not text (a lone surrogate) cannot be stored: nothing to compare
        named = frozenset(ns for ns in request.namespaces if _is_text(ns))
        before = self.state(named)
        response = self.send(request)
        self.sent += 1
        answer = self.check_answer(request, response)
        health = self.http.get("/healthz")
        assert health.status_code == 200, "the server stopped answering /healthz"
        after = self.state(named)
        # Namespaces the request did not name never change.
        for ns in {*POOL, SENTINEL} - named:
            assert after["others"][ns] == before["others"][ns], (ns, request)
        if answer.rejected:
            self.rejected += 1
            assert after["namespaces"] == before["namespaces"], (request, answer.body)
            for ns in named:
                assert after["store"][ns] == before["store"][ns], changed(
                    ns, before["store"][ns], after["store"][ns], request, answer
                )
                assert after["stats"][ns] == before["stats"][ns], (ns, request, answer.body)
        return answer

    def check_answer(self, request: Request, response: httpx.Response) -> Answer:
        status = response.status_code
        self.statuses[status] = self.statuses.get(status, 0) + 1
        where = (request.body[:500], response.content[:2000])
        assert status in (200, 400, 401, 413), where
        assert response.headers["content-type"].startswith("application/json"), where
        body = strict_json(response.content)
        assert isinstance(body, dict) and "data" in body, where
        assert set(body) <= {"data", "errors", "extensions"}, where
        assert body["data"] is None or isinstance(body["data"], dict), where
        errors = body.get("errors")
        assert errors is None or (isinstance(errors, list) and errors), where
        request_id = response.headers["x-request-id"]
        for error in errors or []:
            assert isinstance(error.get("message"), str) and error["message"], where
            extensions = error["extensions"]
            assert extensions["code"] in ERROR_CODES, where
            assert extensions["code"] != "INTERNAL", where  # INTERNAL is a bug
            assert extensions["requestId"] == request_id, where
            self.codes[extensions["code"]] = self.codes.get(extensions["code"], 0) + 1
        assert b"Traceback" not in response.content, where
        if status != 200:
            expected = {400: "BAD_INPUT", 401: "UNAUTHENTICATED", 413: "LIMIT_EXCEEDED"}[status]
            codes = [e["extensions"]["code"] for e in errors or []]
            assert body["data"] is None and codes == [expected], where
            if request.key in (ADMIN, FUZZER) and len(request.body) <= MAX_BODY_BYTES:
                assert status == 400, where
            return Answer(status, body, rejected=True)
        if request.key not in (ADMIN, FUZZER):
            raise AssertionError(f"a request without a valid key was answered {status}")
        if not errors:
            assert isinstance(body["data"], dict), where
            return Answer(status, body, rejected=False)
        return Answer(status, body, rejected=_nothing_ran(request.query, errors))


def changed(
    namespace: str, before: dict[str, Any], after: dict[str, Any], request: Request, answer: Answer
) -> str:
    """What a rejected request changed in a namespace's snapshot, to read in a failure."""
    lines = [f"{namespace!r} changed by {request.body[:1000]!r} answered {answer.body}"]
    for key in before:
        if before[key] != after[key]:
            if isinstance(before[key], list):
                lines.append(f"  {key} before: {sorted(set(before[key]) - set(after[key]))}")
                lines.append(f"  {key} after: {sorted(set(after[key]) - set(before[key]))}")
            else:
                lines.append(f"  {key}: {before[key]} -> {after[key]}")
    return "\n".join(lines)


def _root_keys(query: str | None) -> set[str] | None:
    """The response keys of the root fields of the document's only operation."""
    if query is None:
        return None
    try:
        document = graphql.parse(query)
    except graphql.GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        return None
    keys = set()
    for selection in operations[0].selection_set.selections:
        if not isinstance(selection, graphql.FieldNode):
            return None
        keys.add((selection.alias or selection.name).value)
    return keys


def _nothing_ran(query: str | None, errors: list[dict[str, Any]]) -> bool:
    """Whether a request answered with ``errors`` ran nothing: the document was refused
    before execution (no error has a path), or every root field it selected failed."""
    if all("path" not in e for e in errors):
        return True
    roots = _root_keys(query)
    failed = {e["path"][0] for e in errors if e.get("path")}
    return roots is not None and roots <= failed


# -- serving ----------------------------------------------------------------------------


def fuzz_settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        encoder="hashing",
        api_keys=SecretStr(KEYS),
        lifecycle_interval_s=0,  # no background jobs: a snapshot moves only by a request
        max_content_chars=MAX_CONTENT_CHARS,
        max_body_bytes=MAX_BODY_BYTES,
        max_batch=20,
    )


@dataclass
class Seeded:
    """What the fuzzed namespaces hold at the start: ids to steer requests to."""

    ids: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzer]:
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("HIPPOGRAPH_"):
                mp.delenv(name)
        app = create_app(fuzz_settings(tmp_path_factory.mktemp("fuzz")))
        with serving(app) as base:
            client = Fuzzer(base, app)
            yield client
            client.http.close()
    print(
        f"\nfuzz server: {client.sent} requests checked, {client.rejected} rejected; "
        f"statuses {client.statuses}; codes {client.codes}"
    )


@pytest.fixture(scope="module")
def seeded(fuzzer: Fuzzer) -> Seeded:
    """Five memories in each fuzzed namespace and the sentinel, in sessions (FOLLOWS),
    with entities (MENTIONS) and explicit links; their ids are the ones requests guess."""
    seeded = Seeded()
    for ns in (*POOL, SENTINEL):
        prefix = ns.removeprefix("fz-")[0]
        inputs = [
            {
                "id": f"{prefix}-{i}",
                "content": f"Caroline met Melanie at the Lake House, note {i} of {ns}",
                "sessionId": "s1",
                "metadata": {"n": i},
                "links": [{"target": f"{prefix}-{i - 1}", "type": "CAUSES"}] if i else [],
            }
            for i in range(5)
        ]
        answer = fuzzer.exchange(gql(REMEMBER_MANY, {"ns": ns, "inputs": inputs}, namespaces=(ns,)))
        assert not answer.codes, answer.body
        seeded.ids += [m["id"] for m in answer.data["rememberMany"]]
        seeded.ids += list(fuzzer.graph.store.entities(ns))
    fuzzer.settle()
    fuzzer.sentinel = store_snapshot(fuzzer.graph, SENTINEL)
    return seeded


# -- steering generated documents -------------------------------------------------------


def _string(value: str) -> StringValueNode:
    return StringValueNode(value=value)


def _json_value(leaves: st.SearchStrategy[ValueNode]) -> st.SearchStrategy[ValueNode]:
    names = st.from_regex(r"[_A-Za-z][_0-9A-Za-z]{0,8}", fullmatch=True)

    def extend(children: st.SearchStrategy[ValueNode]) -> st.SearchStrategy[ValueNode]:
        objects = st.dictionaries(names, children, max_size=4).map(
            lambda d: ObjectValueNode(
                fields=tuple(ObjectFieldNode(name=NameNode(value=k), value=v) for k, v in d.items())
            )
        )
        return st.one_of(st.lists(children, max_size=4).map(nodes.List), objects)

    return st.recursive(leaves, extend, max_leaves=12)


JSON_LEAVES = st.one_of(
    st.just(nodes.Null),
    st.booleans().map(nodes.Boolean),
    st.integers().map(nodes.Int),  # beyond 64 bits too
    st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    st.text(max_size=20).map(_string),
    st.sampled_from(HOSTILE_TEXT).map(_string),
)
DATETIMES = st.one_of(
    st.datetimes(timezones=st.sampled_from([None, UTC])).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "9999-12-31T23:59:59-05:00",  # year 10000 in UTC
            "0001-01-01T00:00:00+05:00",  # year 0 in UTC
            "2024-02-30T00:00:00",
            "2024-01-01T00:00:00+25:00",
            "2024-01-01",
            "yesterday",
            "",
        ]
    ),
    st.text(max_size=30),
).map(_string)
CUSTOM_SCALARS = {"DateTime": DATETIMES, "JSON": _json_value(JSON_LEAVES)}

HUGE_TEXT = "h" * (MAX_CONTENT_CHARS + 1)
TEXT_FIELDS = {"content", "query", "text", "sessionId"}
ID_FIELDS = {"id", "target", "source"}
INT_FIELDS = {"k", "limit", "hops"}
ODD_INTS = (-(2**31), -1, 0, 1, 2, 100, 101, 10_000, 10_001, 2**31 - 1)


class _Steer(Visitor):
    """Replaces, by drawing, the values of namespace, id, text and size arguments (and
    input fields) of a generated document, and notes the namespaces it names. Only values
    of the expected kind are replaced, so a negative document keeps its violation."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any], ids: list[str]) -> None:
        super().__init__()
        self.draw = draw
        self.ids = ids
        self.namespaces: set[str] = set()

    def enter_argument(self, node: ArgumentNode, *_: Any) -> ArgumentNode | None:
        value = self._steer(node.name.value, node.value)
        named = node.value if value is None else value
        if node.name.value == "namespace" and isinstance(named, StringValueNode):
            self.namespaces.add(named.value)
        return None if value is None else ArgumentNode(name=node.name, value=value)

    def enter_object_field(self, node: ObjectFieldNode, *_: Any) -> ObjectFieldNode | None:
        value = self._steer(node.name.value, node.value)
        return None if value is None else ObjectFieldNode(name=node.name, value=value)

    def _steer(self, name: str, value: ValueNode) -> ValueNode | None:
        if name == "namespace" and isinstance(value, StringValueNode):
            choice = self.draw(st.sampled_from((*POOL, *POOL, None)))
            return None if choice is None else _string(choice)
        if name in ID_FIELDS and isinstance(value, StringValueNode | IntValueNode):
            choice = self.draw(st.sampled_from((*self.ids, None, None)))
            return None if choice is None else _string(choice)
        if name in TEXT_FIELDS and isinstance(value, StringValueNode):
            choice = self.draw(st.sampled_from((*HOSTILE_TEXT, HUGE_TEXT, *[None] * 8)))
            return None if choice is None else _string(choice)
        if name in INT_FIELDS and isinstance(value, IntValueNode):
            choice = self.draw(st.sampled_from((*ODD_INTS, *[None] * 6)))
            return None if choice is None else nodes.Int(choice)
        return None


def documents(schema: graphql.GraphQLSchema) -> st.SearchStrategy[DocumentNode]:
    """Valid documents of one root field each (a failure there is a clean rejection, which
    must change nothing), valid queries and mutations of several root fields, and
    documents with one schema violation."""
    options: dict[str, Any] = {"custom_scalars": CUSTOM_SCALARS, "print_ast": lambda d: d}
    assert schema.query_type is not None and schema.mutation_type is not None
    return st.one_of(
        *(hg.queries(schema, fields=[name], **options) for name in schema.query_type.fields),
        *(hg.mutations(schema, fields=[name], **options) for name in schema.mutation_type.fields),
        hg.queries(schema, **options),
        hg.mutations(schema, **options),
        hg.from_schema(schema, mode=hg.Mode.NEGATIVE, **options),
        hg.from_schema(schema, mode=hg.Mode.NEGATIVE, **options),
    )


KEYS_DRAWN = st.sampled_from((ADMIN, ADMIN, ADMIN, ADMIN, FUZZER, FUZZER, FUZZER, None, "nope"))


def fuzz_documents(fuzzer: Fuzzer, seeded: Seeded, examples: int) -> None:
    schema = served_schema(fuzzer)
    strategy = documents(schema)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        document = data.draw(strategy, label="document")
        steer = _Steer(data.draw, seeded.ids)
        query = graphql.print_ast(graphql.visit(document, steer))
        key = data.draw(KEYS_DRAWN, label="key")
        fuzzer.exchange(
            Request(
                json.dumps({"query": query}).encode("utf-8"),
                key,
                frozenset(steer.namespaces),
                query,
            )
        )

    one()


def served_schema(fuzzer: Fuzzer) -> graphql.GraphQLSchema:
    """The schema as the running server describes it (introspection)."""
    response = fuzzer.http.post(
        "/graphql",
        json={"query": graphql.get_introspection_query()},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    body = strict_json(response.content)
    assert "errors" not in body, body
    return graphql.build_client_schema(body["data"])


# -- generated documents ----------------------------------------------------------------


def test_generated_documents_get_graphql_answers_and_rejected_ones_change_nothing(
    fuzzer: Fuzzer, seeded: Seeded
) -> None:
    start, rejected = fuzzer.sent, fuzzer.rejected
    fuzz_documents(fuzzer, seeded, DEFAULT_EXAMPLES)
    sent = fuzzer.sent - start
    print(
        f"\nfuzzed {sent} generated documents ({fuzzer.rejected - rejected} rejected); "
        f"statuses {fuzzer.statuses}; codes {fuzzer.codes}"
    )
    assert sent >= DEFAULT_EXAMPLES
    fuzzer.check_sentinel()
    assert fuzzer.rejected - rejected > 0 and sent - (fuzzer.rejected - rejected) > 0


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_ten_thousand_generated_documents(fuzzer: Fuzzer, seeded: Seeded) -> None:
    start = fuzzer.sent
    fuzz_documents(fuzzer, seeded, SLOW_EXAMPLES)
    variables_and_bytes(fuzzer, seeded, 1_000)
    print(f"\nfuzzed {fuzzer.sent - start} requests; statuses {fuzzer.statuses}")
    assert fuzzer.sent - start >= SLOW_EXAMPLES + 2_000
    fuzzer.check_sentinel()


# -- drawn variables and drawn bytes ----------------------------------------------------


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    )


JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),  # NaN and Infinity too: json.dumps writes them as bare words
        st.text(max_size=30),
        st.sampled_from(HOSTILE_TEXT),
        st.text(st.characters(codec=None, categories=["Cs"]), min_size=1, max_size=3),
    ),
    _containers,
    max_leaves=15,
)


def variables(ids: list[str]) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """An operation of :data:`OPERATIONS` and variables for it: mostly well-typed with
    odd values, sometimes anything at all."""
    text = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40), st.just(HUGE_TEXT))
    an_id = st.one_of(st.sampled_from(ids), st.text(max_size=10))
    memory_input = st.fixed_dictionaries(
        {"content": text},
        optional={
            "id": an_id,
            "sessionId": text,
            "kind": st.sampled_from(["EVENT", "FACT", "DREAM", "event"]),
            "importance": st.one_of(st.floats(), st.integers()),
            "metadata": JSON_VALUES,
            "occurredAt": DATETIMES.map(lambda n: n.value),
            "links": st.lists(
                st.fixed_dictionaries(
                    {"target": an_id},
                    optional={
                        "type": st.sampled_from(["CAUSES", "MENTIONS", "LOVES"]),
                        "weight": st.floats(),
                    },
                ),
                max_size=3,
            ),
            "colour": st.just("unknown input field"),
        },
    )
    common = {
        "ns": st.one_of(st.sampled_from(POOL), st.text(max_size=10)),
        "input": st.one_of(
            memory_input,
            st.fixed_dictionaries(
                {"source": an_id, "target": an_id},
                optional={"type": st.sampled_from(["CAUSES", "X"]), "weight": st.floats()},
            ),
        ),
        "inputs": st.lists(memory_input, max_size=4),
        "id": an_id,
        "q": text,
        "k": st.one_of(st.sampled_from(ODD_INTS), st.integers(), st.floats()),
        "hops": st.one_of(st.none(), st.integers(-2, 6)),
        "limit": st.one_of(st.sampled_from(ODD_INTS), st.integers()),
        "tiers": st.one_of(st.none(), st.lists(st.sampled_from(["ARCHIVED", "WORKING", "X"]))),
        "types": st.one_of(st.none(), st.lists(st.sampled_from(["FOLLOWS", "NOPE"]))),
        "context": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={
                    "sessionId": text,
                    "text": text,
                    "at": DATETIMES.map(lambda n: n.value),
                    "since": DATETIMES.map(lambda n: n.value),
                    "entities": st.lists(text, max_size=3),
                },
            ),
        ),
        "jobs": st.one_of(st.none(), st.lists(st.sampled_from(["decay", "dedup", "shrink"]))),
        "dry": st.booleans(),
        "learn": st.booleans(),
    }

    @st.composite
    def draw(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
        name = draw(st.sampled_from(sorted(OPERATIONS)))
        used = [v for v in common if f"${v}:" in OPERATIONS[name]]
        values = {v: draw(common[v]) for v in used}
        if draw(st.integers(0, 9)) == 0:  # anything at all for one of them
            values[draw(st.sampled_from(used))] = draw(JSON_VALUES)
        return name, values

    return draw()


def _namespaces_of(values: Mapping[str, Any]) -> tuple[str, ...]:
    ns = values.get("ns")
    return (ns,) if isinstance(ns, str) else ()


def variables_and_bytes(fuzzer: Fuzzer, seeded: Seeded, examples: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(drawn=variables(seeded.ids), key=st.sampled_from((ADMIN, ADMIN, FUZZER)))
    def with_variables(drawn: tuple[str, dict[str, Any]], key: str) -> None:
        name, values = drawn
        query = OPERATIONS[name]
        fuzzer.exchange(gql(query, values, key=key, namespaces=_namespaces_of(values)))

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        drawn=variables(seeded.ids),
        cut=st.integers(min_value=0),
        noise=st.binary(min_size=1, max_size=8),
        anything=st.binary(max_size=64),
        whole=st.booleans(),
    )
    def with_bytes(
        drawn: tuple[str, dict[str, Any]], cut: int, noise: bytes, anything: bytes, whole: bool
    ) -> None:
        name, values = drawn
        query = OPERATIONS[name]
        body = gql(query, values).body
        at = cut % (len(body) + 1)
        mangled = anything if whole else body[:at] + noise + body[at:]
        fuzzer.exchange(raw(mangled, namespaces=_namespaces_of(values), query=query))

    with_variables()
    with_bytes()


def test_drawn_variables_and_mangled_bytes_get_graphql_answers(
    fuzzer: Fuzzer, seeded: Seeded
) -> None:
    start = fuzzer.sent
    variables_and_bytes(fuzzer, seeded, 100)
    print(f"\nfuzzed {fuzzer.sent - start} variable sets and byte strings")
    assert fuzzer.sent - start >= 200
    fuzzer.check_sentinel()


# -- hand-written hostile bodies --------------------------------------------------------


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def remember_raw(input_json: bytes) -> Request:
    """A remember in fz-a whose ``input`` variable is the raw bytes ``input_json`` (which
    may hold what ``json.dumps`` never writes: bad UTF-8, NaN, lone surrogates)."""
    head = b'{"query": %s, "variables": {"ns": "fz-a", "input": ' % json.dumps(REMEMBER).encode()
    return raw(head + input_json + b"}}", namespaces=("fz-a",), query=REMEMBER)


def typename_raw(tail: bytes) -> Request:
    """``{"query": "{ __typename }"`` followed by ``tail``."""
    return raw(b'{"query": "{ __typename }"' + tail)


def recall_literal(arguments: str) -> Request:
    return gql(
        f'{{ recall(namespace: "fz-a", query: "q", {arguments}) {{ score }} }}',
        namespaces=("fz-a",),
    )


Case = tuple[str, Request, int, "set[str] | None"]


def hostile_requests() -> list[Case]:
    """(label, request, expected status, expected codes): the codes every error must have
    one of (an empty set: no errors at all; None: anything well-formed)."""
    ns = "fz-a"
    bad = {"BAD_INPUT"}
    over = {"LIMIT_EXCEEDED"}

    def call(query: str, variables: dict[str, Any]) -> Request:
        return gql(query, variables, namespaces=(ns,))

    def remember(**fields: Any) -> Request:
        return call(REMEMBER, {"ns": ns, "input": {"content": "x", **fields}})

    def recall(**values: Any) -> Request:
        return call(RECALL, {"ns": ns, "q": "lake", **values})

    empty = len(call(REMEMBER, {"ns": ns, "input": {"content": ""}}).body)
    filler = MAX_BODY_BYTES - empty
    near_limit = remember(content="z" * filler)
    assert len(near_limit.body) == MAX_BODY_BYTES
    nested = '{ recall(namespace: "fz-a", query: "q") { ' + "memory { " * 9 + "id" + " }" * 10
    wide = "memory { id }"
    for _ in range(12):
        wide = f"memory {{ id }} path {{ from }} x: score {wide}"
    aliases = " ".join(f'a{i}: stats(namespace: "fz-a") {{ memories }}' for i in range(50))
    year_10000 = "9999-12-31T23:59:59-05:00"  # in UTC
    year_0 = "0001-01-01T00:00:00+05:00"
    return [
        # bytes that are not UTF-8: the whole body, in the document, in a variable
        ("not UTF-8 at all", raw(b"\xff\xfe\xfa\xfb garbage"), 400, bad),
        ("invalid UTF-8 in the document", raw(b'{"query": "{ __typename }\xff"}'), 400, bad),
        ("truncated UTF-8 in a variable", remember_raw(b'{"content": "caf\xc3"}'), 400, bad),
        ("overlong encoding of '/'", remember_raw(b'{"content": "a\xc0\xaf"}'), 400, bad),
        ("UTF-8 encoded surrogate", remember_raw(b'{"content": "a\xed\xa0\x80"}'), 400, bad),
        ("lone surrogate escape", remember_raw(b'{"content": "half \\ud83d"}'), 400, bad),
        (
            "lone surrogate escape in a metadata key",
            remember_raw(b'{"content": "x", "metadata": {"\\udc00": 1}}'),
            400,
            bad,
        ),
        ("surrogate pair escape is one character", remember(content="\U0001f642"), 200, set()),
        # NaN, Infinity and numbers out of range
        (
            "NaN as k",
            raw(
                b'{"query": %s, "variables": {"ns": "fz-a", "q": "lake", "k": NaN}}'
                % json.dumps(RECALL).encode(),
                namespaces=(ns,),
                query=RECALL,
            ),
            200,
            bad,
        ),
        (
            "Infinity as importance",
            remember_raw(b'{"content": "x", "importance": Infinity}'),
            200,
            bad,
        ),
        (
            "-Infinity as a link weight",
            remember_raw(b'{"content": "x", "links": [{"target": "a-0", "weight": -Infinity}]}'),
            200,
            bad,
        ),
        ("NaN in metadata", remember_raw(b'{"content": "x", "metadata": {"v": NaN}}'), 200, bad),
        (
            "1e400 in metadata",
            remember_raw(b'{"content": "x", "metadata": {"v": 1e400}}'),
            200,
            bad,
        ),
        ("NaN in an unused variable", typename_raw(b', "variables": {"v": NaN}}'), 200, set()),
        ("huge integer as importance", remember(importance=10**400), 200, bad),
        ("k = -1", recall(k=-1), 200, bad),
        ("k = 0", recall(k=0), 200, bad),
        ("k = max_k + 1", recall(k=101), 200, over),
        ("k = 2**31 - 1 literal", recall_literal("k: 2147483647"), 200, over),
        ("k = -(2**31) literal", recall_literal("k: -2147483648"), 200, bad),
        ("k = 2**31 (not an Int)", recall(k=2**31), 200, bad),
        ("k = 10**30", recall(k=10**30), 200, bad),
        ("hops = -1", recall(hops=-1), 200, bad),
        ("limit = -5", call(ASSOCIATIONS, {"ns": ns, "id": "a-0", "limit": -5}), 200, bad),
        # bodies that are JSON but not a GraphQL request
        ("a JSON string", raw(b'"{ __typename }"'), 400, bad),
        ("a JSON number", raw(b"42"), 400, bad),
        ("JSON null", raw(b"null"), 400, bad),
        ("JSON true", raw(b"true"), 400, bad),
        ("a batch", raw(b'[{"query": "{ __typename }"}]'), 400, bad),
        ("an empty object", raw(b"{}"), 400, bad),
        ("query is a number", raw(b'{"query": 5}'), 400, bad),
        ("variables is a list", typename_raw(b', "variables": [1]}'), 400, bad),
        ("not JSON", raw(b"{query: {__typename}}"), 400, bad),
        ("empty body", raw(b""), 400, bad),
        (
            "JSON nested 100,000 deep",
            typename_raw(b', "variables": {"v": %s}}' % _deep(100_000).encode()),
            400,
            bad,
        ),
        (
            "metadata nested 5,000 deep",
            remember_raw(b'{"content": "x", "metadata": {"v": %s}}' % _deep(5_000).encode()),
            400,
            bad,
        ),
        (
            "metadata nested 500 deep",
            remember_raw(b'{"content": "deep", "metadata": {"v": %s}}' % _deep(500).encode()),
            200,
            None,
        ),
        (
            "text/plain body",
            Request(b'{"query": "{ __typename }"}', ADMIN, content_type="text/plain"),
            400,
            bad,
        ),
        # deep and wide documents
        ("document nested 10,000 braces deep", gql("{ " * 10_000 + "}" * 10_000), 200, bad),
        ("list literal nested 10,000 deep", recall_literal(f"tiers: {_deep(10_000)}"), 200, bad),
        ("selection 10 levels deep", gql(nested, namespaces=(ns,)), 200, bad | over),
        ("50 aliases", gql(f"{{ {aliases} }}", namespaces=(ns,)), 200, over),
        (
            "wide recall",
            gql(f'{{ recall(namespace: "fz-a", query: "q", k: 100) {{ {wide} }} }}'),
            200,
            over | bad,
        ),
        (
            "fragment cycle",
            gql("query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }"),
            200,
            bad,
        ),
        # huge strings
        ("content one over the limit", remember(content="c" * (MAX_CONTENT_CHARS + 1)), 200, over),
        ("content at the body limit", near_limit, 200, over),
        ("body one byte over the limit", remember(content="z" * (filler + 1)), 413, over),
        ("recall query over the limit", recall(q="q" * (MAX_CONTENT_CHARS + 1)), 200, over),
        (
            "context text over the limit",
            recall(context={"text": "t " * MAX_CONTENT_CHARS}),
            200,
            over,
        ),
        (
            "a namespace of 500,000 characters",
            gql(REMEMBER, {"ns": "n" * 500_000, "input": {"content": "x"}}),
            200,
            bad,
        ),
        ("an id of 100,000 characters", call(MEMORY, {"ns": ns, "id": "i" * 100_000}), 200, None),
        # dates the engine cannot hold
        ("occurredAt in year 10000 in UTC", remember(occurredAt=year_10000), 200, bad),
        (
            "occurredAt in year 0 in UTC",
            call(REMEMBER_MANY, {"ns": ns, "inputs": [{"content": "x", "occurredAt": year_0}]}),
            200,
            bad,
        ),
        ("context at in year 10000 in UTC", recall(context={"at": year_10000}), 200, bad),
        ("context until in year 0 in UTC", recall(context={"until": year_0}), 200, bad),
        # unknown enums, fields, arguments, operations
        ("unknown kind", remember(kind="DREAM"), 200, bad),
        ("unknown tier", recall_literal("tiers: [FROZEN]"), 200, bad),
        ("enum as a string literal", recall_literal('tiers: ["WORKING"]'), 200, bad),
        (
            "unknown association type",
            call(ASSOCIATE, {"ns": ns, "input": {"source": "a-0", "target": "a-1", "type": "X"}}),
            200,
            bad,
        ),
        ("unknown input field", remember(colour="red"), 200, bad),
        (
            "unknown output field",
            gql('{ stats(namespace: "fz-a") { memories password } }'),
            200,
            bad,
        ),
        (
            "unknown argument",
            gql('mutation { forget(namespace: "fz-a", id: "a-0", cascade: true) }'),
            200,
            bad,
        ),
        ("unknown root field", gql("{ nodes { id } }"), 200, bad),
        (
            "unknown job",
            call(RUN_LIFECYCLE, {"ns": ns, "jobs": ["shrink"], "dry": False}),
            200,
            bad,
        ),
        (
            # strawberry runs the first operation (the spec asks for an error): either will do
            "two operations, none named",
            gql("query A { __typename } query B { __typename }"),
            200,
            None,
        ),
        ("a required variable missing", gql(REMEMBER, {"input": {"content": "x"}}), 200, bad),
        # an id of another namespace is absent here
        ("forget an id of the sentinel", call(FORGET, {"ns": ns, "id": "s-0"}), 200, set()),
    ]


def test_hostile_bodies_get_graphql_answers_and_change_nothing(
    fuzzer: Fuzzer, seeded: Seeded
) -> None:
    problems = []
    for label, request, status, codes in hostile_requests():
        answer = fuzzer.exchange(request)
        got = set(answer.codes)
        if answer.status != status or (
            codes is not None and (got != codes if not codes else not got or not got <= codes)
        ):
            problems.append((label, answer.status, json.dumps(answer.body)[:300]))
    assert not problems, "\n".join(map(str, problems))
    fuzzer.check_sentinel()


def test_a_refused_recall_of_the_archive_rehydrates_nothing(fuzzer: Fuzzer, seeded: Seeded) -> None:
    """Searching the archive rehydrates what it finds: a recall refused for its k or hops
    must not have done that first."""
    ns = "fz-archive"
    old = [
        {
            "content": f"Note {i} about the shed and its blue paint",
            "occurredAt": f"2020-02-0{i + 1}T09:00:00Z",
            "importance": 0.2,
        }
        for i in range(3)
    ]
    assert not fuzzer.exchange(
        gql(REMEMBER_MANY, {"ns": ns, "inputs": old}, namespaces=(ns,))
    ).codes
    archived = fuzzer.exchange(
        gql(
            RUN_LIFECYCLE,
            {  # idleness counts from storing: 60 days on, unused, the notes are cold
                "ns": ns,
                "jobs": ["tiering", "archive"],
                "dry": False,
                "at": (datetime.now(UTC) + timedelta(days=60)).isoformat(),
            },
            namespaces=(ns,),
        )
    )
    assert not archived.codes, archived.body
    assert fuzzer.graph.store.stats(ns)["tiers"]["archived"] == 3
    for bad in ({"k": 0}, {"k": -1}, {"hops": -1}, {"hops": -(2**31)}):
        answer = fuzzer.exchange(
            gql(
                RECALL,
                {"ns": ns, "q": "shed blue paint", "tiers": ["ARCHIVED"], **bad},
                namespaces=(ns,),
            )
        )
        assert answer.rejected and answer.codes == ["BAD_INPUT"], answer.body
    assert fuzzer.graph.store.stats(ns)["tiers"]["archived"] == 3
    answer = fuzzer.exchange(
        gql(RECALL, {"ns": ns, "q": "shed blue paint", "tiers": ["ARCHIVED"]}, namespaces=(ns,))
    )
    assert answer.data["recall"] and fuzzer.graph.store.stats(ns)["tiers"]["archived"] < 3


# -- no engine work outlives its answer -------------------------------------------------


class GatedEncoder(HashingEncoder):
    """The hashing encoder; a text containing WAIT blocks until ``gate`` opens, and the
    order in which things happen is written to ``events``."""

    def __init__(self) -> None:
        super().__init__(dim=64)
        self.gate = threading.Event()
        self.started = threading.Event()
        self.events: list[str] = []

    def encode(self, texts: Any) -> Any:
        if any("WAIT" in t for t in texts):
            self.started.set()
            self.gate.wait(timeout=60)
            self.events.append("engine work done")
        return super().encode(texts)


def test_an_answer_waits_for_the_engine_work_of_fields_cancelled_by_a_sibling(
    tmp_path: Path,
) -> None:
    """graphql-core cancels the other root fields of a query when one fails; the engine
    work they started (here a recall, which learns) still ends before the answer goes
    out, so a rejected request has no side effects after its answer and the worker pool
    limit counts the work."""
    settings = fuzz_settings(tmp_path)
    encoder = GatedEncoder()
    graph = MemoryGraph(tmp_path, encoder=encoder, config=settings.graph_config())
    app = create_app(settings, graph=graph)
    with serving(app) as base, httpx.Client(base_url=base, timeout=120) as http:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        query = (
            '{ a: recall(namespace: "fz-a", query: "WAIT for me") { score } '
            'b: stats(namespace: "") { memories } }'  # fails at once: BAD_INPUT
        )
        opener = threading.Timer(1.0, encoder.gate.set)  # if the answer has not come first
        opener.start()
        try:
            response = http.post("/graphql", json={"query": query}, headers=headers)
            encoder.events.append("answered")
        finally:
            opener.cancel()
            encoder.gate.set()
        assert encoder.started.is_set()
        assert response.status_code == 200
        assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_INPUT"]
        assert encoder.events == ["engine work done", "answered"]
        service = app.state.hippograph.service
        assert service is not None and service.limiter.borrowed_tokens == 0


# -- hostile text is data ---------------------------------------------------------------


def test_sql_and_cypher_looking_text_is_stored_verbatim_and_never_interpreted(
    fuzzer: Fuzzer, seeded: Seeded
) -> None:
    before = {ns: store_snapshot(fuzzer.graph, ns) for ns in (*POOL, SENTINEL)}
    namespaces_before = set(fuzzer.namespaces())
    stored: dict[tuple[str, str], str] = {}
    for i, text in enumerate(HOSTILE_TEXT):
        # the text as content, session, metadata key and value, caller id and namespace
        for ns, memory_id in ((HOSTILE_NS, f"h{i}-{text}"[:200]), (text, "same")):
            answer = fuzzer.exchange(
                gql(
                    REMEMBER,
                    {
                        "ns": ns,
                        "input": {
                            "content": text,
                            "id": memory_id,
                            "sessionId": text[:200],
                            "metadata": {text: text},
                        },
                    },
                    namespaces=(ns,),
                )
            )
            assert not answer.codes, (text, answer.body)
            memory = answer.data["remember"]
            assert (memory["content"], memory["id"], memory["namespace"]) == (text, memory_id, ns)
            assert memory["metadata"] == {text: text} and memory["sessionId"] == text[:200]
            stored[ns, memory_id] = text
        # the text as a GraphQL string literal
        literal = json.dumps(text, ensure_ascii=False)
        answer = fuzzer.exchange(
            gql(
                f"mutation {{ remember(namespace: {json.dumps(HOSTILE_NS)}, "
                f"input: {{content: {literal}, sessionId: {literal}}}) {{ id content }} }}",
                namespaces=(HOSTILE_NS,),
            )
        )
        assert not answer.codes, (text, answer.body)
        assert answer.data["remember"]["content"] == text
        stored[HOSTILE_NS, answer.data["remember"]["id"]] = text
        # as a recall query, a context and an id to look up: no error, nothing changes
        for request in (
            gql(
                RECALL,
                {"ns": HOSTILE_NS, "q": text, "context": {"text": text, "entities": [text]}},
                namespaces=(HOSTILE_NS,),
            ),
            gql(MEMORY, {"ns": HOSTILE_NS, "id": text}, namespaces=(HOSTILE_NS,)),
            gql(FORGET, {"ns": "fz-b", "id": text}, namespaces=("fz-b",)),
        ):
            answer = fuzzer.exchange(request)
            assert not answer.codes, (text, answer.body)
    # every memory comes back byte-identical, through the service and from the store
    for (ns, memory_id), text in stored.items():
        answer = fuzzer.exchange(gql(MEMORY, {"ns": ns, "id": memory_id}, namespaces=(ns,)))
        got = answer.data["memory"]
        assert got["content"].encode("utf-8") == text.encode("utf-8"), (memory_id, got)
        [memory] = fuzzer.graph.store.get(ns, [memory_id])
        assert memory.content.encode("utf-8") == text.encode("utf-8")
    # ...and nothing else was touched: the store still has everything
    assert namespaces_before | {HOSTILE_NS, *HOSTILE_TEXT} == set(fuzzer.namespaces())
    fuzzer.settle()
    for ns, snapshot in before.items():
        after = store_snapshot(fuzzer.graph, ns)
        assert after["memories"] == snapshot["memories"] and after["counts"] == snapshot["counts"]
    for text in HOSTILE_TEXT:  # the namespace named by the text holds its one memory
        assert [m.id for chunk in fuzzer.graph.store.iter_memories(text) for m in chunk] == ["same"]


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(min_size=1, max_size=300).filter(lambda s: s.strip()))
def test_any_text_round_trips_byte_identical(fuzzer: Fuzzer, seeded: Seeded, text: str) -> None:
    answer = fuzzer.exchange(
        gql(REMEMBER, {"ns": HOSTILE_NS, "input": {"content": text}}, namespaces=(HOSTILE_NS,))
    )
    assert not answer.codes, answer.body
    memory_id = answer.data["remember"]["id"]
    answer = fuzzer.exchange(
        gql(MEMORY, {"ns": HOSTILE_NS, "id": memory_id}, namespaces=(HOSTILE_NS,))
    )
    assert answer.data["memory"]["content"].encode("utf-8") == text.encode("utf-8")
