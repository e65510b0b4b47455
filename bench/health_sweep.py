"""Health-sweep benchmark (issue 5 target): 10,000 active providers, fake providers answering in 100 ms in
a separate process, one worker process on the Redis broker and PostgreSQL.

Figures, each beside a baseline measured in the same run:
- sweep wall time: from sending `llmp.health_sweep` until every record's `health_checked_at` is set,
  beside a direct aiohttp gather of the same 10,000 probe requests to the same fake at the same
  concurrency (and the ideal, N x 0.1 s / concurrency, is printed too) - target: within 20 s;
- the worker's peak resident memory during the sweep, beside its resident memory when idle - target: under
  400 MB;
- the worker's CPU time per 1,000 providers, beside the direct gather's CPU per 1,000 requests: the cost
  figure that a busy machine does not distort (wall times do move with the machine's load).

Run alone: `python -m bench.health_sweep` (add `--providers N` for another fleet size).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from bench.common import bench_environment, fake_providers, free_port, row, service_process

PROVIDERS = 10_000
DELAY = 0.1
TARGET_SECONDS = 20.0
TARGET_MB = 400.0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its children, in MB (from /proc; no psutil needed)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class _PeakSampler:
    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.pid, self.every, self.peak = pid, every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb(self.pid))
            self._stop.wait(self.every)

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb(self.pid))


async def _populate(settings, count: int) -> None:
    """`count` orgs, each with one active OpenAI record whose key the fake accepts (bulk inserts)."""
    from models.providers import ActiveProvider, ProviderRecord
    from service.crypto import KeyVault

    vault = KeyVault(settings.fernet_keys)
    now = datetime.now(timezone.utc)
    batch = 2000
    for start in range(0, count, batch):
        records, pointers = [], []
        for i in range(start, min(count, start + batch)):
            rid, org = uuid.uuid4(), f"bench-org-{i:07d}"
            key = f"fake-ok-{uuid.uuid4().hex}"
            records.append(ProviderRecord(id=rid, org=org, kind="openai", name="Main", model="gpt-4.1-mini",
                                          key_ciphertext=vault.encrypt(org, str(rid), SecretStr(key)),
                                          key_last4=key[-4:]))
            pointers.append(ActiveProvider(org=org, provider_id=rid, checked_version=1, activated_at=now,
                                           activated_by="bench"))
        await ProviderRecord.bulk_create(records)
        await ActiveProvider.bulk_create(pointers)


async def _wait_all_checked(count: int, timeout: float) -> tuple[float, int]:
    """Seconds until no record is left unchecked (polled), and how many were checked by then."""
    from models.providers import ProviderRecord

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        checked = await ProviderRecord.filter(health_checked_at__not_isnull=True).count()
        if checked >= count:
            return time.monotonic() - started, checked
        await asyncio.sleep(0.1)
    return time.monotonic() - started, await ProviderRecord.filter(health_checked_at__not_isnull=True).count()


async def _direct_gather(fake_root: str, count: int, concurrency: int) -> float:
    """The baseline: the same probe (GET /v1/models/{model}) sent straight from one aiohttp session."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    limit = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(i: int) -> None:
            async with limit:
                async with session.get(f"{fake_root}/openai/v1/models/gpt-4.1-mini",
                                       headers={"Authorization": f"Bearer fake-ok-direct{i}"}) as resp:
                    await resp.read()
                    assert resp.status == 200

        started = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(count)))
        return time.monotonic() - started


def run(providers: int = PROVIDERS) -> list[dict]:
    from service.db import close_database, open_database
    from service.health_sweep import sweep_concurrency
    from tasks.celery_config import HEALTH_SWEEP, make_celery

    rows: list[dict] = []
    with bench_environment(health_interval=3600) as (settings, scratch):
        port = free_port()
        with fake_providers(port, DELAY, scratch / "fake.log") as fake_root:
            settings = settings.model_copy(update={"openai_base_url": f"{fake_root}/openai/v1"})
            concurrency = sweep_concurrency(settings)

            async def populate() -> None:
                await open_database(settings)
                try:
                    await _populate(settings, providers)
                finally:
                    await close_database()

            asyncio.run(populate())
            with service_process(["worker"], settings, scratch / "worker.log", " ready.") as worker:
                time.sleep(1.0)
                idle_mb = _rss_mb(worker.proc.pid)
                own_cpu = resource.getrusage(resource.RUSAGE_SELF)
                baseline = asyncio.run(_direct_gather(fake_root, providers, concurrency))
                own_after = resource.getrusage(resource.RUSAGE_SELF)
                baseline_cpu = (own_after.ru_utime - own_cpu.ru_utime) + (own_after.ru_stime - own_cpu.ru_stime)
                worker_cpu_before = _cpu_seconds(worker.proc.pid)

                async def sweep() -> tuple[float, int]:
                    await open_database(settings)
                    try:
                        celery = make_celery(settings)
                        celery.send_task(HEALTH_SWEEP)
                        celery.close()
                        return await _wait_all_checked(providers, timeout=180)
                    finally:
                        await close_database()

                with _PeakSampler(worker.proc.pid) as sampler:
                    seconds, checked = asyncio.run(sweep())
                worker_cpu = _cpu_seconds(worker.proc.pid) - worker_cpu_before
                if checked < providers:
                    raise RuntimeError(f"only {checked} of {providers} providers checked in {seconds:.0f} s; "
                                       f"see {scratch / 'worker.log'}")
    ideal = providers * DELAY / concurrency
    rows.append(row(f"health sweep of {providers} providers (100 ms fake), one worker", seconds, "s", baseline,
                    f"direct aiohttp gather, {concurrency} at a time; ideal {ideal:.1f} s",
                    f"within {TARGET_SECONDS:g} s"))
    rows.append(row("worker peak RSS during the sweep", sampler.peak, "MB", idle_mb, "the idle worker",
                    f"under {TARGET_MB:g} MB"))
    rows.append(row("worker CPU per 1,000 providers swept", worker_cpu * 1000 / providers, "s",
                    baseline_cpu * 1000 / providers, "the direct gather's client CPU per 1,000 requests"))
    print(f"(load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; the fake shares them)",
          flush=True)
    return rows


if __name__ == "__main__":
    from bench.__main__ import print_rows

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--providers", type=int, default=PROVIDERS)
    print_rows(run(parser.parse_args().providers))
