"""vLLM's ``--speculative-config`` (JSON), as far as perfsim models it: MTP drafts and their number.

vLLM 0.14.1 treats every ``*_mtp`` method as ``mtp`` [config/speculative.py:31-41, 253-257]; EAGLE, n-gram,
suffix and draft models are other mechanisms, not modelled.
"""

from __future__ import annotations

import json
from typing import Any

from perfsim.specs.loading import parse_json

#: vLLM 0.14.1's MTP method names [config/speculative.py:31-41]
MTP_METHODS = (
    "mtp",
    "deepseek_mtp",
    "mimo_mtp",
    "glm4_moe_mtp",
    "ernie_mtp",
    "exaone_moe_mtp",
    "qwen3_next_mtp",
    "longcat_flash_mtp",
    "pangu_ultra_moe_mtp",
)


def speculative_tokens(value: Any) -> int:
    """The MTP draft tokens a ``--speculative-config`` JSON object (or mapping) asks for, or ``ValueError``."""
    config = value
    if isinstance(value, str):
        try:
            config = parse_json(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                "--speculative-config must be a JSON object such as "
                f'\'{{"method": "mtp", "num_speculative_tokens": 1}}\' ({exc.msg})'
            ) from None
    if not isinstance(config, dict):
        raise ValueError("--speculative-config must be a JSON object")
    method = config.get("method", "mtp")
    if method not in MTP_METHODS:
        raise ValueError(
            f"--speculative-config method '{method}' is not modelled; perfsim models MTP ({', '.join(MTP_METHODS)})"
        )
    tokens = config.get("num_speculative_tokens")
    if not isinstance(tokens, int) or isinstance(tokens, bool) or not 1 <= tokens <= 8:
        raise ValueError("--speculative-config needs num_speculative_tokens, an integer from 1 to 8")
    return tokens
