"""Check every Cypher statement hippograph can send to Neo4j with Neo4j's own front end.

Collects the statements of the Neo4j store (``graph/neo4j_statements.py`` and
``graph/neo4j_read_statements.py``, listed by ``neo4j_store.statements()``) and the saved
Browser queries (``graph/browser/queries.cypher``), and lints each with
``lintCypherQuery`` from ``@neo4j-cypher/language-support`` (Neo4j's Cypher parser and
semantic analysis compiled to JavaScript, installed in ``tools/cypher-lint`` by
``make lint-cypher``) against a schema of the store's labels, relationship types and
property keys, and the parameters the statement declares. Any error or warning is a
problem, printed with the statement's name; so is a declared parameter the statement
never uses. Prints ``N statements checked, M problems`` and exits 1 on any problem.

Usage: ``python tools/lint_cypher.py [--json]`` (``make lint-cypher``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hippograph.graph import neo4j_statements  # noqa: E402
from hippograph.graph.neo4j_store import statements  # noqa: E402

LINTER = ROOT / "tools" / "cypher-lint"
QUERIES = ROOT / "graph" / "browser" / "queries.cypher"
# What a person sets in Browser (``:param namespace => 'agent-1'``) before running the
# saved queries; README, "Exploring in Neo4j Browser".
BROWSER_PARAMS = frozenset({"namespace", "id"})
_PARAM = re.compile(r"\$(\w+)")


def _argument(name: str, type_: str, default: str | None = None) -> dict[str, object]:
    described = f"{name} = {default} :: {type_}" if default else f"{name} :: {type_}"
    found: dict[str, object] = {
        "name": name,
        "type": type_,
        "description": described,
        "isDeprecated": False,
    }
    if default is not None:
        found["default"] = f"DefaultParameterValue{{value={default}, type={type_}}}"
    return found


def _procedure(
    name: str, mode: str, arguments: list[dict[str, object]], returns: list[dict[str, object]]
) -> dict[str, object]:
    inputs = ", ".join(str(a["description"]) for a in arguments)
    outputs = ", ".join(str(r["description"]) for r in returns)
    return {
        "name": name,
        "description": name,
        "mode": mode,
        "worksOnSystem": False,
        "argumentDescription": arguments,
        "returnDescription": returns,
        "signature": f"{name}({inputs})" + (f" :: ({outputs})" if outputs else ""),
        "admin": False,
        "option": {"deprecated": False},
    }


# The procedures the store calls, with their Neo4j 5 signatures (Operations Manual,
# procedures reference); with a registry, the linter flags any other procedure and any
# unknown YIELD column.
PROCEDURES = {
    p["name"]: p
    for p in (
        _procedure(
            "db.index.fulltext.queryNodes",
            "READ",
            [
                _argument("indexName", "STRING"),
                _argument("queryString", "STRING"),
                _argument("options", "MAP", "{}"),
            ],
            [_argument("node", "NODE"), _argument("score", "FLOAT")],
        ),
        _procedure("db.awaitIndexes", "READ", [_argument("timeOutSeconds", "INTEGER", "300")], []),
        _procedure(
            "db.info",
            "READ",
            [],
            [
                _argument("id", "STRING"),
                _argument("name", "STRING"),
                _argument("creationDate", "STRING"),
            ],
        ),
        _procedure(
            "dbms.components",
            "DBMS",
            [],
            [
                _argument("name", "STRING"),
                _argument("versions", "LIST<STRING>"),
                _argument("edition", "STRING"),
            ],
        ),
    )
}


@dataclass(frozen=True)
class Checked:
    name: str
    cypher: str
    params: frozenset[str]


def saved_queries(path: Path = QUERIES) -> list[Checked]:
    """The saved Browser queries: each starts at a ``// name: <title>`` line and runs to
    the next one; other ``//`` lines are descriptions."""
    found: list[Checked] = []
    name: str | None = None
    lines: list[str] = []

    def flush() -> None:
        text = "\n".join(lines).strip().rstrip(";").strip()
        if name is not None and text:
            found.append(Checked(f"browser: {name}", text, BROWSER_PARAMS))

    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("// name:"):
            flush()
            name, lines = stripped.removeprefix("// name:").strip(), []
        elif not stripped.startswith("//"):
            lines.append(line)
    flush()
    return found


def collect() -> list[Checked]:
    store = [Checked(s.name, s.cypher, s.params) for s in statements()]
    return store + (saved_queries() if QUERIES.exists() else [])


def lint(checked: list[Checked]) -> list[tuple[str, str]]:
    """(statement name, problem) for every problem found."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed: the Cypher linter runs under node")
    if not (LINTER / "node_modules" / "@neo4j-cypher" / "language-support").is_dir():
        raise RuntimeError("the Cypher linter is not installed: run `make lint-cypher`")
    base = {
        "labels": list(neo4j_statements.LABELS),
        "relationshipTypes": list(neo4j_statements.RELATIONSHIP_TYPES),
        "propertyKeys": [*neo4j_statements.PROPERTY_KEYS, *neo4j_statements.ROW_KEYS],
        "procedures": {"CYPHER 5": PROCEDURES, "CYPHER 25": PROCEDURES},
    }
    request = {
        "statements": [
            {
                "name": c.name,
                "cypher": c.cypher,
                "schema": {**base, "parameters": {p: None for p in sorted(c.params)}},
            }
            for c in checked
        ]
    }
    done = subprocess.run(
        [node, str(LINTER / "lint.mjs")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=LINTER,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the Cypher linter failed: {done.stderr.strip()}")
    problems: list[tuple[str, str]] = []
    for c, result in zip(checked, json.loads(done.stdout)["results"], strict=True):
        for d in result["diagnostics"]:
            problems.append((c.name, f"{d['version']} {d['severity']}: {d['message']}"))
        for unused in sorted(c.params - set(_PARAM.findall(c.cypher))):
            if c.params is not BROWSER_PARAMS:
                problems.append((c.name, f"declared parameter ${unused} is never used"))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    checked = collect()
    problems = lint(checked)
    if args.json:
        print(
            json.dumps(
                {
                    "checked": len(checked),
                    "names": [c.name for c in checked],
                    "problems": [{"statement": n, "problem": p} for n, p in problems],
                }
            )
        )
    else:
        for name, problem in problems:
            print(f"{name}: {problem}")
        print(f"{len(checked)} statements checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
