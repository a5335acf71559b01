"""A TRL run recorded by PromptSuccessRecorder is explained with the scheme it was trained with (issue 22)."""

import json

import numpy as np
import pytest

pytest.importorskip("trl")

from rlvrlens.cli import main  # noqa: E402
from rlvrlens.core.intervals import wilson_interval  # noqa: E402
from rlvrlens.explain import explain_run  # noqa: E402
from rlvrlens.objectives import design  # noqa: E402
from rlvrlens.training.trl_adapter import PromptSuccessRecorder, WeightSchemeGRPOTrainer  # noqa: E402


def test_a_trl_run_knows_its_scheme(tmp_path, tokenizer, make_model, prompts, grpo_config, reward_log, capsys):
    """The recorder writes scheme.json (the designed log-odds coefficients) and trl_config.json (beta,
    loss_type, schedule, ...); explain --run needs no flag and uses that scheme, not TRL's GRPO, with
    TRL's KL read as k2 per token (approximated, named so), dr_grpo as seq-sum-constant (modelled) and the
    linear schedule named; p_ref is the pooled mean of the first window's rewards the reward function
    returned. Without scheme.json the run is refused in one line, not explained as GRPO."""
    model_dir = tmp_path / "model"  # beta > 0: TRL loads the reference model from a folder
    make_model().save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    scheme = design("log(t/(1-t))", 4).scheme
    out = tmp_path / "run"
    config = grpo_config(max_steps=3, beta=0.5, loss_type="dr_grpo", lr_scheduler_type="linear")
    WeightSchemeGRPOTrainer(model=str(model_dir), reward_funcs=reward_log, args=config, train_dataset=prompts,
                            processing_class=tokenizer, scheme=scheme,
                            callbacks=[PromptSuccessRecorder(out / "groups.jsonl")]).train()
    recorded = json.loads((out / "scheme.json").read_text())
    assert recorded["name"] == scheme.name and recorded["a"] == scheme.a.tolist() and recorded["b"] == scheme.b.tolist()
    args = json.loads((out / "trl_config.json").read_text())
    assert (args["beta"], args["loss_type"], args["num_generations"], args["max_steps"], args["num_processes"]) == (
        0.5, "dr_grpo", 4, 3, 1)

    rep = explain_run(out)
    assert rep.kind == "trl" and rep.scheme.name == scheme.name and np.array_equal(rep.scheme.b, scheme.b)
    assert rep.scheme_source.startswith("scheme.json") and (rep.beta, rep.kl_estimator) == (0.5, "k2")
    parts = {p.name: p for p in rep.parts}
    assert parts["KL"].stationary == "approximated" and "k2 per token" in parts["KL"].setting
    assert parts["loss aggregation"].setting == "seq-sum-constant" and parts["loss aggregation"].stationary == "modelled"
    assert parts["schedule"].setting.startswith("linear, 3 steps")
    # p_ref: each prompt's rewards over the first window (3 steps, at most 8 windows: step 0 alone)
    first = {}
    for ids, rewards in reward_log.calls[:1]:
        for g in range(0, len(ids), 4):
            first.setdefault(ids[g], []).extend(rewards[g:g + 4])
    for pid, rewards in first.items():
        i = rep.prompt_ids.index(pid)
        lo, hi = wilson_interval(sum(rewards), len(rewards))
        assert rep.p_ref[i] == pytest.approx(np.mean(rewards)) and rep.p_ref_low[i] == pytest.approx(float(lo))
    capsys.readouterr()  # TRL's own log lines
    assert main(["explain", "--run", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scheme"] == scheme.name

    (out / "scheme.json").unlink()
    assert main(["explain", "--run", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "records no scheme" in err
    assert explain_run(out, scheme="rloo").scheme.name == "rloo"  # named by the user, M from the groups
