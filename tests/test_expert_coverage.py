"""Distinct routed experts per step under the workload's expert popularity (perfsim.costs.expert_coverage)."""

from __future__ import annotations

import numpy as np
import pytest

from perfsim.costs.expert_coverage import expected_active_experts, popularity_weights
from perfsim.costs.generations import spec_params
from perfsim.costs.step import StepCostModel
from perfsim.specs.deployment import Deployment, resolve_deployment
from perfsim.specs.hardware import load_hardware
from perfsim.specs.model import load_model


def test_uniform_routing_by_hand():
    # 256 experts, top-8, one GPU holding all of them: 64 tokens read 256 x (1 - (31/32)^64) = 222.4 experts
    assert expected_active_experts(256, 8 / 256, 64, 0.0) == pytest.approx(256 * (1 - (31 / 32) ** 64))
    assert expected_active_experts(256, 8 / 256, 64, 0.0) == pytest.approx(222.44, abs=0.01)
    assert expected_active_experts(256, 8 / 256, 1, 0.0) == pytest.approx(8.0)  # one token reads its top-k
    assert expected_active_experts(256, 8 / 256, 0, 0.5) == 0.0


def test_popularity_weights_have_mean_one_and_the_asked_spread():
    # 64 midpoint quantiles trim the far tail: the spread comes out 1 % low at cv 0.2, 3 % at 0.5, 8 % at 1.0;
    # a tail expert adds at most one expert to the count, so the count stays close (the Monte Carlo below)
    for cv, low in ((0.2, 0.01), (0.5, 0.03), (1.0, 0.08)):
        w = popularity_weights(cv)
        assert w.mean() == pytest.approx(1.0, rel=1e-12)
        assert w.std() / w.mean() == pytest.approx(cv * (1 - low), rel=0.005)


def test_a_popularity_spread_reads_fewer_experts_as_a_monte_carlo_of_lognormal_routers_does():
    """256 experts of log-normal popularity, averaged over 400 drawn routers: the quadrature must agree within
    0.5 %, and be below uniform routing (1 - (1 - p)^T is concave in p)."""
    rng = np.random.default_rng(7)
    for cv, tokens in ((0.53, 4), (0.53, 64), (0.53, 512), (1.0, 64)):
        sigma = np.sqrt(np.log1p(cv**2))
        draws = []
        for _ in range(400):
            w = rng.lognormal(0.0, sigma, 256)
            p = np.minimum(8 / 256 * w / w.mean(), 1.0)
            draws.append(np.sum(1 - (1 - p) ** tokens))
        expected = expected_active_experts(256, 8 / 256, tokens, cv)
        assert expected == pytest.approx(np.mean(draws), rel=0.005)
        assert expected < expected_active_experts(256, 8 / 256, tokens, 0.0)
    # large batches read every expert either way
    assert expected_active_experts(256, 8 / 256, 16384, 0.53) == pytest.approx(256, rel=1e-3)


def _routed_weight_bytes(cv: float, *, eplb: bool = False) -> float:
    model, hw = load_model("deepseek-r1", "fp4"), load_hardware("gb300")
    dep = Deployment(
        data_parallel_size=4 if eplb else 1,
        tensor_parallel_size=1 if eplb else 4,
        enable_expert_parallel=eplb,
        enable_eplb=eplb,
    )
    params = spec_params(hw.generation).model_copy(update={"expert_popularity_cv": cv})
    cm = StepCostModel(model, hw, resolve_deployment(dep, model, hw, 1), params)
    batch = [cm.stats([1] * 16, [1024] * 16)] * (4 if eplb else 1)
    return next(o for o in cm.step(batch).ops if o.name == "moe_gate_up").bytes


def test_a_decode_step_streams_the_weights_of_the_experts_it_reads():
    """R1 on TP4, 16 decode tokens: the gate/up weights read scale with the experts touched (the small
    activation traffic aside), so the popularity spread shortens the weight stream by the quadrature's ratio:
    to second order in the spread 1 + f''(p) p^2 cv^2 / (2 f(p)) with f(p) = 1 - (1 - p)^16, p = 1/32: 0.953."""
    ratio = expected_active_experts(256, 8 / 256, 16, 0.5) / expected_active_experts(256, 8 / 256, 16, 0.0)
    assert ratio == pytest.approx(0.959, abs=0.002)
    assert _routed_weight_bytes(0.5) / _routed_weight_bytes(0.0) == pytest.approx(ratio, rel=0.01)
    # EPLB balances the spread away: the popularity no longer changes what a step reads
    assert _routed_weight_bytes(0.5, eplb=True) == pytest.approx(_routed_weight_bytes(0.0, eplb=True))
