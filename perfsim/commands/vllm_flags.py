"""vLLM command lines pasted into perfsim: vLLM flags perfsim does not model become a note, typos an error.

``reference/vllm_flags.txt`` lists every flag of `vllm serve` and `vllm bench serve` 0.14.1 and which of the
two defines it (written by ``tools/vllm_flags.py`` from vLLM's sources). A token argparse did not take is a vLLM
flag perfsim ignores (with the value that follows it), or a mistake named with the closest flag. Settings perfsim
cannot honour (another dataset than ``random``) are refused rather than noted.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Sequence

from perfsim.errors import SpecError
from perfsim.paths import data_dir


@functools.lru_cache(maxsize=1)
def vllm_flag_commands() -> dict[str, frozenset[str]]:
    """Each flag of `vllm serve` and `vllm bench serve` 0.14.1 -> the commands defining it ('serve', 'bench')."""
    text = (data_dir("reference") / "vllm_flags.txt").read_text()
    rows = [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return {row[0]: frozenset(row[1].split(",")) for row in rows}


def vllm_flags() -> frozenset[str]:
    """Flags of `vllm serve` and `vllm bench serve` 0.14.1."""
    return frozenset(vllm_flag_commands())


def vllm_flag_name(name: str) -> str | None:
    """The vLLM flag a token names (``--no-x`` is ``--x``'s negation), None when vLLM has no such flag."""
    flags = vllm_flag_commands()
    if name in flags:
        return name
    if name.startswith("--no-") and "--" + name[5:] in flags:
        return "--" + name[5:]
    return None


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


#: vLLM settings with other values perfsim cannot simulate: flag -> the values it takes (bench serve's `vllm`
#: and `openai` backends both send /v1/completions requests)
ONLY_VALUES = {"--dataset-name": ("random",), "--backend": ("vllm", "openai")}


def _is_vllm_flag(name: str) -> bool:
    return vllm_flag_name(name) is not None


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
        allowed = ONLY_VALUES.get(name)
        if allowed is not None and (value if value is not None else token.partition("=")[2]) not in allowed:
            raise SpecError(f"{given}: perfsim simulates {name} {' or '.join(allowed)} only")
        if given.replace("=", " ") not in ASSUMED:
            ignored.append(given)
        i += 1
    return ignored
