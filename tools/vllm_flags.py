#!/usr/bin/env python
"""Write reference/vllm_flags.txt: every command-line flag `vllm serve` and `vllm bench serve` 0.14.1 define.

Not a test. The list lets `perfsim predict` tell a vLLM flag it does not model (a note) from a typo (an error).
Run it on vLLM's unpacked sources (``pip download vllm==0.14.1 --no-deps``, then unzip)::

    python tools/vllm_flags.py /path/to/vllm-0.14.1/vllm
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

#: the modules that define the flags of `vllm serve` (engine, frontend) and of `vllm bench serve` (client, datasets)
SOURCES = {
    "serve": ("engine/arg_utils.py", "entrypoints/openai/cli_args.py", "entrypoints/cli/serve.py"),
    "bench": ("benchmarks/serve.py", "benchmarks/datasets.py"),
}
#: dataclasses whose fields vLLM turns into `--field-name` flags in a loop (cli_args.py FrontendArgs.add_cli_args)
FIELD_FLAGS = {"serve": (("entrypoints/openai/cli_args.py", "FrontendArgs"),)}
FLAG = re.compile(r"""["'](--?[a-zA-Z][a-zA-Z0-9-]*)["']""")


def _dataclass_flags(path: Path, class_name: str) -> list[str]:
    """``--field-name`` of every annotated field of dataclass ``class_name`` in ``path``."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return [
                "--" + item.target.id.replace("_", "-")
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
            ]
    raise SystemExit(f"{path}: no class {class_name}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("vllm_dir", type=Path, help="The unpacked vllm/ package folder of the release.")
    ap.add_argument("--out", type=Path, default=Path("reference/vllm_flags.txt"))
    args = ap.parse_args()
    commands: dict[str, set[str]] = {}  # flag -> the commands that define it
    for command, sources in SOURCES.items():
        for rel in sources:
            text = (args.vllm_dir / rel).read_text()
            for flag in FLAG.findall(text):
                if flag.startswith("--") or len(flag) <= 5:
                    commands.setdefault(flag, set()).add(command)
    for command, classes in FIELD_FLAGS.items():
        for rel, class_name in classes:
            for flag in _dataclass_flags(args.vllm_dir / rel, class_name):
                commands.setdefault(flag, set()).add(command)
    files = ", ".join(rel for sources in SOURCES.values() for rel in sources)
    header = [
        "# Command-line flags of `vllm serve` and `vllm bench serve` in vLLM 0.14.1: the flag, then the commands",
        "# that define it (serve = vllm serve, bench = vllm bench serve), one flag per line.",
        f"# Written by tools/vllm_flags.py from vLLM 0.14.1's {files}.",
    ]
    lines = [f"{flag} {','.join(sorted(commands[flag]))}" for flag in sorted(commands)]
    args.out.write_text("\n".join(header + lines) + "\n")
    flags = commands
    print(f"wrote {len(flags)} flags to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
