"""Re-encrypt every stored API key under the first encryption key; safe to rerun or resume."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from models.providers import ProviderRecord
from service.crypto import KeyVault
from service.errors import CredentialsUnavailable

log = logging.getLogger("llmp.rotate")
BATCH = 200


@dataclass
class RotationCounts:
    reencrypted: int = 0
    already_current: int = 0
    failed: int = 0


async def rotate_all_keys(vault: KeyVault) -> RotationCounts:
    """Walk the records in id order; each re-encryption is a compare-and-set, so a key changed meanwhile
    by a user is left alone (it is already under the current key)."""
    counts = RotationCounts()
    last_id = None
    while True:
        query = ProviderRecord.all().order_by("id").limit(BATCH)
        if last_id is not None:
            query = query.filter(id__gt=last_id)
        batch = await query.values("id", "org", "key_ciphertext")
        if not batch:
            return counts
        for row in batch:
            last_id = row["id"]
            token = row["key_ciphertext"]
            if vault.is_current(token):
                counts.already_current += 1
                continue
            try:
                vault.decrypt(row["org"], str(row["id"]), token)  # proves the binding before rewriting
                fresh = vault.rotate(token)
            except CredentialsUnavailable as exc:
                counts.failed += 1
                log.error("key of provider %s cannot be re-encrypted: %s", row["id"], exc.message)
                continue
            updated = await ProviderRecord.filter(id=row["id"], key_ciphertext=token).update(key_ciphertext=fresh)
            if updated:
                counts.reencrypted += 1
            else:
                counts.already_current += 1
