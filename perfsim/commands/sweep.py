"""``perfsim sweep``: predict a grid of what-ifs from a YAML file into a CSV (and plots)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from perfsim.commands.common import check_output_folder, check_output_path
from perfsim.errors import SpecError
from perfsim.executors import Journal
from perfsim.executors.base import EXECUTOR_SPELLINGS
from perfsim.plots import sweep_plots
from perfsim.specs.loading import load_yaml_file
from perfsim.sweeps import (
    LARGE_GRID_POINTS,
    check_grid_size,
    check_point,
    estimated_sweep_s,
    grid_points,
    grid_size,
    sweep,
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``sweep``."""
    p = sub.add_parser(
        "sweep",
        help="Predict every point of a grid of settings (what-if studies).",
        description="GRID.yaml has 'base' (settings shared by every point) and 'grid' (setting -> list of values); "
        "settings are predict flags in snake_case (max_concurrency, tensor_parallel_size, precision, "
        "hw, ...) or hw_scale.<factor> (hbm_bandwidth, flops, ...). See examples/grid.yaml.",
    )
    p.add_argument("--grid", required=True, metavar="GRID.yaml", help="The grid file.")
    p.add_argument("--out", required=True, metavar="CSV", help="Where to write one row per point.")
    p.add_argument("--plot", metavar="DIR", help="Write standard plots of the results into DIR.")
    p.add_argument("--workers", type=int, default=None, help="Parallel processes [default: CPUs].")
    p.add_argument(
        "--executor", default="local", metavar="WHERE", help=f"Where points run: {EXECUTOR_SPELLINGS}."
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help=f"Run a grid of more than {LARGE_GRID_POINTS:,} points without asking.",
    )
    p.set_defaults(handler=cmd_sweep)


def load_grid(path: Path) -> tuple[dict, dict]:
    """(base, grid) from a grid YAML, with clear errors (its points are checked by ``check_grid_points``)."""
    data = load_yaml_file(path)
    unknown = set(data) - {"base", "grid", "description"}
    if unknown:
        raise SpecError(
            f"unknown top-level keys {', '.join(sorted(unknown))}; allowed: base, grid, description",
            source=str(path),
        )
    grid = data.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise SpecError(
            "expected a non-empty 'grid' mapping of setting -> list of values", source=str(path), field="grid"
        )
    base = data.get("base") or {}
    if not isinstance(base, dict):
        raise SpecError("expected a mapping", source=str(path), field="base")
    empty = [k for k, v in grid.items() if isinstance(v, list) and not v]
    if empty:
        raise SpecError("expected a non-empty list of values", source=str(path), field=f"grid.{empty[0]}")
    return base, grid


def check_grid_points(path: Path, base: dict, grid: dict) -> None:
    """Refuse the first point of the grid with an invalid name or value, naming the point."""
    for point in grid_points(grid, base):
        try:
            check_point(point)
        except SpecError as exc:
            where = ", ".join(f"{k}={point[k]!r}" for k in grid)
            raise SpecError(f"{exc} (at {where})", source=str(path)) from None


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def confirm_grid(
    points: int, estimate_s: float, workers: int, yes: bool, *, what: str = "sweep", unit: str = "points"
) -> None:
    """Announce the grid's size and run time; a large one needs --yes or a 'y' on a terminal."""
    check_grid_size(points, None)
    print(f"{what}: {points:,} {unit}, about {_duration(estimate_s)} on {workers} worker(s)")
    if points <= LARGE_GRID_POINTS or yes:
        return
    if not sys.stdin.isatty():
        noun = "grid" if what == "sweep" else what
        raise SpecError(
            f"the {noun} has {points:,} {unit} (more than {LARGE_GRID_POINTS:,}): add --yes to run it"
        )
    if input("run it? [y/N] ").strip().lower() not in ("y", "yes"):
        raise SpecError("not confirmed: nothing was run")


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run the sweep, write the CSV and optional plots."""
    if args.workers is not None and args.workers < 1:
        raise SpecError("--workers must be >= 1")
    check_output_path(args.out, (".csv",))
    if args.plot:
        check_output_folder(args.plot)
    base, grid = load_grid(Path(args.grid))
    workers = args.workers or os.cpu_count() or 1
    confirm_grid(grid_size(grid), estimated_sweep_s(grid, base, workers), workers, args.yes)
    check_grid_points(Path(args.grid), base, grid)
    journal_path = Path(f"{args.out}.journal.jsonl")  # finished points, so an interrupted sweep resumes
    journal = Journal(journal_path, grid_points(grid, base))
    if journal.done:
        print(f"resuming: {len(journal.done)} points already done in {journal_path}")
    result = sweep(
        grid, base=base, workers=args.workers, max_points=None, executor=args.executor, journal=journal
    )
    result.write_csv(args.out)
    journal.remove()
    failed = [r for r in result.records if r.get("error")]
    print(
        f"{len(result)} points in {result.wall_s:.1f} s -> {args.out}"
        f"{f' ({len(failed)} could not be predicted; see the error column)' if failed else ''}"
    )
    if args.plot:
        for path in sweep_plots(result.records, Path(args.plot), varied=list(grid)):
            print(f"wrote {path}")
    return 0
