"""The Neo4j store's connection: the driver (one connection pool), the version check and
schema creation when it opens, and the three ways a statement runs (a read, a write of
one statement, a transaction of several), each mapping driver errors that mean "the
store cannot be used now" to ``StoreUnavailable``.

Every write is one managed transaction (``Session.execute_write``: the driver retries it
on transient errors, so the work function recomputes everything it sends) made of
batched ``UNWIND $rows`` statements. Constraints and indexes are created idempotently
when the connection opens.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypedDict, Unpack, cast

from hippograph.graph.model import DuplicateId, StoreUnavailable
from hippograph.graph.neo4j_statements import (
    AWAIT_INDEXES,
    COMPONENTS,
    HOME_DATABASE,
    PING,
    SCHEMA,
    Statement,
)

__all__ = [
    "MIN_VERSION",
    "Neo4jConnection",
    "Neo4jOptions",
    "check_version",
    "checked_params",
    "version_tuple",
]

_DATABASE_NOT_FOUND = "Neo.ClientError.Database.DatabaseNotFound"
# A transaction the server ended at its timeout: TransactionTimedOut(ClientConfiguration)
# while it ran, LockClientStopped while it waited for a lock.
_ROWS_PER_TIMEOUT = 1_000  # a write gets the transaction timeout per this many rows
_TIMED_OUT = (
    "Neo.ClientError.Transaction.TransactionTimedOut",
    "Neo.ClientError.Transaction.LockClientStopped",
)


# The oldest server this store supports: the Cypher it sends (CALL subqueries with a
# scope clause, ``CALL ... IN TRANSACTIONS`` in tests) and the schema it creates.
MIN_VERSION = (5, 26)


def version_tuple(version: str) -> tuple[int, ...]:
    """``"5.26.30"`` -> ``(5, 26, 30)``; calendar versions (``"2025.01.0"``) compare above
    every 5.x. A part's trailing non-digits (``"0-aura"``) are ignored; a version with
    no leading number is ``()``, below everything."""
    parts: list[int] = []
    for part in version.strip().split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        parts.append(int(digits.group()))
    return tuple(parts)


def check_version(version: str, uri: str) -> None:
    """Refuse a server older than :data:`MIN_VERSION`, naming both versions."""
    if version_tuple(version) < MIN_VERSION:
        minimum = ".".join(map(str, MIN_VERSION))
        raise StoreUnavailable(
            f"Neo4j at {uri} is version {version or 'unknown'}; hippograph needs Neo4j "
            f"{minimum} or later (NEO4J_URI)"
        )


def checked_params(statement: Statement, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` if they are exactly the ones ``statement`` declares, else TypeError."""
    if params.keys() != statement.params:
        raise TypeError(
            f"statement {statement.name} takes {sorted(statement.params)}, got {sorted(params)}"
        )
    return params


class Neo4jOptions(TypedDict, total=False):
    """How to reach and use the server, all optional (see
    :class:`~hippograph.graph.neo4j_store.Neo4jStore`)."""

    database: str | None
    driver: Any
    statement_trace: Path | None
    connection_timeout: float | None
    acquisition_timeout: float | None
    retry_time: float | None
    transaction_timeout: float | None


class Neo4jConnection:
    """A driver for one Neo4j database, opened (server version checked, schema
    created) on construction; ``auth`` is (user, password) or None, the options those
    of :class:`~hippograph.graph.neo4j_store.Neo4jStore`.

    Driver errors that mean "the store cannot be used right now" (unreachable,
    connection lost, credentials refused, unknown database, transient errors left after
    the driver's retries) leave every method as ``StoreUnavailable``, naming the server
    and the variable to check, never the password.
    """

    def __init__(
        self,
        uri: str,
        auth: tuple[str, str] | None,
        **options: Unpack[Neo4jOptions],
    ) -> None:
        import neo4j

        unknown = sorted(options.keys() - Neo4jOptions.__annotations__.keys())
        if unknown:
            raise TypeError(f"unexpected keyword arguments: {', '.join(unknown)}")
        database = options.get("database")
        driver = options.get("driver")
        transaction_timeout = options.get("transaction_timeout")
        self._neo4j = neo4j
        self._uri = uri
        self._database = database
        self._named = database  # as configured, for messages
        self._tx_timeout = transaction_timeout
        self._trace = options.get("statement_trace")
        self._traced: set[str] = set()
        if driver is None:
            timeouts: dict[str, Any] = {
                "connection_timeout": options.get("connection_timeout"),
                "connection_acquisition_timeout": options.get("acquisition_timeout"),
                "max_transaction_retry_time": options.get("retry_time"),
            }
            driver = neo4j.GraphDatabase.driver(
                uri,
                auth=auth,
                # the server's notifications ("property key does not exist" on an empty
                # database, ...) are about our fixed statements, not the user's data
                notifications_min_severity="OFF",
                **{k: v for k, v in timeouts.items() if v is not None},
            )
        self._driver = driver
        try:
            try:
                self._driver.verify_connectivity()
            except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError) as exc:
                raise self._unavailable(exc) or exc from None
            if database is None:
                self._database = self.read(HOME_DATABASE)[0]["name"]
            components = self.read(COMPONENTS)
            kernel = next((r for r in components if r["name"] == "Neo4j Kernel"), None)
            check_version(kernel["versions"][0] if kernel else "", uri)
            for statement in SCHEMA:
                self.execute(statement, write=True)
            self.execute(AWAIT_INDEXES, write=True)
        except BaseException:
            self._driver.close()
            raise

    def _record(self, statement: Statement) -> None:
        if self._trace is not None and statement.name not in self._traced:
            self._traced.add(statement.name)
            with self._trace.open("a", encoding="utf-8") as trace:
                trace.write(statement.name + "\n")

    def _unavailable(self, exc: BaseException) -> StoreUnavailable | None:
        """The ``StoreUnavailable`` a driver error means, or None for any other error
        (a constraint, a bug in a statement)."""
        errors = self._neo4j.exceptions
        where = f"Neo4j at {self._uri}"
        if isinstance(exc, errors.AuthError):
            return StoreUnavailable(
                f"{where} refused the credentials: check NEO4J_USER and NEO4J_PASSWORD "
                f"({exc.message or type(exc).__name__})"
            )
        if isinstance(exc, errors.ClientError) and exc.code == _DATABASE_NOT_FOUND:
            return StoreUnavailable(
                f"{where} has no database {self._named!r}: check NEO4J_DATABASE"
            )
        if isinstance(exc, errors.ClientError) and (exc.code or "").startswith(_TIMED_OUT):
            within = f" within {self._tx_timeout:g} s" if self._tx_timeout else ""
            return StoreUnavailable(
                f"{where} ended a transaction that did not finish{within} (per thousand "
                "rows written; HIPPOGRAPH_NEO4J_TRANSACTION_TIMEOUT_S); it was rolled "
                "back, retry"
            )
        if isinstance(exc, errors.IncompleteCommit):
            return StoreUnavailable(
                f"{where}: the connection was lost while a write committed; it may or may "
                "not have been applied (retry with the same ids to find out)"
            )
        if isinstance(
            exc,
            errors.ServiceUnavailable
            | errors.SessionExpired
            | errors.ConnectionPoolError
            | errors.TransientError,
        ):
            reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            reason = " ".join(reason.split())  # the driver's messages span lines
            return StoreUnavailable(
                f"{where} is unavailable (NEO4J_URI): {reason}; retry once it is back"
            )
        return None

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        """Driver errors that mean the store cannot be used now, as StoreUnavailable."""
        try:
            yield
        except (self._neo4j.exceptions.Neo4jError, self._neo4j.exceptions.DriverError) as exc:
            mapped = self._unavailable(exc)
            if mapped is None:
                raise
            raise mapped from None

    def _session(self) -> Any:
        # the driver's bookmark manager: what one call wrote, the next one reads (also
        # on a cluster, whichever member serves it)
        return self._driver.session(
            database=self._database,
            bookmark_manager=self._driver.execute_query_bookmark_manager,
        )

    def _unit(self, work: Callable[[Any], Any], rows: int = 0) -> Callable[[Any], Any]:
        """``work`` as a unit of work the server aborts after the transaction timeout:
        the timeout for each started thousand ``rows`` it writes (an import of a whole
        namespace is one transaction), once for a read."""
        if self._tx_timeout is None:
            return work
        timeout = self._tx_timeout * max(1, -(-rows // _ROWS_PER_TIMEOUT))
        return cast(Callable[[Any], Any], self._neo4j.unit_of_work(timeout=timeout)(work))

    def execute(self, statement: Statement, *, write: bool = False, **params: Any) -> list[Any]:
        """Run one statement in its own managed (retried) transaction; its records."""
        self._record(statement)
        values = checked_params(statement, params)

        def work(tx: Any) -> list[Any]:
            return list(tx.run(statement.cypher, values))

        with self._mapped(), self._session() as session:
            run = session.execute_write if write else session.execute_read
            return cast(list[Any], run(self._unit(work)))

    def read(self, statement: Statement, **params: Any) -> list[Any]:
        """One read statement's records, in one network round trip: an auto-commit
        transaction (RUN and PULL sent together) rather than a managed one, whose BEGIN
        and COMMIT are two round trips more (a recall's fetch: 2.4 against 9.8 ms at 20k
        memories on loopback). A failure the driver deems retryable (a restart, a
        leader switch) runs it again as a managed transaction, with the driver's
        retries."""
        self._record(statement)
        values = checked_params(statement, params)
        query = self._neo4j.Query(statement.cypher, timeout=self._tx_timeout)
        errors = self._neo4j.exceptions
        with self._mapped():
            try:
                with self._session() as session:
                    return list(session.run(query, values))
            except (errors.Neo4jError, errors.DriverError) as exc:
                if not exc.is_retryable():
                    raise
        return self.execute(statement, **params)

    def transaction(self, work: Callable[[Callable[..., list[Any]]], Any], rows: int = 0) -> Any:
        """Run ``work(run)`` in one managed write transaction of about ``rows`` rows,
        retried on transient errors; ``run(statement, **params)`` returns a statement's
        records."""

        def attempt(tx: Any) -> Any:
            def run(statement: Statement, **params: Any) -> list[Any]:
                self._record(statement)
                return list(tx.run(statement.cypher, checked_params(statement, params)))

            return work(run)

        with self._mapped(), self._session() as session:
            try:
                return session.execute_write(self._unit(attempt, rows))
            except self._neo4j.exceptions.ConstraintError as exc:
                raise DuplicateId("id", f"a node with this id already exists: {exc}") from None

    def close(self) -> None:
        self._driver.close()

    def ping(self) -> None:
        """One trivial statement, not retried: ``StoreUnavailable`` at once (within the
        connection timeouts) when the server or its database cannot be used."""
        self._record(PING)
        with self._mapped(), self._driver.session(database=self._database) as session:
            session.run(PING.cypher).consume()
