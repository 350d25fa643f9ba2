"""Loading the config files the operator mounts, and reloading them when they change.

Kubernetes updates a mounted ConfigMap by swapping a symlink, so the watcher compares file contents
(not inotify events or mtimes alone). A valid new file is applied without a restart; an invalid one is
rejected with a logged reason and counted, and the config that runs stays."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from trading_runtime.config import RenderedConfig, Switches

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


CONFIG_DIGEST_LENGTH = 16


def config_digest(content: bytes) -> str:
    """The config hash the runtime exposes (`tradeops_runtime_config_info{hash=...}`): the first 16 hex digits
    of the file's SHA-256, the same digest the operator names a revision's config ConfigMap after."""
    return hashlib.sha256(content).hexdigest()[:CONFIG_DIGEST_LENGTH]


class ConfigError(ValueError):
    """A config file that cannot be used, with the reason."""


def load_model(path: pathlib.Path, model: type[M]) -> M:
    """Parse and validate one YAML file; `ConfigError` says what is wrong and where."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc


def load_runtime_config(path: pathlib.Path) -> RenderedConfig:
    return load_model(path, RenderedConfig)


def load_switches(path: pathlib.Path) -> Switches:
    return load_model(path, Switches)


@dataclass
class WatchedFile(Generic[M]):
    """One config file, its current valid value and its reload counters."""

    path: pathlib.Path
    model: type[M]
    on_change: Callable[[M], None]
    value: M | None = None
    digest: str = ""
    config_hash: str = ""
    """`config_digest` of the content in effect."""
    reloads: int = 0
    rejected: int = 0
    last_error: str = ""

    def check(self) -> bool:
        """Reload if the content changed. Returns True when a new valid value was applied."""
        try:
            content = self.path.read_bytes()
        except OSError as exc:
            return self._reject(f"{self.path}: {exc}", "")
        digest = hashlib.sha256(content).hexdigest()
        if digest == self.digest:
            return False
        try:
            value = load_model(self.path, self.model)
        except ConfigError as exc:
            return self._reject(str(exc), digest)
        self.digest, self.value, self.last_error = digest, value, ""
        self.config_hash = config_digest(content)
        self.reloads += 1
        self.on_change(value)
        return True

    def _reject(self, reason: str, digest: str) -> bool:
        """Count and log a bad file once (not on every poll while it stays bad)."""
        if digest:
            self.digest = digest
        if reason != self.last_error:
            self.rejected += 1
            log.error("config rejected, keeping the running one: %s", reason)
        self.last_error = reason
        return False


async def watch(files: list[WatchedFile[RenderedConfig] | WatchedFile[Switches]], stop: asyncio.Event,
                interval: float = 1.0) -> None:
    """Poll the files until `stop` is set."""
    while not stop.is_set():
        for watched in files:
            watched.check()
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            continue
