"""The embedded broker never hands a consumer a half-written message."""
from __future__ import annotations

import threading
import time

import pytest
from kombu import Connection

from tasks.embedded_broker import Transport as AtomicTransport

PAYLOAD = "x" * 400_000  # large enough that writing it takes several system calls


def _connection(folder, transport):
    options = {"data_folder_in": str(folder / "q"), "data_folder_out": str(folder / "q"),
               "control_folder": str(folder / "control"), "store_processed": False}
    (folder / "q").mkdir(parents=True, exist_ok=True)
    return Connection(transport=transport, transport_options=options)


def _race(folder, transport, messages=150) -> tuple[int, list[Exception]]:
    errors: list[Exception] = []
    received = 0
    done = threading.Event()

    def produce():
        with _connection(folder, transport) as conn:
            queue = conn.SimpleQueue("race")
            for i in range(messages):
                queue.put({"i": i, "body": PAYLOAD})
            queue.close()
        done.set()

    deadline = time.monotonic() + 60
    with _connection(folder, transport) as conn:
        # Declared before the producer starts: kombu keeps declarations in class-level state shared by the
        # connections of one process, so the producer thread relies on this binding being on disk.
        queue = conn.SimpleQueue("race")
        producer = threading.Thread(target=produce)
        producer.start()
        while received < messages and time.monotonic() < deadline:
            try:
                message = queue.get(timeout=0.01)
            except queue.Empty:
                if done.is_set() and received >= messages:
                    break
                continue
            except Exception as exc:  # noqa: BLE001 - what the stock transport raises on a partial file
                errors.append(exc)
                received += 1
                continue
            assert message.payload["body"] == PAYLOAD
            message.ack()
            received += 1
        queue.close()
    producer.join()
    return received, errors


def test_concurrent_put_and_get_never_read_a_partial_message(tmp_path):
    received, errors = _race(tmp_path, AtomicTransport)
    assert received == 150 and errors == []


@pytest.mark.parametrize("readers", [4])
def test_exchange_tables_survive_concurrent_binds(tmp_path, readers):
    failures: list[Exception] = []

    def bind(n):
        try:
            with _connection(tmp_path, AtomicTransport) as conn:
                for i in range(30):
                    conn.SimpleQueue(f"q{n}-{i}").close()
        except Exception as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=bind, args=(n,)) for n in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
