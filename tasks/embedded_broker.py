"""The embedded broker: kombu's filesystem transport with atomic writes.

Stock kombu writes a message file in place, so a consumer polling the folder can read it half-written
and the worker dies on a JSONDecodeError (celery/kombu#1551); exchange tables have the same race when
several processes start together. Here a message is written under a name the consumer ignores and then
renamed into place (atomic on one filesystem), and exchange tables are read and replaced under one lock.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".partial-{name}")  # never matches `<queue>.msg`
        with open(partial, "wb") as handle:
            handle.write(str_to_bytes(dumps(payload)))
        os.replace(partial, final)

    @contextlib.contextmanager
    def _tables_locked(self, mode: int):
        self.control_folder.mkdir(parents=True, exist_ok=True)
        with open(self.control_folder / ".tables.lock", "a+") as lock_file:
            fcntl.flock(lock_file.fileno(), mode)
            try:
                yield
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def get_table(self, exchange):
        file = self._exchange_file(exchange)
        with self._tables_locked(fcntl.LOCK_SH):
            return self._read_table(file)

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        file = self._exchange_file(exchange)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._tables_locked(fcntl.LOCK_EX):
            table = self._read_table(file)
            if entry in table:
                return
            table.insert(0, entry)
            self._replace_table(file, table)

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        virtual_delete = super(filesystem.Channel, self)._delete  # the in-memory part, not kombu's file edit
        virtual_delete(queue, exchange, routing_key, pattern, *args, **kwargs)
        file = self._exchange_file(exchange)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._tables_locked(fcntl.LOCK_EX):
            table = self._read_table(file)
            if entry in table:
                table.remove(entry)
                self._replace_table(file, table)

    @staticmethod
    def _read_table(file) -> list:
        """An exchange's bindings (none while its file does not exist); call with the tables locked."""
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            return []
        return [filesystem.exchange_queue_t(*q) for q in loads(bytes_to_str(raw))]

    @staticmethod
    def _replace_table(file, table) -> None:
        partial = file.with_name(f".partial-{uuid.uuid4()}")
        partial.write_bytes(str_to_bytes(dumps(table)))
        os.replace(partial, file)


class Transport(filesystem.Transport):
    Channel = Channel
