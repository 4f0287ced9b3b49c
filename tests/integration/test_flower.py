"""`hub flower` listens on loopback by default and never on another address without a login.

Flower shows every task's arguments and can revoke tasks, so reaching its port must not be enough.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.servers import free_port, wait_for_port

USER, PASSWORD = "ops", "flower-password-1"


def _non_loopback_address() -> str:
    """An address of this machine that is not loopback (the one it would route outward from)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET: nothing is sent for a UDP connect
            address = str(s.getsockname()[0])
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        pytest.fail("this machine has no non-loopback IPv4 address to test Flower's login on")
    return address


def _env(tmp_path: Path, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not (k.startswith("HUB_") or k.startswith("FLOWER_"))}
    env.update(HUB_VAR_DIR=str(tmp_path / "var"), HUB_BROKER_URL=redis_url, **extra)
    return env


def _status(url: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _wait_listening(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"Flower exited ({proc.returncode}) before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"Flower not listening on {host}:{port} after {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_flower_on_a_network_address_asks_for_the_login(tmp_path: Path, redis_url: str) -> None:
    address = _non_loopback_address()
    port = free_port()
    log = tmp_path / "flower.log"
    with log.open("wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "flower", "--port", str(port), "--address", address],
            env=_env(tmp_path, redis_url, HUB_FLOWER_BASIC_AUTH=f"{USER}:{PASSWORD}"),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_listening(address, port, proc)
        url = f"http://{address}:{port}/"
        assert _status(url) == 401
        assert _status(url, (USER, "wrong password")) == 401
        assert _status(url, (USER, PASSWORD)) == 200
        assert _status(f"http://{address}:{port}/api/workers", (USER, PASSWORD)) == 200
    finally:
        _stop(proc)
    assert PASSWORD not in log.read_text(errors="replace")


def test_flower_refuses_a_network_address_without_a_login(tmp_path: Path, redis_url: str) -> None:
    for how in (["--address", _non_loopback_address()], ["--address", "0.0.0.0"]):
        result = subprocess.run(
            [sys.executable, "-m", "hub.cli", "flower", "--port", str(free_port()), *how],
            env=_env(tmp_path, redis_url),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0
        assert "refusing to start Flower" in result.stderr and "HUB_FLOWER_BASIC_AUTH" in result.stderr
    # The same through the environment, as docker-compose sets it.
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "flower", "--port", str(free_port())],
        env=_env(tmp_path, redis_url, HUB_FLOWER_ADDRESS="0.0.0.0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "refusing to start Flower" in result.stderr


def test_a_malformed_login_stops_flower_naming_the_variable(tmp_path: Path, redis_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "flower"],
        env=_env(tmp_path, redis_url, HUB_FLOWER_BASIC_AUTH="just-a-password-no-user"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "HUB_FLOWER_BASIC_AUTH" in result.stderr and "just-a-password-no-user" not in result.stderr


def test_flower_listens_on_loopback_by_default(tmp_path: Path, redis_url: str) -> None:
    address = _non_loopback_address()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "flower", "--port", str(port)],
        env=_env(tmp_path, redis_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 60, proc)
        assert _status(f"http://127.0.0.1:{port}/") == 200
        # Nothing answers on the machine's network address.
        with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
            pass
    finally:
        _stop(proc)
