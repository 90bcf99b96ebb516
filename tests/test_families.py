"""The model families beyond DeepSeek predict on every bundled GPU kind at the TP sizes that fit, and a TP that
does not fit gets vLLM's answer: the smallest one that does."""

from __future__ import annotations

import pytest

from perfsim.errors import DoesNotFitError
from perfsim.prediction import predict

FAMILIES = ("gpt-oss-120b", "qwen3-235b-a22b", "llama-3.1-70b", "mixtral-8x7b", "kimi-k2")
GPUS = ("h100", "h200", "b200", "gb300")
TINY = {"num_prompts": 8, "random_input_len": 256, "random_output_len": 8, "max_concurrency": 4}


@pytest.mark.parametrize("hw", GPUS)
@pytest.mark.parametrize("model", FAMILIES)
def test_every_family_predicts_at_the_smallest_tp_that_fits(model, hw):
    try:
        pred = predict(model, hw, bench=TINY, calibration="none")
    except DoesNotFitError as exc:  # only Kimi-K2's 1T FP8 weights exceed 8 Hopper GPUs
        assert (model, hw) in {("kimi-k2", "h100"), ("kimi-k2", "h200")}, exc
        assert "does not fit on any tensor-parallel group" in str(exc)
        return
    r = pred.result
    assert r["completed"] == 8 and r["output_throughput"] > 0 and r["mean_tpot_ms"] > 0
    tp = pred.deployment.tp
    if tp > 1:  # auto-TP picked the smallest: half of it does not fit
        with pytest.raises(
            DoesNotFitError, match=f"The smallest tensor parallelism that fits is -tp {tp}\\."
        ):
            predict(model, hw, deployment={"tensor_parallel_size": tp // 2}, bench=TINY, calibration="none")
