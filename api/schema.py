"""The GraphQL schema agents talk to: the types (:mod:`hippograph.api.graphql_types`) and
resolvers (:mod:`hippograph.api.resolvers`) put together, the rules that reject a
document before it runs, and the shape of every error a client sees.

Errors leave resolvers as exceptions carrying a ``code`` (:class:`~graph.BadInput`,
:class:`~graph.NotFound`, :class:`LimitExceeded`, :class:`~api.auth.Forbidden`...);
:func:`error_payload` turns any GraphQL error into the JSON the client sees, with
``extensions.code`` and ``extensions.requestId`` and never a stack trace.

Before a document runs it must pass, besides GraphQL's own validation: a token limit
(strawberry's ``MaxTokensLimiter``, while parsing), a depth limit (``QueryDepthLimiter``),
an alias limit (``MaxAliasesLimiter``) and a cost limit (:func:`document_cost`). Each
rejection is a ``LIMIT_EXCEEDED`` error naming the setting that bounds it. Parsed and
validated documents are cached (bounded LRUs): agents resend the same few documents
with new variables, and validation was most of a request's GraphQL time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, cast

import strawberry
from graphql import (
    ASTValidationRule,
    DocumentNode,
    ExecutableDefinitionNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.error import GraphQLSyntaxError
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from hippograph.api.request import (
    LimitExceeded,
    RequestContext,
    RequestRecord,
    Service,
)
from hippograph.api.resolvers import Mutation, Query
from hippograph.api.settings import Settings
from hippograph.graph import HippographError

__all__ = [
    "ERROR_CODES",
    "LimitExceeded",
    "RequestContext",
    "RequestRecord",
    "Service",
    "build_schema",
    "document_cost",
    "error_payload",
]

log = logging.getLogger("hippograph.api")

#: Every ``extensions.code`` a client can see. ``MODEL_MISMATCH`` comes from the engine
#: when a namespace was embedded by another model than the server's.
ERROR_CODES = (
    "BAD_INPUT",
    "NOT_FOUND",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "LIMIT_EXCEEDED",
    "MODEL_MISMATCH",
    "ARCHIVE_CORRUPT",
    "STORE_UNAVAILABLE",
    "INTERNAL",
)
#: Codes of errors that say nothing about the request: the same request may succeed
#: later (``extensions.retryable``).
RETRYABLE_CODES = frozenset({"STORE_UNAVAILABLE"})

DOCUMENT_CACHE = 256  # parsed and validated documents kept (an LRU of each)
# graphql-core's parse error when a document is over MaxTokensLimiter's limit
_TOO_MANY_TOKENS = re.compile(r"Document contains more than (\d+) tokens")
# Cost model of a document (see document_cost): every field costs 1, these root fields
# cost more (each embeds text or scans a namespace), and the selections under a list
# field are multiplied by the size of the list its argument asks for.
ROOT_COST = {"recall": 10, "remember": 10, "rememberMany": 10, "stats": 5}
LIST_SIZE_ARGUMENT = {
    "recall": ("k", 10),
    "associations": ("limit", 100),
    "rememberMany": ("inputs", 1),
}


# -- document limits ------------------------------------------------------------------


class _CodedContext:
    """A ``ValidationContext`` seen through a limit rule: each error it reports becomes a
    LIMIT_EXCEEDED error naming the setting."""

    def __init__(self, context: ValidationContext, label: str, setting: str, limit: int) -> None:
        self._context = context
        self._label = label
        self._setting = setting
        self._limit = limit

    def report_error(self, error: GraphQLError) -> None:
        self._context.report_error(
            GraphQLError(
                f"{self._label}: {error.message} (HIPPOGRAPH_{self._setting}={self._limit})",
                error.nodes,
                extensions={"code": LimitExceeded.code, "field": "query", "limit": self._limit},
            )
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _coded(
    extension: AddValidationRules, label: str, setting: str, limit: int, max_cost: int
) -> Callable[[], AddValidationRules]:
    """A factory of the extension with its rules reporting LIMIT_EXCEEDED errors that
    name ``setting``. The rules skip a document over the cost limit: they walk every
    fragment expansion (exponential for fragments spreading fragments twice over), and
    the cost rule rejects that document anyway."""
    rules: list[type[ASTValidationRule]] = []
    for rule in extension.validation_rules:

        class Coded(rule):  # type: ignore[valid-type,misc]
            def __init__(self, context: ValidationContext) -> None:
                if sum(cost for _, cost in _operation_costs(context.document)) > max_cost:
                    ValidationRule.__init__(self, context)
                    return
                proxy = _CodedContext(context, label, setting, limit)
                super().__init__(cast(ValidationContext, proxy))

        Coded.__name__ = f"Coded{rule.__name__}"
        rules.append(Coded)
    return partial(AddValidationRules, rules)


def _list_size(node: FieldNode) -> int:
    """How many items a list field asks for: its size argument when a literal, else the
    argument's default (a variable is bounded at run time by MAX_K / MAX_BATCH)."""
    argument, default = LIST_SIZE_ARGUMENT.get(node.name.value, ("", 1))
    for arg in node.arguments or ():
        if arg.name.value != argument:
            continue
        if isinstance(arg.value, IntValueNode):
            return max(int(arg.value.value), 1)
        if isinstance(arg.value, ListValueNode):
            return max(len(arg.value.values), 1)
    return default


def document_cost(
    definition: ExecutableDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> int:
    """The cost of one operation: 1 per field (more for the root fields in
    :data:`ROOT_COST`), the selections under a list field multiplied by the size of the
    list it asks for (``recall(k:)``, ``associations(limit:)``, ``rememberMany(inputs:)``),
    fragments expanded where they are spread.

    Fragment costs are memoised, so the count takes time linear in the document even when
    fragments spread each other many times over (strawberry's depth and alias limits walk
    every expansion, so they run only on documents within the cost limit).
    """
    memo: dict[tuple[str, bool], int] = {}

    def selections(selection_set: SelectionSetNode | None, root: bool, seen: frozenset[str]) -> int:
        if selection_set is None:
            return 0
        total = 0
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                name = node.name.value
                total += ROOT_COST.get(name, 1) if root else 1
                total += _list_size(node) * selections(node.selection_set, False, seen)
            elif isinstance(node, InlineFragmentNode):
                total += selections(node.selection_set, root, seen)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                fragment = fragments.get(name)
                if fragment is None or name in seen:
                    continue  # unknown or cyclic: GraphQL validation reports it
                key = (name, root)
                if key not in memo:
                    memo[key] = selections(fragment.selection_set, root, seen | {name})
                total += memo[key]
        return total

    return selections(definition.selection_set, True, frozenset())


def _operation_costs(document: DocumentNode) -> Iterator[tuple[str, int]]:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            name = definition.name.value if definition.name else "anonymous"
            yield name, document_cost(definition, fragments)


def _cost_rule(max_cost: int) -> type[ValidationRule]:
    class QueryCostRule(ValidationRule):
        """Rejects a document whose operations cost more than ``max_cost`` together
        (every operation is validated, whichever one is then run)."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            costs = dict(_operation_costs(context.document))
            total = sum(costs.values())
            if total > max_cost:
                names = ", ".join(f"{name!r} {cost}" for name, cost in costs.items())
                context.report_error(
                    GraphQLError(
                        f"query cost: the document costs {total} ({names}); the limit is "
                        f"{max_cost} (HIPPOGRAPH_MAX_QUERY_COST: each field costs 1, recall "
                        "and remember 10, fields under recall/associations/rememberMany "
                        "count k/limit/inputs times)",
                        extensions={
                            "code": LimitExceeded.code,
                            "field": "query",
                            "limit": max_cost,
                        },
                    )
                )

    return QueryCostRule


def operation_label(fields: Sequence[str]) -> str:
    """The ``operation`` of logs and metrics: the root fields a request asked for, sorted
    and joined by ``+`` (``recall``, ``recall+stats``), ``introspection`` for ``__schema``
    and ``__type``, ``multiple`` for more than three. Only known fields get here (the
    document was valid), so the label's values are bounded by the schema."""
    names = sorted({"introspection" if f in ("__schema", "__type") else f for f in fields})
    if not names:
        return "none"
    return "+".join(names) if len(names) <= 3 else "multiple"


def _root_fields(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> Iterator[str]:
    for node in selection_set.selections:
        if isinstance(node, FieldNode):
            yield node.name.value
        elif isinstance(node, InlineFragmentNode):
            yield from _root_fields(node.selection_set, fragments)
        elif isinstance(node, FragmentSpreadNode) and node.name.value in fragments:
            yield from _root_fields(fragments[node.name.value].selection_set, fragments)


class _RecordOperation(SchemaExtension):
    """Names the request's operation (for logs and metrics) once the document is valid."""

    def on_validate(self) -> Iterator[None]:
        yield
        execution = self.execution_context
        context = execution.context
        if not isinstance(context, RequestContext) or execution.pre_execution_errors:
            return
        document = execution.graphql_document
        if document is None:
            return
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        chosen = [
            d
            for d in operations
            if execution.operation_name is None
            or (d.name is not None and d.name.value == execution.operation_name)
        ]
        if len(chosen) == 1:
            context.record.operation = operation_label(
                list(_root_fields(chosen[0].selection_set, fragments))
            )


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # The endpoint logs what must be logged (INTERNAL errors, with the request id);
        # strawberry's default would log every bad input with a traceback.
        return None


def build_schema(settings: Settings) -> strawberry.Schema:
    """The schema with the document limits of ``settings``."""
    return _Schema(
        query=Query,
        mutation=Mutation,
        extensions=[
            # Parsed and validated documents are cached (agents resend the same documents
            # with new variables); the caches are bounded LRUs keyed by the query text.
            partial(MaxTokensLimiter, max_token_count=settings.max_query_tokens),
            partial(ParserCache, maxsize=DOCUMENT_CACHE),
            partial(ValidationCache, maxsize=DOCUMENT_CACHE),
            _coded(
                QueryDepthLimiter(max_depth=settings.max_query_depth),
                "query depth",
                "MAX_QUERY_DEPTH",
                settings.max_query_depth,
                settings.max_query_cost,
            ),
            _coded(
                MaxAliasesLimiter(max_alias_count=settings.max_query_aliases),
                "query aliases",
                "MAX_QUERY_ALIASES",
                settings.max_query_aliases,
                settings.max_query_cost,
            ),
            partial(AddValidationRules, [_cost_rule(settings.max_query_cost)]),
            _RecordOperation,
        ],
    )


# -- errors as the client sees them ---------------------------------------------------


def _classify(error: GraphQLError) -> tuple[str, str, dict[str, Any]]:
    """(code, message, extra extensions) of an error; INTERNAL hides the message."""
    original = error.original_error
    if isinstance(original, HippographError):
        extra = {
            key: value
            for key in ("field", "limit")
            if (value := getattr(original, key, None)) is not None
        }
        if original.code in RETRYABLE_CODES:
            extra["retryable"] = True
        return original.code, str(original), extra
    extensions = error.extensions or {}
    if isinstance(extensions.get("code"), str):
        extra = {k: v for k, v in extensions.items() if k in ("field", "limit")}
        return str(extensions["code"]), error.message, extra
    tokens = _TOO_MANY_TOKENS.search(error.message)
    if isinstance(error, GraphQLSyntaxError) and tokens:
        limit = int(tokens.group(1))
        message = f"query: the document has more than {limit} tokens; the limit is {limit}"
        return (
            "LIMIT_EXCEEDED",
            f"{message} (HIPPOGRAPH_MAX_QUERY_TOKENS)",
            {
                "field": "query",
                "limit": limit,
            },
        )
    if original is None or isinstance(original, GraphQLError):
        # GraphQL's own checks: syntax, unknown fields, wrong argument or variable types
        return "BAD_INPUT", error.message, {}
    if error.path is None and error.message.startswith("Variable '$"):
        # a variable that its scalar could not parse (a malformed DateTime...)
        return "BAD_INPUT", error.message, {}
    return "INTERNAL", "", {}


def error_payload(error: GraphQLError, request_id: str) -> dict[str, Any]:
    """The JSON of one error: ``message``, ``locations``, ``path`` and ``extensions``
    with ``code``, ``requestId`` and, when known, the ``field`` and the ``limit``. An
    INTERNAL error is logged here with its traceback; the client gets the request id."""
    code, message, extra = _classify(error)
    if code == "INTERNAL":
        log.error(
            "internal error in request %s at %s",
            request_id,
            ".".join(str(p) for p in error.path or ()) or "-",
            exc_info=error.original_error,
            extra={"fields": {"request_id": request_id}},
        )
        message = f"internal error; quote request id {request_id} to the operator"
    payload: dict[str, Any] = {"message": message}
    if error.locations:
        payload["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        payload["path"] = list(error.path)
    payload["extensions"] = {"code": code, "requestId": request_id, **extra}
    return payload
