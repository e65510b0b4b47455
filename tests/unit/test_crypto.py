"""The key vault: API keys at rest are encrypted, bound to their org and record, rotatable, never shown."""
from __future__ import annotations

import base64
import traceback
import uuid

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from service.config import Settings
from service.crypto import KeyVault, last4
from service.errors import CredentialsUnavailable

API_KEY = "sk-live-" + "Q7x9" * 10 + "x9Qz"


@pytest.fixture
def key_a() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def key_b() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def rid() -> str:
    return str(uuid.uuid4())


def _full_text(exc: BaseException) -> str:
    """Everything a log line or an error page could show of the exception, traceback included."""
    return " ".join([str(exc), repr(exc), getattr(exc, "message", ""),
                     "".join(traceback.format_exception(exc))])


def _assert_no_secret(text: str, *secrets: bytes | str) -> None:
    for secret in secrets:
        value = secret.decode() if isinstance(secret, bytes) else secret
        assert value not in text


def test_round_trip(key_a, rid):
    vault = KeyVault([key_a])
    token = vault.encrypt("acme", rid, SecretStr(API_KEY))
    assert API_KEY not in token and API_KEY[-4:] not in token
    decrypted = vault.decrypt("acme", rid, token)
    assert isinstance(decrypted, SecretStr)
    assert decrypted.get_secret_value() == API_KEY
    assert API_KEY not in str(decrypted) and API_KEY not in repr(decrypted)
    # A fresh IV each time: two records with the same key do not share a ciphertext.
    assert vault.encrypt("acme", rid, SecretStr(API_KEY)) != token
    # A different vault instance over the same key (another process) reads it too.
    assert KeyVault([key_a]).decrypt("acme", rid, token).get_secret_value() == API_KEY
    assert last4(SecretStr(API_KEY)) == "x9Qz"


@pytest.mark.parametrize("org, record", [("evil", "same"), ("acme", "other"), ("evil", "other")])
def test_ciphertext_copied_to_another_row_is_refused(key_a, rid, org, record):
    vault = KeyVault([key_a])
    token = vault.encrypt("acme", rid, SecretStr(API_KEY))
    target_rid = rid if record == "same" else str(uuid.uuid4())
    with pytest.raises(CredentialsUnavailable) as caught:
        vault.decrypt(org, target_rid, token)
    assert caught.value.code == "credentials_unavailable"
    assert "does not belong" in caught.value.message
    _assert_no_secret(_full_text(caught.value), API_KEY, API_KEY[-8:], key_a, token)


def test_record_id_binding_compares_as_text(key_a):
    rid = uuid.uuid4()
    vault = KeyVault([key_a])
    token = vault.encrypt("acme", rid, SecretStr(API_KEY))  # a UUID object, as the ORM hands it over
    assert vault.decrypt("acme", str(rid), token).get_secret_value() == API_KEY


def _tamper(token: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[len(raw) // 2] ^= 0x01  # one bit in the ciphertext body
    return base64.urlsafe_b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("mangle", [
    _tamper,
    lambda t: t[:-6],                       # truncated
    lambda t: t[:20] + ("A" if t[20] != "A" else "B") + t[21:],  # one character of the header changed
    lambda t: "",
    lambda t: "not a fernet token at all",
    lambda t: "\u00e9\u00e8" * 20,          # not even ASCII
])
def test_tampered_token_is_refused(key_a, rid, mangle):
    vault = KeyVault([key_a])
    token = vault.encrypt("acme", rid, SecretStr(API_KEY))
    bad = mangle(token)
    assert bad != token
    with pytest.raises(CredentialsUnavailable) as caught:
        vault.decrypt("acme", rid, bad)
    _assert_no_secret(_full_text(caught.value), API_KEY, key_a)
    assert not vault.is_current(bad)
    with pytest.raises(CredentialsUnavailable):
        vault.rotate(bad)


def test_token_from_an_unknown_key_is_refused(key_a, key_b, rid):
    token = KeyVault([key_b]).encrypt("acme", rid, SecretStr(API_KEY))
    with pytest.raises(CredentialsUnavailable) as caught:
        KeyVault([key_a]).decrypt("acme", rid, token)
    assert "cannot be decrypted" in caught.value.message
    _assert_no_secret(_full_text(caught.value), API_KEY, key_a, key_b)


def test_old_key_still_decrypts_after_a_new_key_is_put_first(key_a, key_b, rid):
    old_token = KeyVault([key_a]).encrypt("acme", rid, SecretStr(API_KEY))
    vault = KeyVault([key_b, key_a])
    assert vault.decrypt("acme", rid, old_token).get_secret_value() == API_KEY
    # New encryptions use the first key only: B alone reads them, A alone does not.
    new_token = vault.encrypt("acme", rid, SecretStr(API_KEY))
    assert KeyVault([key_b]).decrypt("acme", rid, new_token).get_secret_value() == API_KEY
    with pytest.raises(CredentialsUnavailable):
        KeyVault([key_a]).decrypt("acme", rid, new_token)


def test_is_current_and_rotate(key_a, key_b, rid):
    old_token = KeyVault([key_a]).encrypt("acme", rid, SecretStr(API_KEY))
    vault = KeyVault([key_b, key_a])
    assert KeyVault([key_a]).is_current(old_token)
    assert not vault.is_current(old_token)

    rotated = vault.rotate(old_token)
    assert rotated != old_token
    assert vault.is_current(rotated)
    assert vault.rotate(rotated) != rotated and vault.is_current(vault.rotate(rotated))  # rotating again is harmless
    # After rotation the old key can be dropped: B alone decrypts, and the org/record binding survived.
    only_b = KeyVault([key_b])
    assert only_b.decrypt("acme", rid, rotated).get_secret_value() == API_KEY
    with pytest.raises(CredentialsUnavailable):
        only_b.decrypt("evil", rid, rotated)
    with pytest.raises(CredentialsUnavailable):
        only_b.decrypt("acme", rid, old_token)
    with pytest.raises(CredentialsUnavailable) as caught:
        only_b.rotate(old_token)  # nothing left that reads it
    _assert_no_secret(_full_text(caught.value), API_KEY, key_a, key_b)


def test_keys_from_settings_first_encrypts_every_one_decrypts(tmp_path, key_a, key_b, rid):
    settings = Settings(_env_file=None, env="test", data_dir=tmp_path,
                        encryption_keys=f" {key_b.decode()} , {key_a.decode()} ")
    vault = KeyVault(settings.fernet_keys)
    old_token = KeyVault([key_a]).encrypt("acme", rid, SecretStr(API_KEY))
    assert vault.decrypt("acme", rid, old_token).get_secret_value() == API_KEY
    assert KeyVault([key_b]).decrypt("acme", rid, vault.encrypt("acme", rid, SecretStr(API_KEY)))
    _assert_no_secret(repr(settings) + str(settings), key_a, key_b)


def test_repr_hides_keys(key_a, key_b):
    vault = KeyVault([key_a, key_b])
    for text in (repr(vault), str(vault), f"{vault!r}", repr([vault]), repr(vars(vault))):
        _assert_no_secret(text, key_a, key_b)
    assert "hidden" in repr(vault)


def test_a_vault_needs_a_key():
    with pytest.raises(ValueError):
        KeyVault([])


def test_a_wrong_key_is_rejected_without_echoing_it(tmp_path):
    not_a_key = "definitely-not-a-fernet-key-" + "z" * 20
    from service.config import ConfigurationError

    settings = Settings(_env_file=None, env="test", data_dir=tmp_path, encryption_keys=not_a_key)
    with pytest.raises(ConfigurationError) as caught:
        settings.fernet_keys  # noqa: B018
    _assert_no_secret(_full_text(caught.value), not_a_key)
