"""opsctl's connection to a cluster the way real ones are set up: HTTPS verified against the kubeconfig's
certificate authority, a client certificate (inline data or files), a bearer token from an exec credential
plugin (`aws eks get-token`-style). The API here is a small HTTPS endpoint that records what each request
carried and answers with an empty TradingSymbol list: what is under test is the TLS and authentication
edge of opsctl's client, not the API's semantics (test_opsctl_cli.py runs those on the emulator)."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import pathlib
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from opsctl.errors import ExitCode

OPSCTL = str(pathlib.Path(sys.executable).with_name("opsctl"))


@dataclass
class Pem:
    cert: bytes
    key: bytes
    obj: x509.Certificate
    private: ec.EllipticCurvePrivateKey


def issue(name: str, issuer: Pem | None = None, server: bool = False) -> Pem:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(issuer.obj.subject if issuer else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                                                            name)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True))
    if server:
        loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        builder = builder.add_extension(x509.SubjectAlternativeName([loopback]), critical=False)
    cert = builder.sign(issuer.private if issuer else key, hashes.SHA256())
    return Pem(cert.public_bytes(serialization.Encoding.PEM),
               key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()), cert, key)


@dataclass
class Seen:
    authorization: list[str] = field(default_factory=list)
    client_subjects: list[str] = field(default_factory=list)


@dataclass
class Cluster:
    url: str
    ca: Pem
    client: Pem
    seen: Seen
    dir: pathlib.Path


@pytest.fixture
def https_api(tmp_path: pathlib.Path) -> Iterator[Cluster]:
    ca, other_ca = issue("test-ca"), issue("other-ca")
    server_pem = issue("127.0.0.1", ca, server=True)
    client = issue("ops-user", ca)
    for name, data in (("server.crt", server_pem.cert), ("server.key", server_pem.key), ("ca.crt", ca.cert)):
        (tmp_path / name).write_bytes(data)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    context.load_verify_locations(cadata=ca.cert.decode() + other_ca.cert.decode())
    context.verify_mode = ssl.CERT_OPTIONAL
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.authorization.append(self.headers.get("Authorization") or "")
            peer = self.connection.getpeercert()
            seen.client_subjects.append(dict(x[0] for x in peer["subject"])["commonName"] if peer else "")
            body = json.dumps({"kind": "TradingSymbolList", "apiVersion": "trading.tradeops.io/v1alpha1",
                               "metadata": {"resourceVersion": "1"}, "items": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Cluster(f"https://127.0.0.1:{server.server_address[1]}", ca, client, seen, tmp_path)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def kubeconfig(cluster: Cluster, user: dict[str, Any], ca: dict[str, Any] | None = None) -> str:
    path = cluster.dir / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "prod", "cluster": {"server": cluster.url, **(ca if ca is not None else {
            "certificate-authority-data": base64.b64encode(cluster.ca.cert).decode()})}}],
        "users": [{"name": "ops", "user": user}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "ops", "namespace": "trading"}}]}))
    return str(path)


def opsctl(config: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OPSCTL, "--kubeconfig", config, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_inline_client_certificate_against_the_clusters_ca(https_api: Cluster) -> None:
    config = kubeconfig(https_api, {"client-certificate-data": base64.b64encode(https_api.client.cert).decode(),
                                    "client-key-data": base64.b64encode(https_api.client.key).decode()})
    done = opsctl(config, "get")
    assert done.returncode == 0, done.stderr
    assert 'No TradingSymbols found in namespace "trading"' in done.stderr
    assert https_api.seen.client_subjects == ["ops-user"]


def test_certificate_files_relative_to_the_kubeconfig(https_api: Cluster) -> None:
    (https_api.dir / "certs").mkdir()
    (https_api.dir / "certs" / "ops.crt").write_bytes(https_api.client.cert)
    (https_api.dir / "certs" / "ops.key").write_bytes(https_api.client.key)
    config = kubeconfig(https_api, {"client-certificate": "certs/ops.crt", "client-key": "certs/ops.key"},
                        {"certificate-authority": "ca.crt"})
    assert opsctl(config, "get").returncode == 0
    assert https_api.seen.client_subjects == ["ops-user"]


def test_a_token_from_an_exec_credential_plugin(https_api: Cluster) -> None:
    plugin = https_api.dir / "get-token"
    plugin.write_text(f"#!{sys.executable}\nimport json, os\n"
                      "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
                      "print(json.dumps({'apiVersion': info['apiVersion'], 'kind': 'ExecCredential',\n"
                      "                  'status': {'token': 'from-plugin-' + os.environ['PROFILE']}}))\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    config = kubeconfig(https_api, {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                                             "env": [{"name": "PROFILE", "value": "prod"}]}})
    done = opsctl(config, "get")
    assert done.returncode == 0, done.stderr
    assert https_api.seen.authorization == ["Bearer from-plugin-prod"]


def test_a_failing_plugin_is_one_line_naming_it(https_api: Cluster) -> None:
    config = kubeconfig(https_api, {"exec": {"command": "false"}})
    done = opsctl(config, "get")
    assert done.returncode == ExitCode.UNREACHABLE
    assert done.stderr == (f"opsctl: error: the credential plugin 'false' of context \"prod\" of {config} failed "
                           "(exit 1): no message\n")
    assert https_api.seen.authorization == []


def test_a_server_the_ca_does_not_vouch_for_is_refused(https_api: Cluster) -> None:
    stranger = issue("stranger-ca")
    config = kubeconfig(https_api, {"token": "t"},
                        {"certificate-authority-data": base64.b64encode(stranger.cert).decode()})
    done = opsctl(config, "get")
    assert done.returncode == ExitCode.UNREACHABLE
    assert done.stderr.startswith(f"opsctl: error: TLS with the API server at {https_api.url} (context \"prod\" of "
                                  f"{config}) failed: CERTIFICATE_VERIFY_FAILED")
    assert done.stderr.endswith("check the kubeconfig's certificate-authority and --context\n")
    assert https_api.seen.authorization == []  # the token never left
