"""Re-encrypt every stored API key under the first encryption key; safe to rerun or resume."""
from __future__ import annotations

import asyncio
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
            try:
                # Proves the binding first: a ciphertext copied from another record counts as failed even
                # when it is under the current key.
                vault.decrypt(row["org"], str(row["id"]), token)
                if vault.is_current(token):
                    counts.already_current += 1
                    continue
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


async def announce_rotation(settings) -> bool:
    """Tell every API process to drop its cached providers (all orgs) through Redis, when one is configured.

    The keys' plaintext did not change, but nothing cached from before the rotation should outlive it.
    Returns whether the announcement went out."""
    url = settings.effective_redis_url
    if not url:
        return False
    import redis.asyncio as aioredis

    from service.events import PROVIDERS_CHANGED, publish
    from service.resolve import ALL_ORGS

    client = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        for delay in (0.2, 0.5, 0):
            if await publish(client, PROVIDERS_CHANGED, ALL_ORGS):
                return True
            await asyncio.sleep(delay)
        log.error("the rotation could not be announced; API processes pick it up within their cache TTL")
        return False
    finally:
        await client.aclose()
