"""--ui-cert/--ui-key: the dashboard answers over HTTPS with the certificate given."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import ssl
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kinetic_rules.ui.serve import Background, listen_from
from tests.ui.conftest import Session, live_app


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_the_dashboard_is_served_over_tls(session: Session, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    listen = listen_from("127.0.0.1:0", cert, key, insecure=False)
    server = Background(live_app(session), listen)
    try:
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False  # the certificate names 127.0.0.1 as a common name only
        url = f"https://127.0.0.1:{server.port}/api/status"
        with urllib.request.urlopen(url, context=context, timeout=10) as answer:
            assert json.load(answer)["strategy"] == "busy-spot"
        plain = f"http://127.0.0.1:{server.port}/api/status"
        try:
            urllib.request.urlopen(plain, timeout=10)
            raise AssertionError("plain HTTP was answered")
        except (OSError, http.client.HTTPException):
            pass  # the server speaks TLS only
    finally:
        server.close()
