"""Keep API keys out of text the service shows or logs.

Providers echo parts of the key they were sent ("Incorrect API key provided: sk-proj-****abcd"), so text
that came from a provider, or was built around it, goes through `redact` before anyone sees it.
"""
from __future__ import annotations

import re

from pydantic import SecretStr

MASK = "[redacted]"
MIN_FRAGMENT = 4  # a run of 4+ characters of the key is treated as part of the key

# A token with 4+ mask characters in a row is a masked key, whatever the provider put around it
# ("sk-proj-****abcd", "sk-VKMIs*****wjh3", "https://****lETQ").
_MASKED_TOKEN = re.compile(r"[^\s\"',;()<>\[\]{}]*(?:\*{4,}|•{4,}|x{8,}|X{8,})[^\s\"',;()<>\[\]{}]*")


def redact(text: str, secret: str | SecretStr | None) -> str:
    """Return `text` with every run of 4+ characters that occurs in `secret` and every masked-key token replaced.

    Over-redaction is accepted: a word that happens to be part of the key is masked too. The result never
    contains any substring of the key of length 4 or more.
    """
    if not text:
        return text
    key = secret.get_secret_value() if isinstance(secret, SecretStr) else (secret or "")
    if len(key) >= MIN_FRAGMENT:
        text = _strip_fragments(text, key)
    return _MASKED_TOKEN.sub(MASK, text)


def _strip_fragments(text: str, key: str) -> str:
    """Replace each longest run of `text` that is a substring of `key` (length >= MIN_FRAGMENT)."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        # Grow the match from i as long as it is still a substring of the key.
        j = i + MIN_FRAGMENT
        if j <= n and text[i:j] in key:
            while j < n and text[i : j + 1] in key:
                j += 1
            out.append(MASK)
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def excerpt(text: object, secret: str | SecretStr | None, limit: int = 160) -> str:
    """A short, single-line, redacted excerpt of a provider's message, safe to put into an admin message."""
    if not isinstance(text, str):
        return ""
    flat = " ".join(text.split())
    # Redact before truncating so a key cut in half at the limit is still caught.
    flat = redact(flat, secret)
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return flat
