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
from typing import NoReturn

from perfsim import __version__, commands
from perfsim.commands.pasted_commands import flatten_pasted_commands
from perfsim.commands.vllm_flags import ignored_vllm_flags
from perfsim.errors import PerfsimError
from perfsim.specs.deployment import VLLM_VERSION

Handler = Callable[[argparse.Namespace], int]


class FlagError(PerfsimError):
    """A flag argparse refused (unknown, missing value, not one of its choices)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose refusals are one line naming the command's --help, not a usage block and an exit."""

    def error(self, message: str) -> NoReturn:
        """Raise ``FlagError`` (``main`` prints it and returns 2)."""
        raise FlagError(f"{message} (`{self.prog} --help` lists the flags)")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    parser = OneLineParser(
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


def _subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser | None:
    """The parser of subcommand ``name``, None if there is none."""
    for action in parser._subparsers._group_actions if parser._subparsers else []:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return action.choices.get(name)
    return None


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``, with vLLM command lines pasted after ``--`` flattened first; vLLM flags -> a note."""
    noted: list[str] = []
    pasted_inputs: list[str] = []
    command = _subcommand(parser, argv[0]) if argv else None
    if command is not None and "--" in argv and command.get_default("takes_vllm_flags"):
        flat = flatten_pasted_commands(argv[1:], command)
        argv, noted, pasted_inputs = [argv[0], *flat.argv], flat.noted, flat.inputs
    args, extra = parser.parse_known_args(argv)
    args.pasted_inputs = pasted_inputs  # files named inside pasted vLLM lines: inputs no output may overwrite
    if extra and not getattr(args, "takes_vllm_flags", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra or noted:
        args.ignored_vllm_flags = list(dict.fromkeys(noted + ignored_vllm_flags(extra, args.own_flags)))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perfsim`` console script; returns the exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parse(parser, argv)
        handler: Handler | None = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 2
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
