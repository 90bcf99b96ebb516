"""Whole vLLM command lines after ``--``: ``perfsim predict [flags] -- vllm serve MODEL ... -- vllm bench serve ...``.

Each pasted line is checked as vLLM would check it, then flattened into ``predict``'s own flags: ``vllm serve``'s
positional model (or its ``--model``) becomes ``--model``; a flag only `vllm bench serve` defines is refused in
the serve line and vice versa (vLLM refuses them too); ``vllm serve --seed`` is the engine's sampling seed, not
bench serve's dataset seed, so it becomes a note; bench serve's ``--model`` must be the served model. A perfsim
flag given before ``--`` and again in a pasted line is an error, not last-one-wins. ``vllm serve --config FILE``
is read as vLLM reads it (``utils/argparse_utils.py`` ``load_config_file``: a flat YAML mapping whose keys are
flags; ``true`` adds the flag, ``false`` adds nothing, a list gives several values), flags on the line win.
"""

from __future__ import annotations

import argparse
import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from perfsim.commands.vllm_flags import vllm_flag_commands, vllm_flag_name
from perfsim.errors import SpecError
from perfsim.specs.loading import load_yaml_file

#: what perfsim takes after ``--``, and how vllm_flags.txt names each command
COMMANDS = {("vllm", "serve"): "serve", ("vllm", "bench", "serve"): "bench"}
SPELLED = {"serve": "vllm serve", "bench": "vllm bench serve"}


@dataclass
class Flattened:
    """Pasted command lines as ``predict`` flags, plus the flags that only become a note."""

    argv: list[str]
    noted: list[str] = field(default_factory=list)
    inputs: list[str] = field(
        default_factory=list
    )  # files the lines name (``--config``): no output may be one


def _config_file_flags(path: str) -> list[str]:
    """The flags of a ``vllm serve --config`` YAML file, as vLLM expands them."""
    if Path(path).suffix not in (".yaml", ".yml"):
        raise SpecError(f"vllm serve --config {path}: vLLM takes a .yaml or .yml file")
    tokens: list[str] = []
    for key, value in load_yaml_file(Path(path)).items():
        flag = "--" + str(key)
        if isinstance(value, bool):
            tokens += [flag] if value else []
        elif isinstance(value, list):
            tokens += [flag, *(str(item) for item in value)] if value else []
        elif isinstance(value, dict):
            tokens += [flag, json.dumps(value)]
        else:
            tokens += [flag, str(value)]
    return tokens


def _expand_config(tokens: list[str], out: Flattened) -> list[str]:
    """``tokens`` of a serve line with its ``--config FILE`` replaced by the file's flags, after the model."""
    where = [i for i, t in enumerate(tokens) if t == "--config" or t.startswith("--config=")]
    if not where:
        return tokens
    if len(where) > 1:
        raise SpecError("vllm serve --config: give one config file (vLLM takes one)")
    i = where[0]
    if "=" in tokens[i]:
        path, rest = tokens[i].partition("=")[2], tokens[:i] + tokens[i + 1 :]
    elif i + 1 < len(tokens):
        path, rest = tokens[i + 1], tokens[:i] + tokens[i + 2 :]
    else:
        raise SpecError("vllm serve --config: the config file is missing")
    out.inputs.append(path)
    first = 1 if rest and not rest[0].startswith("-") else 0  # after the positional model, as vLLM puts them
    return rest[:first] + _config_file_flags(path) + rest[first:]


def _split_commands(tokens: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``[vllm serve ..., --, vllm bench serve ...]`` -> [('serve', [...]), ('bench', [...])]."""
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token == "--":
            segments.append([])
        else:
            segments[-1].append(token)
    found: list[tuple[str, list[str]]] = []
    for segment in segments:
        for words, command in COMMANDS.items():
            if tuple(segment[: len(words)]) == words:
                found.append((command, segment[len(words) :]))
                break
        else:
            got = " ".join(segment[:3]) or "nothing"
            raise SpecError(
                f"after `--` perfsim takes `vllm serve MODEL [flags]` and `vllm bench serve [flags]`, each once and "
                f"separated by `--`; got `{got}`"
            )
    commands = [command for command, _ in found]
    if len(set(commands)) != len(commands):
        raise SpecError("each of `vllm serve` and `vllm bench serve` may be pasted once after `--`")
    return found


def _takes_values(action: argparse.Action | None, token: str, following: Sequence[str]) -> int:
    """How many of ``following`` are the values of flag ``token``."""
    if "=" in token:
        return 0
    if action is not None:
        if action.nargs == 0:
            return 0
        if action.nargs in ("+", "*"):
            n = 0
            while n < len(following) and not following[n].startswith("-"):
                n += 1
            return n
        return 1 if following else 0
    return 1 if following and not following[0].startswith("-") else 0


def _walk(tokens: Sequence[str], parser: argparse.ArgumentParser) -> list[tuple[str, list[str]]]:
    """(flag token, its value tokens) pairs; a positional token is returned with an empty flag."""
    actions = parser._option_string_actions  # noqa: SLF001 - argparse has no public lookup of a flag's action
    pairs: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("-") or token == "-":
            pairs.append(("", [token]))
            i += 1
            continue
        n = _takes_values(actions.get(token.partition("=")[0]), token, tokens[i + 1 :])
        pairs.append((token, list(tokens[i + 1 : i + 1 + n])))
        i += 1 + n
    return pairs


def flatten_pasted_commands(argv: Sequence[str], parser: argparse.ArgumentParser) -> Flattened:
    """Turn ``argv`` (the subcommand's own flags, then ``--`` and vLLM command lines) into flat flags."""
    cut = list(argv).index("--")
    head = list(argv[:cut])
    own = parser._option_string_actions  # noqa: SLF001
    head_dests = {own[t.partition("=")[0]].dest for t, _ in _walk(head, parser) if t.partition("=")[0] in own}
    out = Flattened(argv=head)
    models: dict[str, str] = {}  # 'serve' / 'bench' -> the model each line names
    served_names: list[str] = []
    for command, tokens in _split_commands(argv[cut + 1 :]):
        spelled = SPELLED[command]
        pairs = _walk(_expand_config(tokens, out) if command == "serve" else tokens, parser)
        if command == "serve" and pairs and not pairs[0][0]:
            models["serve"] = pairs.pop(0)[1][
                0
            ]  # vllm serve MODEL: the positional wins over --model, as in vLLM
        for token, values in pairs:
            name = token.partition("=")[0]
            value = token.partition("=")[2] if "=" in token else " ".join(values)
            if not token:
                raise SpecError(
                    f"`{spelled}`: unexpected argument {values[0]} (the model goes first: `vllm serve MODEL "
                    "[flags]`)"
                )
            vllm_name = vllm_flag_name(name)
            defined_by = vllm_flag_commands().get(vllm_name or "", frozenset())
            if vllm_name is None:
                ours = [f for f, c in vllm_flag_commands().items() if command in c]
                close = difflib.get_close_matches(name, ours, n=1)
                where = (
                    "a perfsim flag: put it before `--`"
                    if name in own
                    else f"not a `{spelled}` flag" + (f" (did you mean {close[0]}?)" if close else "")
                )
                raise SpecError(f"`{spelled} {name}`: {where}")
            if command not in defined_by:
                other = SPELLED["bench" if command == "serve" else "serve"]
                raise SpecError(f"`{spelled} {name}`: {name} is a `{other}` flag (vLLM refuses it here)")
            if name == "--model":
                models.setdefault(command, value)
                continue
            if command == "serve" and name == "--served-model-name":
                served_names += values or [value]
            if command == "serve" and name == "--seed":
                out.noted.append(" ".join(["vllm serve", token, *values]))
                continue
            if name in own and own[name].dest in head_dests:
                raise SpecError(f"{name} is given before `--` and again in `{spelled}`: give it once")
            out.argv += [token, *values]
    model = models.get("serve") or models.get("bench")
    if "serve" in models and "bench" in models and models["bench"] not in (models["serve"], *served_names):
        raise SpecError(
            f"`vllm bench serve --model {models['bench']}` is not the model `vllm serve` serves "
            f"({', '.join([models['serve'], *served_names])})"
        )
    if model is None and any(command == "serve" for command, _ in _split_commands(argv[cut + 1 :])):
        raise SpecError("`vllm serve` needs its model: `vllm serve MODEL [flags]`")
    if model is not None:
        if "model" in head_dests:
            raise SpecError("--model is given before `--` and again in the pasted vLLM command: give it once")
        out.argv += ["--model", model]
    return out
