"""The key vault: API keys encrypted at rest with Fernet, each ciphertext bound to its org and record.

A token holds a small JSON envelope `{"org", "rid", "key"}`; decrypting checks both ids, so a ciphertext
copied onto another record or org fails instead of leaking. `MultiFernet`: the first key encrypts,
every key decrypts, and `rotate` re-encrypts under the first.
"""
from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from service.errors import CredentialsUnavailable


class KeyVault:
    def __init__(self, fernet_keys: list[bytes]) -> None:
        if not fernet_keys:
            raise ValueError("at least one encryption key is required")
        self._current = Fernet(fernet_keys[0])
        self._all = MultiFernet([Fernet(k) for k in fernet_keys])

    def __repr__(self) -> str:
        return "KeyVault(<keys hidden>)"

    def encrypt(self, org: str, record_id: str, api_key: SecretStr) -> str:
        envelope = json.dumps({"org": org, "rid": str(record_id), "key": api_key.get_secret_value()})
        return self._current.encrypt(envelope.encode()).decode()

    def decrypt(self, org: str, record_id: str, token: str) -> SecretStr:
        """The key of record `record_id` in `org`; `CredentialsUnavailable` if it cannot be proven so."""
        try:
            envelope = json.loads(self._all.decrypt(token.encode()))
        except (InvalidToken, ValueError, TypeError):
            raise CredentialsUnavailable(
                "The stored API key cannot be decrypted with the configured encryption keys."
            ) from None
        if envelope.get("org") != org or envelope.get("rid") != str(record_id) or "key" not in envelope:
            raise CredentialsUnavailable("The stored API key does not belong to this provider record.")
        return SecretStr(envelope["key"])

    def is_current(self, token: str) -> bool:
        """True when the token is already encrypted under the first (current) key."""
        try:
            self._current.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """Re-encrypt under the current key; raises `CredentialsUnavailable` when no key decrypts it."""
        try:
            return self._all.rotate(token.encode()).decode()
        except InvalidToken:
            raise CredentialsUnavailable("The stored API key cannot be decrypted with any configured key.") from None


def last4(api_key: SecretStr) -> str:
    return api_key.get_secret_value()[-4:]
