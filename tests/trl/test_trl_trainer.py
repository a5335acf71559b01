"""The adapter inside TRL's GRPOTrainer on a tiny CPU model: advantages, end-to-end run, records."""

import json

import numpy as np
import pytest

pytest.importorskip("trl")

import torch  # noqa: E402

from rlvrlens.objectives import grpo, log_odds, raft, rloo  # noqa: E402
from rlvrlens.training.trl_adapter import PromptSuccessRecorder, WeightSchemeGRPOTrainer  # noqa: E402


class LossInputsSpy(WeightSchemeGRPOTrainer):
    """Keeps the advantages that reach TRL's loss, per call of ``_compute_loss``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_advantages = []

    def _compute_loss(self, model, inputs):
        self.loss_advantages.append(inputs["advantages"].detach().cpu().numpy().copy())
        return super()._compute_loss(model, inputs)


def _train(cls, make_model, tokenizer, prompts, config, reward, **kwargs):
    trainer = cls(model=make_model(), reward_funcs=reward, args=config, train_dataset=prompts,
                  processing_class=tokenizer, **kwargs)
    trainer.train()
    return trainer


@pytest.mark.parametrize("make_scheme", [log_odds, rloo, raft])
def test_loss_sees_the_scheme_weights_of_the_sampled_groups(make_scheme, make_model, tokenizer, prompts,
                                                            grpo_config, reward_log):
    M = 4
    trainer = _train(LossInputsSpy, make_model, tokenizer, prompts, grpo_config(max_steps=2), reward_log,
                     scheme=make_scheme(M))
    assert len(reward_log.calls) == len(trainer.loss_advantages) == 2
    R_all = np.concatenate([np.array(r) for _, r in reward_log.calls])
    assert 0 < R_all.mean() < 1  # mixed groups, so the check below can fail
    for (_, rewards), seen in zip(reward_log.calls, trainer.loss_advantages):
        R = np.array(rewards).reshape(-1, M)
        right = R.sum(axis=1, keepdims=True)
        others = right - R
        if make_scheme is log_odds:  # M R/#right - M (1-R)/#wrong
            with np.errstate(divide="ignore", invalid="ignore"):
                Z = np.where(R == 1, M / right, -M / (M - right))
        elif make_scheme is rloo:  # R_i - mean of the others
            Z = R - others / (M - 1)
        else:  # RAFT: M R_i / #right, 0 when none is right
            Z = np.where(R == 1, M / np.maximum(right, 1), 0.0)
        # TRL shuffles the generation batch before the loss: compare as multisets
        np.testing.assert_allclose(np.sort(seen), np.sort(Z.ravel()), rtol=1e-6)


def test_grpo_scheme_reproduces_plain_trl(make_model, tokenizer, prompts, grpo_config, reward_log):
    from trl import GRPOTrainer

    plain = _train(GRPOTrainer, make_model, tokenizer, prompts, grpo_config(), reward_log)
    adapted = _train(WeightSchemeGRPOTrainer, make_model, tokenizer, prompts, grpo_config(), reward_log,
                     scheme=grpo(4, eps=1e-4))  # TRL: (R - mean) / (sample std + 1e-4)
    losses = [[h["loss"] for h in t.state.log_history if "loss" in h] for t in (plain, adapted)]
    assert len(losses[0]) == 2
    np.testing.assert_allclose(np.array(losses[1], float), np.array(losses[0], float), rtol=1e-4, atol=1e-6)
    a, b = (list(t._logs["advantages"]) for t in (plain, adapted))
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_training_runs_and_moves_the_model(make_model, tokenizer, prompts, grpo_config, reward_log):
    before = make_model()
    trainer = _train(WeightSchemeGRPOTrainer, make_model, tokenizer, prompts, grpo_config(max_steps=3),
                     reward_log, scheme=log_odds(4))
    assert trainer.state.global_step == 3
    history = [h for h in trainer.state.log_history if "loss" in h]
    assert len(history) == 3 and all(np.isfinite(float(h["loss"])) for h in history)
    moved = [not torch.equal(p, q) for p, q in zip(before.parameters(), trainer.model.parameters())]
    assert any(moved)


def test_recorder_writes_every_group_of_every_step(make_model, tokenizer, prompts, grpo_config, reward_log,
                                                   tmp_path):
    path = tmp_path / "logs" / "prompts.jsonl"
    config = grpo_config(max_steps=3, eval_strategy="steps", eval_steps=2, per_device_eval_batch_size=8)
    eval_set = prompts.select(range(4)).map(lambda row: {"prompt_id": "eval-" + row["prompt_id"]})
    trainer = WeightSchemeGRPOTrainer(model=make_model(), reward_funcs=reward_log, args=config,
                                      train_dataset=prompts, eval_dataset=eval_set, processing_class=tokenizer,
                                      scheme=rloo(4),
                                      callbacks=[PromptSuccessRecorder(path, success_path=tmp_path / "success.jsonl")])
    trainer.train()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for r in records:
        assert r["n"] == 4 and r["source"] == "trl" and r["p_hat"] == pytest.approx(np.mean(r["rewards"]))

    def groups(calls):
        return [(ids[g], rewards[g:g + 4]) for ids, rewards in calls for g in range(0, len(ids), 4)]

    # every group the reward function scored is recorded once, in order, with its rewards
    train_calls = [c for c in reward_log.calls if not c[0][0].startswith("eval-")]
    eval_calls = [c for c in reward_log.calls if c[0][0].startswith("eval-")]
    train = [r for r in records if r["split"] == "train"]
    evals = [r for r in records if r["split"] == "eval"]
    assert len(train_calls) == 3
    assert [(r["prompt_id"], r["rewards"]) for r in train] == groups(train_calls)
    assert [(r["prompt_id"], r["rewards"]) for r in evals] == groups(eval_calls)
    # 8 completions = 2 groups per step, sampled by the policy after 0, 1, 2 updates
    assert [r["step"] for r in train] == [0, 0, 1, 1, 2, 2]
    # evaluation after steps 2 and 3 (TRL also evaluates at the last step): every eval prompt once each time
    assert {r["step"] for r in evals} == {2, 3}
    for step in (2, 3):
        assert sorted(r["prompt_id"] for r in evals if r["step"] == step) == sorted(eval_set["prompt_id"])
    # one summary line per evaluation: p = fraction of the K = 4 eval completions of each prompt that are right
    summaries = [json.loads(line) for line in (tmp_path / "success.jsonl").read_text().splitlines()]
    assert [s["step"] for s in summaries] == [2, 3]
    for summary, call_pair in zip(summaries, (eval_calls[:2], eval_calls[2:])):
        assert summary["method"] == "estimate(K=4)" and summary["source"] == "trl"
        expected = {i: r for i, r in groups(call_pair)}
        assert sorted(summary["prompt_ids"]) == sorted(eval_set["prompt_id"])
        assert summary["p"] == [pytest.approx(np.mean(expected[i])) for i in summary["prompt_ids"]]
        # Wilson intervals, as our trainer's success.jsonl has them, bracket each estimate
        assert all(lo <= p <= hi for lo, p, hi in zip(summary["low"], summary["p"], summary["high"]))
        assert all(hi - lo > 0 for lo, hi in zip(summary["low"], summary["high"]))


def test_group_size_must_match_the_scheme(make_model, tokenizer, prompts, grpo_config, reward_log):
    with pytest.raises(ValueError, match="num_generations must equal the scheme's group size M = 8"):
        WeightSchemeGRPOTrainer(model=make_model(), reward_funcs=reward_log, args=grpo_config(),
                                train_dataset=prompts, processing_class=tokenizer, scheme=rloo(8))


def test_normalize_then_sum_is_refused(make_model, tokenizer, prompts, grpo_config, reward_log):
    config = grpo_config(multi_objective_aggregation="normalize_then_sum")
    with pytest.raises(ValueError, match="multi_objective_aggregation"):
        WeightSchemeGRPOTrainer(model=make_model(), reward_funcs=reward_log, args=config,
                                train_dataset=prompts, processing_class=tokenizer, scheme=rloo(4))


def test_non_binary_rewards_are_refused_for_a_table_only_scheme(make_model, tokenizer, prompts, grpo_config):
    def half(completions, **kwargs):
        return [0.5] * len(completions)

    trainer = WeightSchemeGRPOTrainer(model=make_model(), reward_funcs=half, args=grpo_config(max_steps=1),
                                      train_dataset=prompts, processing_class=tokenizer, scheme=log_odds(4))
    with pytest.raises(ValueError, match="must be 0/1"):
        trainer.train()


def test_scheme_must_be_a_weight_scheme(make_model, tokenizer, prompts, grpo_config, reward_log):
    with pytest.raises(TypeError, match="WeightScheme"):
        WeightSchemeGRPOTrainer(model=make_model(), reward_funcs=reward_log, args=grpo_config(),
                                train_dataset=prompts, processing_class=tokenizer, scheme="grpo")


@pytest.mark.slow
def test_two_processes_slice_gathered_weights(tmp_path):
    """Under torchrun (2 CPU processes, gloo), each rank trains on its slice of the gathered weights."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(here.parents[1] / "src"), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(here / "distributed_run.py"), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [[json.loads(x) for x in (tmp_path / f"rank{k}.jsonl").read_text().splitlines()] for k in (0, 1)]
    groups = [json.loads(x) for x in (tmp_path / "groups.jsonl").read_text().splitlines()]
    assert len(ranks[0]) == len(ranks[1]) == 2 and len(groups) == 2 * 3
    for step, (r0, r1) in enumerate(zip(*ranks)):
        assert r0["gathered"] == r1["gathered"]
        R = np.array(r0["gathered"]).reshape(-1, 4)
        right = R.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            Z = np.where(R == 1, 4 / right, -4 / (4 - right)).ravel()  # log-odds, by its definition
        for k, r in enumerate((r0, r1)):
            np.testing.assert_allclose(np.sort(r["advantages"]), np.sort(Z[6 * k:6 * (k + 1)]), rtol=1e-6)
        ids = r0["ids"] + r1["ids"]
        assert [(g["prompt_id"], g["rewards"]) for g in groups if g["step"] == step] == [
            (ids[i], R.ravel()[i:i + 4].tolist()) for i in range(0, 12, 4)]


def test_untested_trl_version_warns(monkeypatch):
    from rlvrlens.training import trl_adapter

    monkeypatch.setattr(trl_adapter, "TRL_VERSION", "0.9.0")
    with pytest.warns(UserWarning, match="tested with trl>="):
        trl_adapter._warn_untested_version()
    monkeypatch.setattr(trl_adapter, "TRL_VERSION", "1.16.0")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trl_adapter._warn_untested_version()
