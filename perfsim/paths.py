"""Where perfsim's bundled data lives (hardware, models, calibrations, measurements).

In a source checkout (editable install) the data folders sit at the repository root; in an installed
wheel they are packaged under ``perfsim/_data``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(kind: str) -> Path:
    """Return the folder holding bundled data of one kind.

    ``kind`` is one of ``hardware``, ``models``, ``calibrations``, ``measurements``, ``reference``.
    """
    packaged = _PACKAGE_DIR / "_data" / kind
    if packaged.is_dir():
        return packaged
    return _PACKAGE_DIR.parent / kind
