"""The V1 scheduler alone: budgets, chunked prefill, FCFS admission, preemption, MTP drafts, decode blocks."""

from __future__ import annotations

import numpy as np

from perfsim.serving.request import Request, RequestStatus
from perfsim.serving.scheduler import Scheduler


def sched(**kw):
    args = dict(
        max_num_seqs=16, max_num_batched_tokens=8192, num_blocks=10_000, block_size=64, max_model_len=100_000
    )
    args.update(kw)
    return Scheduler(**args)


def drain(s, steps=500):
    """Run a scheduler alone (each step completes before the next is scheduled); return the batches."""
    batches = []
    for _ in range(steps):
        if not s.has_work():
            break
        b = s.schedule()
        batches.append(b)
        s.update_from_output(b)
    return batches


def test_chunked_prefill_splits_a_20k_prompt_into_budget_sized_chunks():
    s = sched()
    s.add_request(Request(0, 20_000, 20_000, 4))
    chunks = []
    for _ in range(3):
        b = s.schedule()
        chunks.append((int(b.new_tokens[0]), int(b.context[0]), int(b.sample_seq.size)))
        s.update_from_output(b)
    assert chunks == [(8192, 0, 0), (8192, 8192, 0), (3616, 16384, 1)]  # only the last chunk samples


def test_running_first_then_fcfs_with_last_admission_chunked():
    s = sched(max_num_batched_tokens=1000)
    s.add_request(Request(0, 600, 600, 3))
    s.update_from_output(s.schedule())  # request 0 prefilled: next it decodes
    for i in (1, 2):
        s.add_request(Request(i, 600, 600, 3))
    b = s.schedule()
    assert b.new_tokens.tolist() == [1, 600, 399]  # decode first, then FCFS; the last admitted is chunked
    assert b.context.tolist() == [600, 0, 0]
    assert b.sample_seq.size == 2 and b.sample_drafts.tolist() == [0, 0]  # the chunked one emits nothing


def test_max_num_seqs_limits_admission():
    s = sched(max_num_seqs=2)
    for i in range(3):
        s.add_request(Request(i, 10, 10, 5))
    b = s.schedule()
    assert len(b) == 2 and len(s.waiting) == 1


def test_kv_exhaustion_preempts_the_last_admitted_and_recomputes():
    s = sched(num_blocks=6, block_size=16)
    reqs = [Request(i, 40, 40, 30) for i in range(2)]
    for r in reqs:
        s.add_request(r)
    scheduled = 0
    for b in drain(s):
        scheduled += int(b.new_tokens.sum())
    assert s.num_preemptions > 0
    assert all(r.status == RequestStatus.FINISHED and r.num_output_tokens == 30 for r in reqs)
    assert scheduled > sum(40 + 29 for _ in reqs)  # recomputed tokens were scheduled again
    assert reqs[1].num_preemptions >= 1 and reqs[1].num_preemptions >= reqs[0].num_preemptions  # LIFO victim
    assert s.num_free_blocks == 6


def test_no_admission_in_a_step_that_preempted():
    """Hand-traced: 5 blocks of 16 tokens, a 32-token budget, two 40-token prompts.

    Step 1: A prefills 32 tokens (2 blocks). Step 2: A's last 8 (3 blocks, samples), B is admitted with 24
    (2 blocks): the pool is full. Step 3: A decodes in its 3rd block; B needs a 3rd block for its last 16
    tokens, so B (the last admitted) is preempted and frees 2 blocks. B would fit again (31 budget tokens
    in 2 blocks), but vLLM admits nothing in a step that preempted.
    """
    s = sched(num_blocks=5, block_size=16, max_num_batched_tokens=32)
    a, b = Request(0, 40, 40, 20), Request(1, 40, 40, 20)
    s.add_request(a)
    s.add_request(b)
    first = s.schedule()
    assert first.new_tokens.tolist() == [32] and b.status == RequestStatus.WAITING
    s.update_from_output(first)
    second = s.schedule()
    assert second.new_tokens.tolist() == [8, 24] and s.num_free_blocks == 0
    s.update_from_output(second)
    third = s.schedule()
    assert third.num_preempted == 1 and third.new_tokens.tolist() == [1]  # only A's decode
    assert b.status == RequestStatus.PREEMPTED and list(s.waiting) == [b]
    assert s.num_running == 1 and s.num_free_blocks == 2
    s.update_from_output(third)
    fourth = s.schedule()  # the next step admits B again, from scratch (recompute)
    assert (
        fourth.num_preempted == 0
        and fourth.new_tokens.tolist() == [1, 31]
        and fourth.context.tolist() == [41, 0]
    )


def test_mtp_drafts_cut_by_the_budget_are_not_credited():
    s = sched(max_num_batched_tokens=4, num_spec_tokens=2, accept=lambda m: np.full(m, 2))
    reqs = [Request(i, 1, 1, 30) for i in range(2)]
    for r in reqs:
        s.add_request(r)
    for _ in range(60):
        if not s.has_work():
            break
        b = s.schedule()
        tokens = s.update_from_output(b).num_tokens
        scheduled = dict(zip(range(len(b.new_tokens)), b.new_tokens.tolist(), strict=True))
        assert all(t <= 3 for t in tokens.tolist()) and sum(scheduled.values()) <= 4
        r, n = s.running, s.running.n
        sampled = r.num_output_tokens[:n] + r.num_output_placeholders[:n]
        assert np.all(r.num_computed_tokens[:n] <= r.num_prompt_tokens[:n] + sampled)
    assert all(r.status == RequestStatus.FINISHED and r.num_output_tokens == 30 for r in reqs)


def test_async_preemption_keeps_the_in_flight_token():
    s = sched(num_blocks=4, block_size=16)
    first, second = Request(0, 31, 31, 40), Request(1, 16, 16, 2)  # 2 + 1 blocks after prefill
    s.add_request(first)
    s.add_request(second)
    in_flight = s.schedule()  # both prefill; second samples its first token
    s.update_from_output(in_flight)
    in_flight = s.schedule()  # decode step N (in flight): second takes the last block, samples its last token
    nxt = (
        s.schedule()
    )  # step N+1, scheduled before N completes (async): first needs a block, second is preempted
    assert nxt.num_preempted and second.status == RequestStatus.PREEMPTED
    out = s.update_from_output(in_flight)
    assert 1 in out.request_ids.tolist()  # the victim's in-flight token still reaches the client
    assert second in out.finished and second.num_output_tokens == 2 and second not in s.waiting


def test_async_mtp_schedules_no_empty_steps_when_drafts_are_rejected():
    """vLLM skips a request only when its in-flight steps finish it even if every draft is rejected."""
    s = sched(num_spec_tokens=2)  # default acceptance: every draft rejected
    req = Request(0, 8, 8, 4)
    s.add_request(req)
    in_flight = s.schedule()  # prefill; samples token 1
    steps = 1
    while req.status != RequestStatus.FINISHED:
        nxt = s.schedule()  # async: scheduled before the previous step completes
        s.update_from_output(in_flight)
        in_flight = nxt
        steps += 1
        assert steps < 20
        if req.status != RequestStatus.FINISHED:
            assert len(nxt) == 1  # every step after the prefill carries the request (verify of 1 + 2 drafts)
    # 4 tokens, one per step when all drafts are rejected: prefill + 3 verify steps, then the result arrives
    assert req.num_output_tokens == 4 and steps <= 5


def test_mtp_drafts_stop_at_max_model_len():
    s = sched(num_spec_tokens=3, max_model_len=100)
    s.add_request(Request(0, 90, 90, 10))
    s.update_from_output(s.schedule())
    for _ in range(20):
        b = s.schedule()
        if not len(b):
            break
        assert int((b.context + b.new_tokens).max()) <= 99  # positions stay below max_model_len, as in vLLM
        s.update_from_output(b)


def test_decode_blocks_grow_at_block_boundaries():
    s = sched(block_size=16)
    s.add_request(Request(0, 16, 16, 3))
    s.update_from_output(s.schedule())
    assert s.num_free_blocks == 10_000 - 1
    s.update_from_output(s.schedule())  # computes token 17: a second block
    assert s.num_free_blocks == 10_000 - 2
