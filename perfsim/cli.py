"""The ``perfsim`` command line: list, show, predict, explain, validate, calibrate, sweep, collect.

Flags of ``predict`` and ``explain`` are generated from the pydantic config models (``Setup``,
``Deployment``, ``BenchConfig``) so that flags and fields cannot drift. Bad input prints one line
``perfsim: error: ...`` and exits with code 2; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from perfsim import __version__, commands
from perfsim.commands.vllm_flags import ignored_vllm_flags
from perfsim.errors import PerfsimError
from perfsim.specs.deployment import VLLM_VERSION

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="perfsim",
        description="Predict how fast vLLM serves a Mixture-of-Experts model on given GPUs.",
    )
    parser.add_argument(
        "--version", action="version", version=f"perfsim {__version__} (models vLLM {VLLM_VERSION} semantics)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in commands.REGISTRY:
        register(sub)
    parser.allow_abbrev = False
    for command in sub.choices.values():  # '--max-num' must not silently mean --max-num-seqs
        command.allow_abbrev = False
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perfsim`` console script; returns the exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        if extra and not getattr(args, "takes_vllm_flags", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if extra:
            args.ignored_vllm_flags = ignored_vllm_flags(extra, args.own_flags)
        return handler(args)
    except PerfsimError as exc:
        print(f"perfsim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except (
        OSError
    ) as exc:  # the machine, not perfsim: a full disk, a vanished folder, a broken pipe to a file
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"perfsim: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("perfsim: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: one line unless PERFSIM_DEBUG asks for the traceback
        if os.environ.get("PERFSIM_DEBUG"):
            raise
        print(
            f"perfsim: internal error: {type(exc).__name__}: {exc} (set PERFSIM_DEBUG=1 for the traceback; "
            "please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
