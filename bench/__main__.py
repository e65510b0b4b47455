"""`python -m bench` (or `make bench`): every benchmark against real Redis and PostgreSQL, each figure
printed with its ratio to a baseline measured in the same run."""
from __future__ import annotations

import importlib
import sys
import traceback

MODULES = ("bench.resolve", "bench.jobs", "bench.health_sweep", "bench.list_providers")


def print_rows(rows: list[dict]) -> None:
    for r in rows:
        target = f"  [target: {r['target']}]" if r.get("target") else ""
        print(f"{r['name']}: {r['value']:.2f} {r['unit']}  | baseline ({r['baseline_name']}): "
              f"{r['baseline']:.2f} {r['unit']}  | ratio {r['ratio']:.2f}{target}", flush=True)


def main(argv: list[str]) -> int:
    selected = [m for m in MODULES if not argv or any(a in m for a in argv)]
    failed = 0
    for name in selected:
        print(f"== {name}", flush=True)
        try:
            print_rows(importlib.import_module(name).run())
        except Exception:  # noqa: BLE001 - one benchmark failing must not hide the others
            failed += 1
            traceback.print_exc()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
