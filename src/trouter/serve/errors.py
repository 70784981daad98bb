"""Errors the gateway returns, always in OpenAI's error JSON so every OpenAI client can read them.

{"error": {"message": "...", "type": "invalid_request_error", "param": "model", "code": null}}
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

INVALID_REQUEST = "invalid_request_error"
UPSTREAM_ERROR = "upstream_error"
SERVER_ERROR = "server_error"


def error_payload(
    message: str, kind: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_bytes(
    message: str, kind: str, param: str | None = None, code: str | None = None
) -> bytes:
    return json.dumps(error_payload(message, kind, param, code)).encode()


class GatewayError(Exception):
    """A request the gateway answers with an error status; `response()` renders it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> bytes:
        return error_bytes(self.message, self.kind, self.param, self.code)

    def response(self, extra_headers: dict[str, str] | None = None) -> Response:
        return Response(
            self.body(),
            status_code=self.status,
            media_type="application/json",
            headers={**self.headers, **(extra_headers or {})},
        )


def bad_request(message: str, param: str | None = None, code: str | None = None) -> GatewayError:
    """A 400 whose `param` names the offending field."""
    return GatewayError(400, message, param=param, code=code)
