"""API keys and namespace isolation: who may read and write which namespaces.

This module owns parsing ``HIPPOGRAPH_API_KEYS`` (``key1=ns1,ns2;key2=*``), checking the
bearer key of a request in constant time, and the :class:`Principal` every resolver asks
before it touches a namespace. A key is never logged, never put in an error message and
never kept in plain text after parsing: only its sha256 digest is held.

Without keys the server is open: every request acts as :data:`OPEN`, allowed everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from hippograph.graph import HippographError

__all__ = [
    "ALL_NAMESPACES",
    "OPEN",
    "ApiKeys",
    "Forbidden",
    "Principal",
    "Unauthenticated",
]

#: The namespace list that grants every namespace.
ALL_NAMESPACES = "*"
#: Keys shorter than this are accepted but warned about (see :meth:`ApiKeys.parse`).
SHORT_KEY = 16


class Unauthenticated(HippographError):
    """No bearer key, or one that is not configured."""

    code = "UNAUTHENTICATED"


class Forbidden(HippographError):
    """The key is valid but not for this namespace. The message never says whether
    anything exists there."""

    code = "FORBIDDEN"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a name safe to log (``key 2``, never the key) and the namespaces
    it may use (``None``: all of them)."""

    name: str
    namespaces: frozenset[str] | None

    @property
    def everywhere(self) -> bool:
        return self.namespaces is None

    def allows(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    def require(self, namespace: str) -> None:
        """Raise :class:`Forbidden` unless this principal may use ``namespace``."""
        if not self.allows(namespace):
            raise Forbidden(f"namespace: this API key may not use namespace {namespace!r}")


#: The principal of every request when no keys are configured.
OPEN = Principal("anonymous", None)


def _digest(key: str) -> bytes:
    # Comparing fixed-length digests keeps the comparison's time independent of the
    # presented key's length as well as of its content.
    return hashlib.sha256(key.encode("utf-8")).digest()


class ApiKeys:
    """The configured keys, each with its principal; see :meth:`parse` for the format."""

    def __init__(self, entries: Iterable[tuple[bytes, Principal]]) -> None:
        self._entries: tuple[tuple[bytes, Principal], ...] = tuple(entries)
        if not self._entries:
            raise ValueError("HIPPOGRAPH_API_KEYS: no keys given")
        self.short_keys: list[str] = []

    def __repr__(self) -> str:
        return f"ApiKeys({len(self._entries)} keys)"

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def from_secret(cls, secret: SecretStr | None) -> ApiKeys | None:
        """The keys of a ``Settings.api_keys`` value; ``None`` when unset or blank."""
        if secret is None or not secret.get_secret_value().strip():
            return None
        return cls.parse(secret.get_secret_value())

    @classmethod
    def parse(cls, spec: str) -> ApiKeys:
        """Parse ``key1=ns1,ns2;key2=*``: entries separated by ``;``, each a key, ``=``,
        and a comma-separated list of namespaces (``*`` for all). The key is everything
        before the entry's last ``=`` (so base64 padding works); namespaces may not
        contain ``=``, ``,`` or ``;``. Errors name the entry by position, never by key.

        >>> keys = ApiKeys.parse("k1-secret=alpha,beta; k2-secret=*")
        >>> keys.authenticate("Bearer k1-secret").namespaces == frozenset({"alpha", "beta"})
        True
        >>> keys.authenticate("Bearer k2-secret").everywhere
        True
        """
        entries: list[tuple[bytes, Principal]] = []
        seen: set[bytes] = set()
        short: list[str] = []
        position = 0
        for raw in spec.split(";"):
            if not raw.strip():
                continue
            position += 1
            where = f"HIPPOGRAPH_API_KEYS entry {position}"
            key, sep, names = raw.strip().rpartition("=")
            key = key.strip()
            if not sep or not key:
                raise ValueError(f"{where}: expected KEY=NAMESPACE[,NAMESPACE...] or KEY=*")
            if any(c.isspace() for c in key):
                raise ValueError(f"{where}: the key must not contain whitespace")
            namespaces = [n.strip() for n in names.split(",") if n.strip()]
            if not namespaces:
                raise ValueError(f"{where}: no namespaces after '='")
            digest = _digest(key)
            if digest in seen:
                raise ValueError(f"{where}: the same key is given twice")
            seen.add(digest)
            name = f"key {position}"
            if len(key) < SHORT_KEY:
                short.append(name)
            if ALL_NAMESPACES in namespaces:
                if len(namespaces) > 1:
                    raise ValueError(f"{where}: '*' must be the only namespace")
                entries.append((digest, Principal(name, None)))
            else:
                entries.append((digest, Principal(name, frozenset(namespaces))))
        keys = cls(entries)
        keys.short_keys = short
        return keys

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization: Bearer <key>`` header value, or
        :class:`Unauthenticated`. Every configured key is compared, in constant time."""
        if not authorization:
            raise Unauthenticated("Authorization: this server needs 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("Authorization: expected 'Bearer <key>'")
        presented = _digest(token)
        found: Principal | None = None
        for digest, principal in self._entries:
            # No early exit: the time taken does not depend on which key matched.
            if hmac.compare_digest(presented, digest):
                found = principal
        if found is None:
            raise Unauthenticated("Authorization: the API key is not valid")
        return found

    def principals(self) -> Sequence[Principal]:
        return [principal for _, principal in self._entries]
