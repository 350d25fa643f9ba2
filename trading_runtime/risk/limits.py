"""Correlation-based position limits: symbols whose returns correlate at |ρ| ≥ `threshold` (directly or
through a chain of such pairs) form a group, and each group's combined exposure — Σ exposureᵢ·sign(ρ to
the group's first symbol), so a hedge offsets and a duplicate adds — is capped at `cap`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GroupCheck:
    symbols: tuple[str, ...]
    combined: float
    breached: bool


def correlated_groups(symbols: list[str], corr: dict[tuple[str, str], float], threshold: float) -> list[list[str]]:
    parent = {s: s for s in symbols}

    def find(s: str) -> str:
        while parent[s] != s:
            parent[s] = parent[parent[s]]
            s = parent[s]
        return s

    for (a, b), rho in corr.items():
        if a in parent and b in parent and abs(rho) >= threshold:
            parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for s in symbols:
        groups.setdefault(find(s), []).append(s)
    return [sorted(g) for g in groups.values()]


def _rho(corr: dict[tuple[str, str], float], a: str, b: str) -> float:
    return 1.0 if a == b else corr.get((a, b), corr.get((b, a), 0.0))


def check_correlated_limits(exposures: dict[str, float], corr: dict[tuple[str, str], float], threshold: float,
                            cap: float) -> list[GroupCheck]:
    checks = []
    for group in correlated_groups(sorted(exposures), corr, threshold):
        anchor = group[0]
        combined = sum(exposures[s] * (1 if _rho(corr, anchor, s) >= 0 else -1) for s in group)
        checks.append(GroupCheck(tuple(group), combined, abs(combined) > cap))
    return checks


def headroom(symbol: str, exposures: dict[str, float], corr: dict[tuple[str, str], float], threshold: float,
             cap: float) -> float:
    """How much more exposure `symbol` may add in its own direction before its group hits the cap."""
    for check in check_correlated_limits(exposures, corr, threshold, cap):
        if symbol in check.symbols:
            sign = 1 if _rho(corr, check.symbols[0], symbol) >= 0 else -1
            return max(0.0, cap - abs(check.combined)) if check.combined * sign >= 0 else cap + abs(check.combined)
    return cap
