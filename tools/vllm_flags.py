#!/usr/bin/env python
"""Write reference/vllm_flags.txt: every command-line flag `vllm serve` and `vllm bench serve` 0.14.1 define.

Not a test. The list lets `perfsim predict` tell a vLLM flag it does not model (a note) from a typo (an error).
Run it on vLLM's unpacked sources (``pip download vllm==0.14.1 --no-deps``, then unzip)::

    python tools/vllm_flags.py /path/to/vllm-0.14.1/vllm
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

#: the modules that define the flags of `vllm serve` (engine, frontend) and `vllm bench serve` (client, datasets)
SOURCES = (
    "engine/arg_utils.py",
    "entrypoints/openai/cli_args.py",
    "entrypoints/cli/serve.py",
    "benchmarks/serve.py",
    "benchmarks/datasets.py",
)
FLAG = re.compile(r"""["'](--?[a-zA-Z][a-zA-Z0-9-]*)["']""")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("vllm_dir", type=Path, help="The unpacked vllm/ package folder of the release.")
    ap.add_argument("--out", type=Path, default=Path("reference/vllm_flags.txt"))
    args = ap.parse_args()
    flags: set[str] = set()
    for rel in SOURCES:
        text = (args.vllm_dir / rel).read_text()
        flags |= {f for f in FLAG.findall(text) if f.startswith("--") or len(f) <= 5}
    header = [
        "# Command-line flags of `vllm serve` and `vllm bench serve` in vLLM 0.14.1, one per line.",
        f"# Written by tools/vllm_flags.py from vLLM 0.14.1's {', '.join(SOURCES)}.",
    ]
    args.out.write_text("\n".join(header + sorted(flags)) + "\n")
    print(f"wrote {len(flags)} flags to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
