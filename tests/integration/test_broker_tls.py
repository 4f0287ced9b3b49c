"""A Redis reached over TLS (``rediss://``, as managed Redis services are): hub checks the server's
certificate. Given the URL alone, kombu connected without checking it (it logs a warning and uses
CERT_NONE), so whoever sat between hub and Redis could read and forge hub's tasks. Against a real
redis-server serving TLS with a certificate nothing trusts by default."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu.exceptions import OperationalError

from hub.config import ConfigError, load_settings
from tests.servers import free_port, self_signed_certificate, wait_for_port
from workers.app import create_celery


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("Redis is not installed: apt-get install redis-server (.ci/run does this)")
    cert, key = self_signed_certificate(tmp_path)
    port = free_port()
    tls = ["--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    tls += ["--tls-auth-clients", "no"]
    proc = subprocess.Popen(
        [binary, "--port", "0", *tls, "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 30, proc)
        yield port, cert
    finally:
        proc.terminate()
        proc.wait(10)


def _round_trip(broker_url: str, tmp_path: Path) -> object:
    """A message through the broker as hub's Celery app connects to it."""
    settings = load_settings({"HUB_VAR_DIR": str(tmp_path / "var"), "HUB_BROKER_URL": broker_url})
    app = create_celery(settings)
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
        with connection.SimpleQueue("hub-tls-check") as queue:
            queue.put({"checked": True})
            message = queue.get(timeout=10)
            message.ack()
            return message.payload


def test_a_redis_whose_certificate_is_not_trusted_is_refused(tls_redis: tuple[int, Path], tmp_path: Path) -> None:
    port, _cert = tls_redis
    with pytest.raises(OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
        _round_trip(f"rediss://localhost:{port}/0", tmp_path)


def test_a_redis_whose_certificate_is_trusted_carries_the_tasks(tls_redis: tuple[int, Path], tmp_path: Path) -> None:
    port, cert = tls_redis
    assert _round_trip(f"rediss://localhost:{port}/0?ssl_ca_certs={cert}", tmp_path) == {"checked": True}
    # Going without the check must be asked for in so many words.
    assert _round_trip(f"rediss://localhost:{port}/0?ssl_cert_reqs=none", tmp_path) == {"checked": True}


def test_a_wrong_broker_url_is_refused_without_showing_its_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"HUB_VAR_DIR": str(tmp_path), "HUB_BROKER_URL": "amqp://hub:s3cr3t@rabbit:5672//"})
    assert "HUB_BROKER_URL" in str(refused.value) and "s3cr3t" not in str(refused.value)
