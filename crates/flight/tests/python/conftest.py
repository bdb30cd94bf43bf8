"""Fixtures: a small demo lake, and `cdphub serve` processes on free loopback ports.

Run by scripts/test.sh (which builds the binary and sets CDPHUB_BIN):
    .venv/bin/python -m pytest crates/flight/tests/python
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[4]
# The example config's demo users; their passwords are documented in the README.
ADMIN = ("admin", "cdphub-admin-demo")
ANALYST = ("analyst", "cdphub-analyst-demo")


def cdphub_bin() -> str:
    explicit = os.environ.get("CDPHUB_BIN")
    if explicit:
        return explicit
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/cdphub-target"))
    return str(target / "debug" / "cdphub")


def run_cdphub(project: Path, *args: str, env: dict | None = None, stdin: str | None = None) -> str:
    result = subprocess.run(
        [cdphub_bin(), "--project", str(project), *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
    if result.returncode != 0:
        raise AssertionError(f"cdphub {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@pytest.fixture(scope="session")
def project() -> Path:
    """The repository's example project (config, models) on a fresh demo lake at scale 0.01."""
    root = Path(tempfile.mkdtemp(prefix="cdphub-flight-"))
    shutil.copy(REPO / "cdphub.toml", root / "cdphub.toml")
    shutil.copytree(REPO / "sql", root / "sql")
    run_cdphub(root, "demo", "generate", "--scale", "0.01", "--seed", "42")
    run_cdphub(root, "run")
    yield root
    shutil.rmtree(root, ignore_errors=True)


class Server:
    def __init__(self, project: Path, env: dict | None = None, tls: bool = False):
        self.log_path = project / f"serve-{time.time_ns()}.log"
        self.log = open(self.log_path, "w+")
        self.process = subprocess.Popen(
            [cdphub_bin(), "--project", str(project), "serve", "--port", "0"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 120
        while True:
            text = self.log_path.read_text()
            found = re.search(r"listening on (grpc(?:\+tls)?)://127\.0\.0\.1:(\d+)", text)
            if found:
                self.scheme, self.port = found.group(1), int(found.group(2))
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"cdphub serve did not start:\n{text}")
            time.sleep(0.1)
        self.uri = f"{self.scheme}://127.0.0.1:{self.port}"

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.log_path.read_text()


@pytest.fixture(scope="session")
def server(project: Path):
    """The main server: 64 MiB per query so that the memory tests stay small."""
    srv = Server(project, env={"CDPHUB_SERVER_QUERY_MEMORY_LIMIT": "64MiB"})
    yield srv
    log = srv.stop()
    assert "panicked" not in log, log


@pytest.fixture(scope="session")
def short_server(project: Path):
    """Tokens that expire after 2 s and queries limited to 3 s."""
    srv = Server(
        project,
        env={"CDPHUB_SERVER_TOKEN_TTL": "2s", "CDPHUB_SERVER_QUERY_TIMEOUT": "3s"},
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def single_slot_server(project: Path):
    """One query at a time (server.max-concurrent-queries = 1), queries limited to 60 s."""
    srv = Server(
        project,
        env={"CDPHUB_SERVER_MAX_CONCURRENT_QUERIES": "1", "CDPHUB_SERVER_QUERY_TIMEOUT": "60s"},
    )
    yield srv
    log = srv.stop()
    assert "panicked" not in log, log


@pytest.fixture(scope="session")
def tls_server(project: Path):
    """TLS with a self-signed certificate for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_path, key_path = project / "tls-cert.pem", project / "tls-key.pem"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    srv = Server(
        project,
        env={"CDPHUB_SERVER_TLS_CERT": str(cert_path), "CDPHUB_SERVER_TLS_KEY": str(key_path)},
    )
    srv.cert_pem = cert_pem.decode()
    yield srv
    srv.stop()
