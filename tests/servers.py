"""Real servers for the tests, started on free loopback ports in temp dirs.

PostgreSQL (Debian's postgresql package) and Redis (redis-server). A missing binary fails the test
with the Debian package to install; nothing is skipped silently. As root, PostgreSQL runs as the
``postgres`` system user, because initdb refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def _pg_bindir() -> Path:
    """The newest Debian PostgreSQL, else the one whose tools are on PATH."""
    versions = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    versions.sort(key=lambda d: [int(x) for x in d.parent.name.split(".") if x.isdigit()])
    if versions:
        return versions[-1]
    for tool in ("initdb", "pg_ctl"):
        found = shutil.which(tool)
        # Resolved, because Debian's /usr/bin/pg_ctl is a wrapper beside which initdb does not live.
        if found and (Path(found).resolve().parent / "initdb").exists():
            return Path(found).resolve().parent
    pytest.fail("PostgreSQL is not installed: apt-get install postgresql (.ci/run does this)")


def _as_pg_user() -> tuple[list[str], str | None]:
    """Command prefix to run PostgreSQL's tools, and the user that owns its files (when root)."""
    if os.geteuid() != 0:
        return [], None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root needs the 'postgres' system user: apt-get install postgresql")
    return ["runuser", "-u", "postgres", "--"], "postgres"


class PostgresServer:
    """A PostgreSQL server in a temp dir that a test can stop and start again on the same port."""

    def __init__(self, durable: bool = False) -> None:
        # durable: PostgreSQL's own defaults (fsync, synchronous_commit, full_page_writes on) for a
        # benchmark where a commit is the guarantee being measured; tests run without them.
        self.durable = durable
        self.bindir = _pg_bindir()
        self.prefix, owner = _as_pg_user()
        # Its own temp dir: pytest's are private to root, and the postgres user must reach this one.
        self.base = Path(tempfile.mkdtemp(prefix="hub-test-pg-"))
        self.data = self.base / "data"
        if owner:
            shutil.chown(self.base, owner)
        subprocess.run(
            [
                *self.prefix,
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server URL without a database name (…@127.0.0.1:PORT)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.base / "postgres.log", "ab") as log:
            self.proc = subprocess.Popen(
                [
                    *self.prefix,
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-k",
                    str(self.base),
                    *(
                        []
                        if self.durable
                        else ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
                    ),
                    "-c",
                    "max_connections=200",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, 60, self.proc)
        _wait_until_accepting(self.port)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: open connections are cut, as in a restart or a failover).

        The signal goes to the postmaster itself (its pid file), not to ``runuser`` in front of it,
        which does not pass it on."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pid_file = self.data / "postmaster.pid"
        postmaster = int(pid_file.read_text().split()[0]) if pid_file.exists() else self.proc.pid
        with suppress(ProcessLookupError):
            os.kill(postmaster, signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(postmaster, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()
        deadline = time.monotonic() + 30
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def postgres_server(durable: bool = False) -> Iterator[str]:
    """Start PostgreSQL; yield a server URL without a database name (…@127.0.0.1:PORT).

    ``durable`` keeps PostgreSQL's default fsync and synchronous_commit (see PostgresServer)."""
    server = PostgresServer(durable)
    try:
        server.start()
        yield server.url
    finally:
        server.remove()


def _wait_until_accepting(port: int) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    import psycopg

    port = server_url.rsplit(":", 1)[1]
    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return f"{server_url}/{name}"


@contextmanager
def redis_server(base: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("Redis is not installed: apt-get install redis-server (.ci/run does this)")
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(base),
            "--maxmemory-policy",
            "noeviction",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 30, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def self_signed_certificate(directory: Path, host: str = "localhost") -> tuple[Path, Path]:
    """A certificate for ``host`` that nothing trusts by default, and its key (PEM files in
    ``directory``): for TLS servers the tests start, trusted by the test that means to."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
