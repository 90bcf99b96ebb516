"""A run's journal: each finished point's record as one JSON line, so an interrupted run resumes without
recomputing them. The journal names what it belongs to (a digest of the points), so a changed grid never
resumes from another grid's records."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perfsim.errors import SpecError


def point_key(point: Any) -> str:
    """A stable identity of one point (its settings as canonical JSON)."""
    return json.dumps(point, sort_keys=True, default=str)


def points_digest(points: Sequence[Any]) -> str:
    """The identity of a whole run's points."""
    return hashlib.sha256("\n".join(point_key(p) for p in points).encode()).hexdigest()[:16]


class Journal:
    """Records of finished points in ``path`` (JSON lines; the first line names the run's points)."""

    def __init__(self, path: Path, points: Sequence[Any]):
        self.path, self.digest = path, points_digest(points)
        self.done: dict[str, Any] = {}
        if path.exists():
            self._read()

    def _read(self) -> None:
        lines = self.path.read_text().splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            header = {}
        if header.get("points") != self.digest:
            raise SpecError(
                "is the journal of another run (other points); delete it or write elsewhere",
                source=str(self.path),
            )
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # the line being written when the run was killed
                continue
            self.done[entry["key"]] = entry["record"]

    def start(self) -> None:
        """Create the journal if this run is new."""
        if not self.path.exists():
            self.path.write_text(json.dumps({"points": self.digest}) + "\n")

    def add(self, point: Any, record: Any) -> None:
        """Append one finished point."""
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"key": point_key(point), "record": record}, default=str) + "\n")
            fh.flush()
        self.done[point_key(point)] = record

    def remove(self) -> None:
        """Delete the journal once the run's output is written."""
        self.path.unlink(missing_ok=True)
