"""The NAME argument every TradingSymbol verb takes, and its shell completion (bash, zsh, fish:
`opsctl --install-completion`): the names in the namespace and context given so far on the command line."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from opsctl import kit
from opsctl.errors import OpsctlError
from opsctl.options import Cluster

COMPLETION_TIMEOUT = 2.0
"""A shell waits on completion: never longer than this for the API server."""


def complete_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """Names of the TradingSymbols in the namespace that start with what was typed; nothing when the API
    cannot be asked (completion never prints errors)."""
    from opsctl.client import list_symbols

    cluster = kit.parsed(ctx, Cluster)
    limit = min(cluster.timeout or COMPLETION_TIMEOUT, COMPLETION_TIMEOUT)
    cluster = dataclasses.replace(cluster, request_timeout=limit)
    try:
        items, _ = list_symbols(cluster.connect(), all_namespaces=False)
    except (OpsctlError, OSError, ValueError):
        return []
    return [i["metadata"]["name"] for i in items if i["metadata"]["name"].startswith(incomplete)]


NAME_HELP = ("The TradingSymbol's name (metadata.name, e.g. spy); a ticker (SPY) works when one TradingSymbol "
             "in the namespace trades it")
NameArg = Annotated[str, typer.Argument(metavar="NAME", help=NAME_HELP, autocompletion=complete_names)]
WatchOpt = Annotated[bool, typer.Option("--watch", "-w", help="After printing, follow changes until Ctrl-C")]
