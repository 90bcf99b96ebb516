"""Progress bars for long runs: a widget in Jupyter, a line on a terminal, nothing in logs and pipes (tqdm)."""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where stderr is not a terminal but a bar is still wanted)."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    return bool(get and type(get()).__name__ == "ZMQInteractiveShell")


def progress_bar(total: int, description: str, *, enabled: bool = True) -> Any:
    """A tqdm bar over ``total`` units, shown only where someone watches (a terminal or a notebook)."""
    shown = enabled and (sys.stderr.isatty() or in_notebook())
    return tqdm(total=total, desc=description, disable=not shown, leave=False, dynamic_ncols=True)
