"""Client authentication: `Authorization: Bearer <key>` against the gateway's own key list.

These are the keys clients use to reach the gateway, unrelated to the upstream providers' keys.
Every configured key is compared in constant time (no early exit on the first match either), so
timing tells an attacker nothing about how close a guess was.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from pathlib import Path

from trouter.errors import ConfigError
from trouter.serve.errors import GatewayError

ANONYMOUS = ""


def load_client_keys(env: str | None = None, file: str | Path | None = None) -> tuple[str, ...]:
    """Keys from a variable (comma- or whitespace-separated) and/or a file (one per line, # comments)."""
    keys: list[str] = []
    if env:
        keys += os.environ.get(env, "").replace(",", " ").split()
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise ConfigError(f"client key file not found: {path}")
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                keys.append(line)
    return tuple(dict.fromkeys(keys))


class ClientAuth:
    """Checks bearer tokens; with no keys configured every request is let in."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = [k.encode() for k in keys]
        for key in self._keys:
            if len(key) < 8:
                raise ConfigError("client API keys must be at least 8 characters long")
        # A short, non-reversible id per key, for the decision log's `client` column.
        self._ids = [hashlib.sha256(k).hexdigest()[:12] for k in self._keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, authorization: str | None) -> str:
        """The caller's key id, or a 401 in OpenAI's error format."""
        if not self._keys:
            return ANONYMOUS
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("missing API key: send the header 'Authorization: Bearer YOUR_KEY'")
        presented = token.strip().encode()
        found = -1
        for i, key in enumerate(self._keys):
            if hmac.compare_digest(presented, key):
                found = i
        if found < 0:
            raise _unauthorized("incorrect API key provided")
        return self._ids[found]


def _unauthorized(message: str) -> GatewayError:
    return GatewayError(
        401,
        message,
        code="invalid_api_key",
        headers={"www-authenticate": 'Bearer realm="trouter"'},
    )
