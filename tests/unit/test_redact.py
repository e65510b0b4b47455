"""Keys never survive redaction: whole, in fragments of 4+ characters, or masked the way providers mask them."""
from __future__ import annotations

import pytest
from pydantic import SecretStr

from service.redact import MASK, excerpt, redact

KEY = "sk-proj-Q7vLx2Rt9WmZp4Kd8YbN3cHf6JsA1eUg"


def fragments(text: str, key: str, size: int = 4) -> list[str]:
    return [key[i : i + size] for i in range(len(key) - size + 1) if key[i : i + size] in text]


def test_the_whole_key_is_replaced():
    assert redact(f"bad key {KEY} given", KEY) == f"bad key {MASK} given"


def test_any_fragment_of_four_or_more_characters_is_replaced():
    text = f"tail {KEY[-6:]}, middle {KEY[10:15]}, head {KEY[:4]}"
    out = redact(text, KEY)
    assert fragments(out, KEY) == []
    assert out.startswith("tail ")


def test_three_character_overlaps_are_kept_so_messages_stay_readable():
    assert redact("sk- and Q7v", KEY) == "sk- and Q7v"


@pytest.mark.parametrize(
    "echo",
    [
        "Incorrect API key provided: sk-proj-****************************************************abcd.",
        "Incorrect API key provided: sk-VKMIs***************************************wjh3.",
        "Incorrect API key provided: https://********************lETQ.",
        "key •••••••• rejected",
    ],
)
def test_masked_keys_are_replaced_even_when_they_are_not_this_key(echo):
    out = redact(echo, "some-other-key-entirely")
    assert "****" not in out and "••••" not in out
    assert MASK in out


def test_openai_style_echo_of_this_key_leaves_no_fragment():
    echo = f"Incorrect API key provided: {KEY[:8]}{'*' * 20}{KEY[-4:]}. You can find your API key at ..."
    out = redact(echo, KEY)
    assert fragments(out, KEY) == [] and "*" not in out


def test_secretstr_and_empty_inputs():
    assert redact(f"x {KEY}", SecretStr(KEY)) == f"x {MASK}"
    assert redact("", KEY) == ""
    assert redact("nothing secret here", None) == "nothing secret here"
    assert redact("short key ab", "ab") == "short key ab"  # a key under 4 characters cannot be told from text


def test_excerpt_is_single_line_short_and_redacted():
    text = "line one\n\n   line two " + KEY + " " + "y" * 400
    out = excerpt(text, KEY, limit=60)
    assert "\n" not in out and len(out) <= 60
    assert fragments(out, KEY) == []
    assert out.startswith("line one line two " + MASK)


def test_excerpt_of_a_non_string_is_empty():
    assert excerpt({"error": KEY}, KEY) == ""
    assert excerpt(None, KEY) == ""
