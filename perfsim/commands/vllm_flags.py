"""vLLM command lines pasted into perfsim: vLLM flags perfsim does not model become a note, typos an error.

``reference/vllm_flags.txt`` lists every flag of `vllm serve` and `vllm bench serve` 0.14.1 (written by
``tools/vllm_flags.py`` from vLLM's sources). A token argparse did not take is a vLLM flag perfsim ignores (with
the value that follows it), or a mistake named with the closest flag.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Sequence

from perfsim.errors import SpecError
from perfsim.paths import data_dir


@functools.lru_cache(maxsize=1)
def vllm_flags() -> frozenset[str]:
    """Flags of `vllm serve` and `vllm bench serve` 0.14.1."""
    text = (data_dir("reference") / "vllm_flags.txt").read_text()
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


#: vLLM settings perfsim always assumes (the random dataset, every output to its full length, no prefix cache)
ASSUMED = frozenset(
    {
        "--dataset-name random",
        "--ignore-eos",
        "--backend vllm",
        "--endpoint /v1/completions",
        "--no-enable-prefix-caching",
    }
)


def _is_vllm_flag(name: str) -> bool:
    flags = vllm_flags()
    return name in flags or (name.startswith("--no-") and "--" + name[5:] in flags)


def ignored_vllm_flags(extra: Sequence[str], own_flags: Iterable[str]) -> list[str]:
    """The vLLM flags (with their values) among the tokens argparse left, or ``SpecError`` for anything else."""
    ignored: list[str] = []
    i = 0
    while i < len(extra):
        token = extra[i]
        name, has_value, _ = token.partition("=")
        if not token.startswith("-") or not _is_vllm_flag(name):
            candidates = sorted(set(own_flags) | vllm_flags())
            close = difflib.get_close_matches(name, candidates, n=1) if token.startswith("-") else []
            hint = f" (did you mean {close[0]}?)" if close else ""
            what = "flag" if token.startswith("-") else "argument"
            raise SpecError(f"unrecognized {what} {token}{hint}; `perfsim predict --help` lists the flags")
        value = None
        if not has_value and i + 1 < len(extra) and not extra[i + 1].startswith("-"):
            value = extra[i + 1]
            i += 1
        given = f"{token} {value}" if value is not None else token
        if given.replace("=", " ") not in ASSUMED:
            ignored.append(given)
        i += 1
    return ignored
