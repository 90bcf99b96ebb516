"""Subcommands of the ``perfsim`` CLI; each module registers one or more with ``register(subparsers)``."""

from __future__ import annotations

from perfsim.commands import calibration, collect, explain, inspect, plan, predict, sweep

REGISTRY = [
    inspect.register,
    predict.register,
    explain.register,
    calibration.register,
    sweep.register,
    plan.register,
    collect.register,
]
