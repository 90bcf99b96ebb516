"""Errors that reach the user as one clear message (never a traceback)."""

from __future__ import annotations


class PerfsimError(Exception):
    """Base class of every error perfsim reports to users.

    The CLI prints ``str(error)`` and exits with code 2 (usage or input error).
    """

    def __reduce__(self):
        # subclasses take other __init__ arguments than their message: rebuild from the final state, so that
        # errors raised in worker processes (sweeps, calibration) reach the parent intact
        return (_restore_error, (type(self), self.args, dict(self.__dict__)))


def _restore_error(cls: type[PerfsimError], args: tuple, state: dict) -> PerfsimError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class SpecError(PerfsimError):
    """A hardware, model, deployment or workload spec is missing, malformed or impossible.

    The message names the file (when there is one), the field and what was expected.
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        parts = []
        if source:
            parts.append(str(source))
        if field:
            parts.append(f"field '{field}'")
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class UnknownNameError(SpecError):
    """A hardware or model name that perfsim does not know; the message lists the known ones."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.known = known
        super().__init__(
            f"unknown {kind} '{name}'. Known {kind} names: {', '.join(sorted(known))}; "
            f"or give a path to your own file."
        )


class DoesNotFitError(PerfsimError):
    """A deployment whose weights (or minimal KV cache) do not fit in GPU memory."""
