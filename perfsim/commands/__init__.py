"""Subcommands of the ``perfsim`` CLI; each module registers one or more with ``register(subparsers)``."""

from __future__ import annotations

from perfsim.commands import explain, inspect, predict

REGISTRY = [inspect.register, predict.register, explain.register]
