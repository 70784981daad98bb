"""Where a pool model lives and how to authenticate to it, resolved when first needed.

`resolve_endpoint(spec)` is the one place that turns a `ModelSpec` into a base URL, an API key
(read from the variable named by `spec.api_key_env`) and request headers. The LLM client uses it
for the `openai` SDK; the gateway can use it for raw HTTP pass-through:

    ep = resolve_endpoint(spec)
    httpx.post(ep.chat_url, headers=ep.headers, json={**body, "model": spec.model})
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from trouter.errors import ConfigError
from trouter.pool import ModelSpec

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Sent when a model has no api_key_env (local vLLM / llama.cpp servers): the SDK insists on a key.
NO_KEY = "no-key"


class MissingKeyError(ConfigError):
    """The API-key variable a model needs is not set (nothing was sent)."""


@dataclass(frozen=True)
class Endpoint:
    """A resolved endpoint: base URL (…/v1, no trailing slash) and the key to send."""

    base_url: str
    api_key: str
    key_env: str | None

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @property
    def models_url(self) -> str:
        return f"{self.base_url}/models"

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"}


def base_url_of(spec: ModelSpec) -> str:
    """The spec's base URL without a trailing slash (OpenAI's when the spec has none)."""
    url = (spec.base_url or DEFAULT_BASE_URL).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"model {spec.name!r}: base_url {url!r} must start with http:// or https://"
        )
    return url


def resolve_endpoint(spec: ModelSpec) -> Endpoint:
    """Resolve a spec's endpoint, reading its API key from the environment now.

    Raises `MissingKeyError` naming the model and the variable when the key is unset or empty.
    """
    url = base_url_of(spec)
    if spec.api_key_env is None and spec.base_url is None:
        # OpenAI's API (the default endpoint) without a key refuses every call.
        raise ConfigError(
            f"model {spec.name!r} has no endpoint: the pool gives it no base_url (so OpenAI's) "
            "and no api_key_env; give the pool each model's base_url (and api_key_env if the "
            "server needs a key)"
        )
    if spec.api_key_env is None:
        return Endpoint(base_url=url, api_key=NO_KEY, key_env=None)
    key = os.environ.get(spec.api_key_env, "").strip()
    if not key:
        raise MissingKeyError(
            f"model {spec.name!r} needs an API key in the environment variable "
            f"{spec.api_key_env}, which is not set; export {spec.api_key_env}=... "
            "or change api_key_env in the pool"
        )
    return Endpoint(base_url=url, api_key=key, key_env=spec.api_key_env)
