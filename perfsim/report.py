"""Plain-text tables and number formatting for the command line (no dependencies)."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(
    rows: Sequence[Sequence[object]], headers: Sequence[str], *, align: str | None = None
) -> str:
    """A fixed-width table; ``align`` is one character per column ('l' or 'r'), numbers right by default."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if align is None:
        align = "".join(
            "r" if rows and isinstance(rows[0][i], (int, float)) else "l" for i in range(len(headers))
        )
    lines = []
    for n, row in enumerate(cells):
        parts = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align, strict=True)]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100 or value == 0:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def human_bytes(n: float) -> str:
    """Bytes as GiB/MiB/KiB with 3 significant digits."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= factor:
            value = n / factor
            return f"{value:,.0f} {unit}" if abs(value) >= 100 else f"{value:.3g} {unit}"
    return f"{n:.0f} B"


def human_count(n: float) -> str:
    """A count with B/M/K suffix."""
    for unit, factor in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= factor:
            return f"{n / factor:.4g}{unit}"
    return f"{n:.0f}"
