"""The tests' network jail: name lookups never leave this machine.

Loaded in the test process (tests/conftest.py) and, through PYTHONPATH, in every service process a test
starts. A numeric address, `localhost` (and `*.localhost`) or a name listed in /etc/hosts resolves as
usual; any other name fails as if it did not exist (EAI_NONAME), without a DNS query, so a test can
never reach a real provider, and "the name does not resolve" is testable offline.
"""
from __future__ import annotations

import socket

_real_getaddrinfo = socket.getaddrinfo


def _hosts_file_names() -> set[str]:
    names: set[str] = set()
    try:
        with open("/etc/hosts") as handle:
            for line in handle:
                fields = line.split("#", 1)[0].split()
                names.update(name.lower().rstrip(".") for name in fields[1:])
    except OSError:
        pass
    return names


def _local_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost") or name in _hosts_file_names()


def _numeric(host: str) -> bool:
    try:
        _real_getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return False
    return True


def jailed_getaddrinfo(host, port, *args, **kwargs):
    text = host.decode() if isinstance(host, bytes) else host
    if text is None or text == "" or _numeric(text) or _local_name(text):
        return _real_getaddrinfo(host, port, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, f"Name or service not known ({text}: test network jail)")


socket.getaddrinfo = jailed_getaddrinfo
