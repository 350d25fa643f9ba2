"""The API server over HTTP(S): GET/PATCH of JSON objects and watch streams, every call bounded by
--request-timeout, every failure an OpsctlError that names the server, the kubeconfig context and what to
change. Built on http.client (the `kubernetes` package takes longer to import than `opsctl get` may take)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import pathlib
import socket
import ssl
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opsctl.errors import ExitCode, OpsctlError
from opsctl.kubeconfig import Endpoint, ExecPlugin, KubeconfigError

Obj = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
EXEC_TIMEOUT = 60.0
"""Seconds a credential plugin may take (it may open a browser or refresh an SSO session)."""


@dataclass(frozen=True)
class WatchEvent:
    type: str
    """ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."""
    object: Obj


class ApiError(OpsctlError):
    """An error status the API server answered."""

    def __init__(self, code: ExitCode, message: str, status: int) -> None:
        super().__init__(code, message)
        self.status = status


class GoneError(Exception):
    """The watch's resourceVersion is too old (410): list again."""


def _exec_credential(plugin: ExecPlugin, source: str) -> Obj:
    """Run a credential plugin; its ExecCredential's status (token, or client certificate and key)."""
    info = {"apiVersion": plugin.api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    env = {**os.environ, **dict(plugin.env), "KUBERNETES_EXEC_INFO": json.dumps(info)}
    what = f"the credential plugin {plugin.command!r} of {source}"
    try:
        done = subprocess.run([plugin.command, *plugin.args], capture_output=True, text=True, env=env,
                              timeout=EXEC_TIMEOUT, check=False)
    except FileNotFoundError:
        raise KubeconfigError(f"{what} is not installed (not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise KubeconfigError(f"{what} did not finish within {EXEC_TIMEOUT:.0f}s") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0]
        raise KubeconfigError(f"{what} failed (exit {done.returncode}): {first}")
    try:
        status = json.loads(done.stdout)["status"]
    except (ValueError, KeyError, TypeError):
        raise KubeconfigError(f"{what} printed no ExecCredential with a status") from None
    return dict(status)


def _ssl_context(endpoint: Endpoint, cert: bytes | None, key: bytes | None) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=endpoint.ca_file, cadata=endpoint.ca_data.decode() if endpoint.ca_data else None)
    if endpoint.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if endpoint.cert_file or cert:
        # load_cert_chain reads files only: inline data goes through a private temporary directory.
        with tempfile.TemporaryDirectory(prefix="opsctl-") as private:
            cert_file = endpoint.cert_file or _write(private, "cert.pem", cert or b"")
            key_file = endpoint.key_file or (_write(private, "key.pem", key) if key else None)
            context.load_cert_chain(cert_file, key_file)
    return context


def _write(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as file:
        file.write(data)
    return path


class Kube:
    """One API server: JSON requests over one kept-alive connection, and watch streams on their own."""

    def __init__(self, endpoint: Endpoint, timeout: float | None) -> None:
        """`timeout`: seconds each answer may take (None: no limit)."""
        self.endpoint = endpoint
        self.timeout = timeout
        url = urllib.parse.urlsplit(endpoint.server)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise KubeconfigError(f"the server {endpoint.server!r} of {endpoint.source} is not an http(s) URL")
        self._url = url
        self._headers = {"Accept": "application/json", "User-Agent": "opsctl"}
        self._ssl: ssl.SSLContext | None = None
        self._connection: http.client.HTTPConnection | None = None
        self._credentials_loaded = False

    # Credentials ---------------------------------------------------------------------------------------------

    def _load_credentials(self) -> None:
        """Token, basic auth or client certificate; a credential plugin runs at most once per process."""
        if self._credentials_loaded:
            return
        endpoint, cert, key = self.endpoint, self.endpoint.cert_data, self.endpoint.key_data
        token = endpoint.token
        if endpoint.token_file:
            try:
                token = pathlib.Path(endpoint.token_file).read_text().strip()
            except OSError as error:
                raise KubeconfigError(f"token file {endpoint.token_file} of {endpoint.source}: {error.strerror}") \
                    from None
        if endpoint.exec_plugin is not None:
            status = _exec_credential(endpoint.exec_plugin, endpoint.source)
            token = status.get("token") or token
            if status.get("clientCertificateData"):
                cert, key = str(status["clientCertificateData"]).encode(), str(status.get("clientKeyData", "")).encode()
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        elif endpoint.username is not None:
            basic = base64.b64encode(f"{endpoint.username}:{endpoint.password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {basic}"
        if self._url.scheme == "https":
            try:
                self._ssl = _ssl_context(endpoint, cert, key)
            except (ssl.SSLError, OSError) as error:
                raise KubeconfigError(f"the TLS settings of {endpoint.source} do not load: {error}: fix "
                                      "certificate-authority / client-certificate / client-key") from None
        self._credentials_loaded = True

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        host, port = self._url.hostname or "", self._url.port
        if self._url.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._ssl)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    # Requests ------------------------------------------------------------------------------------------------

    def _target(self, path: str, query: dict[str, str] | None) -> str:
        prefix = self._url.path.rstrip("/")
        return prefix + path + ("?" + urllib.parse.urlencode(query) if query else "")

    def request(self, method: str, path: str, query: dict[str, str] | None = None, body: Any = None,
                content_type: str = "application/json", what: str = "") -> Obj:
        """One JSON request; an error status or a failed connection raises OpsctlError."""
        self._load_credentials()
        headers = dict(self._headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = self._connect(self.timeout)
            try:
                self._connection.request(method, self._target(path, query), body=payload, headers=headers)
                response = self._connection.getresponse()
                text = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                # A kept-alive connection the server closed meanwhile: once more on a new one.
                self.close()
                if attempt == 2:
                    raise self._connection_error(error) from None
            except (OSError, http.client.HTTPException) as error:
                self.close()
                raise self._connection_error(error) from None
        if not 200 <= response.status <= 299:
            raise status_error(response.status, text, what, self.endpoint.source)
        return dict(json.loads(text)) if text else {}

    def get(self, path: str, query: dict[str, str] | None = None, what: str = "") -> Obj:
        return self.request("GET", path, query, what=what)

    def merge_patch(self, path: str, patch: Obj, what: str = "") -> Obj:
        return self.request("PATCH", path, body=patch, content_type=MERGE_PATCH, what=what)

    def json_patch(self, path: str, operations: list[Obj], what: str = "") -> Obj:
        """RFC 6902: a `test` operation that fails makes the API server refuse the whole patch (422)."""
        return self.request("PATCH", path, body=operations, content_type=JSON_PATCH, what=what)

    def watch(self, path: str, query: dict[str, str], seconds: int) -> Iterator[WatchEvent]:
        """Events of a watch that the server ends after `seconds`; raises GoneError when it must be re-listed."""
        self._load_credentials()
        connection = self._connect(self.timeout)
        try:
            connection.request("GET", self._target(path, {**query, "watch": "true", "timeoutSeconds": str(seconds)}),
                               headers=self._headers)
            response = connection.getresponse()
            if not 200 <= response.status <= 299:
                text = response.read()
                if response.status == 410:
                    raise GoneError()
                raise status_error(response.status, text, "", self.endpoint.source)
            # Events may be minutes apart: wait for the server to end the stream, plus the request timeout.
            if connection.sock is not None and self.timeout is not None:
                connection.sock.settimeout(seconds + self.timeout)
            while line := response.readline():
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    if (event.get("object") or {}).get("code") == 410:
                        raise GoneError()
                    raise OpsctlError(ExitCode.ERROR, f"the watch failed: {(event.get('object') or {}).get('message')}")
                yield WatchEvent(str(event.get("type")), dict(event.get("object") or {}))
        except (OSError, http.client.HTTPException) as error:
            raise self._connection_error(error) from None
        finally:
            connection.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connection_error(self, error: BaseException) -> OpsctlError:
        server, source = self.endpoint.server, self.endpoint.source
        if isinstance(error, TimeoutError | socket.timeout):
            return OpsctlError(ExitCode.NO_ANSWER, f"the API server at {server} ({source}) did not answer within "
                                                   f"{self.timeout or 0:g}s: is it overloaded or hung? Raise "
                                                   "--request-timeout to wait longer")
        if isinstance(error, ssl.SSLError):
            return OpsctlError(ExitCode.UNREACHABLE, f"TLS with the API server at {server} ({source}) failed: "
                                                     f"{error.reason or error}: check the kubeconfig's "
                                                     "certificate-authority and --context")
        reason = "connection refused" if isinstance(error, ConnectionRefusedError) else \
            "unknown host" if isinstance(error, socket.gaierror) else str(error) or type(error).__name__
        return OpsctlError(ExitCode.UNREACHABLE, f"cannot reach the API server at {server} ({source}): {reason}: "
                                                 "is the cluster up? Check --context and --kubeconfig (KUBECONFIG)")


def status_error(status: int, body: bytes, what: str, source: str) -> ApiError:
    """The error of an answer with an error status, with the API server's own message."""
    try:
        message = str(json.loads(body).get("message") or "")
    except (ValueError, AttributeError):
        message = ""
    message = message or body.decode(errors="replace").strip()[:200] or http.client.responses.get(status, "")
    if status == 404:
        return ApiError(ExitCode.NOT_FOUND, f"{what or 'object'} not found ({message})", status)
    if status in (401, 403):
        return ApiError(ExitCode.UNREACHABLE, f"the API server refused access ({status}): {message}: check the "
                                              f"user of {source} and its RBAC permissions", status)
    if 400 <= status < 500 and status not in (408, 429):
        return ApiError(ExitCode.REJECTED, f"the API server rejected the request ({status}): {message}", status)
    return ApiError(ExitCode.ERROR, f"API error {status}: {message}", status)
