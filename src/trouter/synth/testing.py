"""A deterministic fake generator for tests and benchmarks: a `FakeOpenAI` handler that answers
each synthesis prompt (taxonomy generate / critique / compare, QA batches, answerability
checks) with valid JSON derived from the request, using the marker line every template carries.

    with FakeOpenAI(FakeGenerator()) as server: ...

The same request always gets the same answer. Knobs make the data misbehave on purpose:
`duplicate_every` repeats an earlier query of the leaf, `global_duplicate_every` asks the same
query in every leaf, `unanswerable_every` writes a query the
answerability check rejects, `revise_rounds` is how many critique rounds still change the set.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trouter.prompts import parse_marker
from trouter.testing.fake_openai import FakeRequest, Reply

# A vocabulary large enough that two fake queries rarely share many words (so the hashing
# encoder sees them as different), drawn per query by a hash of where it is asked.
_VOCABULARY = (
    "invoice refund seat plan upgrade downgrade trial coupon tax receipt currency proration "
    "password login sso saml okta mfa token session lockout email domain workspace owner admin "
    "member guest role permission audit export import csv backup retention gdpr deletion "
    "webhook endpoint payload retry signature rate limit pagination cursor filter sort field "
    "project task board sprint milestone label tag comment mention attachment calendar timer "
    "timesheet approval report dashboard chart metric slack jira github google drive calendar "
    "mobile ios android notification offline sync conflict browser cache cookie timezone "
    "locale language keyboard shortcut template automation rule trigger condition schedule "
    "reminder recurring duplicate archive restore trash search index latency outage status "
    "incident maintenance region latency storage quota upload limit file preview version "
    "history branch merge deploy pipeline secret key rotation scope client library python "
    "javascript curl header bearer json schema error code timeout proxy firewall vpn ip "
    "allowlist"
)
_WORDS = tuple(dict.fromkeys(_VOCABULARY.split()))


def _pick(seed: str, k: int) -> list[str]:
    digest = hashlib.sha256(seed.encode()).digest()
    out = []
    for i in range(k):
        out.append(_WORDS[int.from_bytes(digest[2 * i : 2 * i + 2], "big") % len(_WORDS)])
    return out


def _line_after(text: str, heading: str) -> Any:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == heading and i + 1 < len(lines):
            return json.loads(lines[i + 1])
    raise ValueError(f"no {heading!r} block in the prompt")


@dataclass
class FakeGenerator:
    """Callable handler for `FakeOpenAI` (see the module docstring)."""

    duplicate_every: int = 0
    global_duplicate_every: int = 0  # this item's query is the same in every leaf
    unanswerable_every: int = 0
    revise_rounds: int = 1
    extra_nodes: int = 2  # propose this many more nodes than max, to exercise the limit
    delay: float = 0.0

    def __call__(self, req: FakeRequest) -> Reply:
        text = "\n".join(str(m.get("content", "")) for m in req.messages)
        found = parse_marker(text)
        if found is None:
            return Reply(content="I can only answer trouter synthesis prompts.", delay=self.delay)
        version, meta = found
        kind = version.split("/")[0]
        handler = getattr(self, "_" + kind.replace("-", "_"), None)
        if handler is None:
            return Reply(content=json.dumps({"error": f"unknown prompt {version}"}))
        return Reply(content=json.dumps(handler(meta, text)), delay=self.delay)

    # ------------------------------------------------------------------ taxonomy
    def _taxonomy_generate(self, meta: dict[str, Any], text: str) -> dict[str, Any]:
        parent = meta["parent"] or "top"
        names = list(meta.get("seeds", []))
        i = 0
        while len(names) < meta["max"] + self.extra_nodes:
            i += 1
            name = f"{meta['level']} {parent.rsplit('/', 1)[-1]} {i}"
            names.append(name)
        return {"nodes": [self._node(n) for n in names]}

    @staticmethod
    def _node(name: str, revised: bool = False) -> dict[str, str]:
        words = " ".join(_pick(name, 3))
        definition = f"Requests about {name.lower()} ({words})."
        if revised:
            definition += " Sharpened."
        return {"name": name, "definition": definition, "example": f"How do I handle {words}?"}

    def _taxonomy_critique(self, meta: dict[str, Any], text: str) -> dict[str, Any]:
        current = _line_after(text, "Current set:")
        if meta["round"] <= self.revise_rounds:
            nodes = [self._node(n["name"], revised=True) for n in current]
        else:
            nodes = current
        return {"critique": f"round {meta['round']}", "nodes": nodes}

    def _taxonomy_compare(self, meta: dict[str, Any], text: str) -> dict[str, Any]:
        # Prefer the set with the more specific ("sharpened") definitions.
        a = json.dumps(_line_after(text, "Set A:"))
        b = json.dumps(_line_after(text, "Set B:"))
        return {
            "reason": "more specific",
            "better": "A" if a.count("Sharpened") >= b.count("Sharpened") else "B",
        }

    # ------------------------------------------------------------------ QA
    def _qa_generate(self, meta: dict[str, Any], text: str) -> dict[str, Any]:
        formats = meta["formats"]
        items = []
        for i in range(meta["n"]):
            serial = meta["batch"] * meta["n"] + i
            if self.duplicate_every and serial and serial % self.duplicate_every == 0:
                seed = f"{meta['path']}|{meta['language']}|0"  # the leaf's first query again
            elif self.global_duplicate_every and serial % self.global_duplicate_every == 0:
                seed = f"shared|{serial}"  # the same query in every leaf
            else:
                seed = f"{meta['path']}|{meta['language']}|{serial}"
            words = " ".join(_pick(seed, 9))
            query = f"Customer question: {words}?"
            if self.unanswerable_every and (serial + 1) % self.unanswerable_every == 0:
                query += " UNANSWERABLE"
            offset = int(hashlib.sha256(meta["path"].encode()).hexdigest()[:6], 16)
            items.append(self._qa_item(query, formats[(serial + offset) % len(formats)], serial))
        return {"items": items}

    @staticmethod
    def _qa_item(query: str, answer_format: str, serial: int) -> dict[str, Any]:
        item: dict[str, Any] = {"query": query, "answer_format": answer_format}
        if answer_format == "numeric":
            item["reference"] = serial + 0.5
        elif answer_format == "multiple_choice":
            item["choices"] = ["first option", "second option", "third option"]
            item["reference"] = "B"
        elif answer_format == "code":
            item["entry_point"] = "double"
            item["reference"] = "def double(x):\n    return 2 * x\n"
            item["tests"] = "assert double(2) == 4\nassert double(-1) == -2\n"
        elif answer_format == "exact":
            item["reference"] = "Settings > Billing"
        else:
            item["reference"] = f"A complete answer to: {query}"
        return item

    def _qa_check(self, meta: dict[str, Any], text: str) -> dict[str, Any]:
        items = _line_after(text, "Items:")
        return {
            "verdicts": [
                {
                    "index": i,
                    "answerable": "UNANSWERABLE" not in item["query"],
                    "reason": "checked",
                }
                for i, item in enumerate(items)
            ]
        }


def profile_against(
    profile_path: str | Path,
    base_url: str,
    dest_dir: str | Path,
    *,
    api_key_env: str | None = None,
    timeout_s: float = 2.0,
    **overrides: Any,
) -> Path:
    """Copy a profile (and its pool) into `dest_dir` with every pool model pointed at
    `base_url` (e.g. a `FakeOpenAI`), optionally overriding top-level profile fields.
    Nested settings (`synthesis`, `taxonomy`) are merged rather than replaced."""
    import yaml

    profile_path = Path(profile_path)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    raw = yaml.safe_load(profile_path.read_text(encoding="utf-8"))
    if raw.get("pool"):
        pool = yaml.safe_load((profile_path.parent / raw["pool"]).read_text(encoding="utf-8"))
        for model in pool["models"]:
            model.update(base_url=base_url, api_key_env=api_key_env, timeout_s=timeout_s)
            model.pop("requests_per_minute", None)  # a local test server needs no pacing
        (dest / "pool.yaml").write_text(yaml.safe_dump(pool), encoding="utf-8")
        raw["pool"] = "pool.yaml"
    elif isinstance(raw.get("generator"), dict):
        raw["generator"].update(base_url=base_url, api_key_env=api_key_env, timeout_s=timeout_s)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    out = dest / profile_path.name
    out.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return out
