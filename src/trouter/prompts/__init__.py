"""Prompt templates: one text file per prompt, versioned with the code.

A template file starts with a header of `key: value` lines (`purpose`, one line; `version`, the
id stored with everything the prompt produces), then sections introduced by `---- system` and
`---- user`. Placeholders are `$name` / `${name}` (`string.Template`; write `$$` for a dollar
sign). `$marker` renders as one machine-readable line naming the prompt version and a few
fields, which makes logs greppable and lets test servers answer each prompt type.

    >>> p = load_prompt("json_repair")
    >>> p.version
    'json-repair/1'
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

MARKER_PREFIX = "trouter-prompt:"


@dataclass(frozen=True)
class Prompt:
    name: str
    purpose: str
    version: str
    system: str
    user: str

    def fields(self) -> set[str]:
        found: set[str] = set()
        for text in (self.system, self.user):
            for match in string.Template.pattern.finditer(text):
                name = match.group("named") or match.group("braced")
                if name:
                    found.add(name)
        return found

    def marker(self, meta: dict[str, Any] | None = None) -> str:
        return f"{MARKER_PREFIX} {self.version} {json.dumps(meta or {}, sort_keys=True)}"

    def render(self, meta: dict[str, Any] | None = None, **values: Any) -> list[dict[str, Any]]:
        """Chat messages with every placeholder filled (a missing one is a KeyError)."""
        values = {k: str(v) for k, v in values.items()}
        values["marker"] = self.marker(meta)
        messages = []
        if self.system.strip():
            system = string.Template(self.system).substitute(values).strip()
            messages.append({"role": "system", "content": system})
        messages.append(
            {"role": "user", "content": string.Template(self.user).substitute(values).strip()}
        )
        return messages


def parse_marker(text: str) -> tuple[str, dict[str, Any]] | None:
    """(version, meta) from the marker line in a rendered prompt, or None."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(MARKER_PREFIX):
            version, _, meta = line.removeprefix(MARKER_PREFIX).strip().partition(" ")
            return version, json.loads(meta) if meta else {}
    return None


@cache
def load_prompt(name: str) -> Prompt:
    """Read `prompts/<name>.txt` from the package."""
    try:
        text = resources.files("trouter.prompts").joinpath(f"{name}.txt").read_text("utf-8")
    except FileNotFoundError:
        raise KeyError(f"no prompt template named {name!r}") from None
    header, sections = _split(text)
    if "purpose" not in header or "version" not in header:
        raise ValueError(f"prompt {name!r} needs 'purpose:' and 'version:' header lines")
    return Prompt(
        name=name,
        purpose=header["purpose"],
        version=header["version"],
        system=sections.get("system", ""),
        user=sections.get("user", ""),
    )


def _split(text: str) -> tuple[dict[str, str], dict[str, str]]:
    header: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("---- "):
            current = sections.setdefault(line[5:].strip(), [])
        elif current is not None:
            current.append(line)
        elif ":" in line:
            key, value = line.split(":", 1)
            header[key.strip()] = value.strip()
    return header, {k: "\n".join(v).strip("\n") for k, v in sections.items()}


def prompt_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".txt")
        for p in resources.files("trouter.prompts").iterdir()
        if p.name.endswith(".txt")
    )
