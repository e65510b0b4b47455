"""The tests' own guard: no test can send a name lookup off this machine."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.processes import jailed_env


@pytest.mark.parametrize("name", ["api.openai.com", "generativelanguage.googleapis.com", "x.invalid"])
def test_public_names_fail_without_a_query(name):
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(name, 443)


@pytest.mark.parametrize("name", ["127.0.0.1", "::1", "localhost", "2130706433"])
def test_local_and_numeric_names_resolve(name):
    assert socket.getaddrinfo(name, 80)


def test_child_processes_are_jailed_too():
    code = "import socket\ntry:\n socket.getaddrinfo('api.openai.com', 443)\nexcept socket.gaierror:\n print('jailed')"
    out = subprocess.run([sys.executable, "-c", code], env=jailed_env({"PATH": "/usr/bin:/bin"}), capture_output=True,
                         text=True, timeout=30)
    assert out.stdout.strip() == "jailed", out.stderr
