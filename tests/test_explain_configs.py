"""``explain --trl-config / --verl-config / --run`` (issue 15 §3), on configs written the way each
framework writes them: TRL's own ``GRPOConfig(...).to_json_string()`` and a ``trl grpo --config``
YAML; verl's trainer YAML transcribed from ``verl/trainer/config/ppo_trainer.yaml`` (volcengine/verl,
commit 008db456bf612da5543c9bb6e26fe654029ad5b8) with the GRPO overrides of its docs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from rlvrlens.cli import main
from rlvrlens.dynamics import Outcome, attractor, flow_target, success_map
from rlvrlens.explain import explain, from_trl_config, from_verl_config, read_config_file
from rlvrlens.objectives import design, dh, dynamic_sampling, get_preset, grpo, reinforce
from rlvrlens.explain import estimator_point, explain_run

#: The defaults of verl's ppo_trainer.yaml that the mapping reads (commit 008db45), nested as verl writes them.
VERL_DEFAULTS = {
    "data": {"train_batch_size": 1024, "max_prompt_length": 512, "max_response_length": 512},
    "actor_rollout_ref": {
        "actor": {"ppo_mini_batch_size": 256, "clip_ratio": 0.2, "loss_agg_mode": "token-mean", "entropy_coeff": 0,
                  "use_kl_loss": False, "kl_loss_coef": 0.001, "kl_loss_type": "low_var_kl", "ppo_epochs": 1,
                  "optim": {"lr": 1e-6}},
        "rollout": {"name": "vllm", "temperature": 1.0, "n": 1},
    },
    "algorithm": {"gamma": 1.0, "lam": 1.0, "adv_estimator": "gae", "norm_adv_by_std_in_grpo": True,
                  "use_kl_in_reward": False, "kl_penalty": "kl",
                  "kl_ctrl": {"type": "fixed", "kl_coef": 0.001, "horizon": 10000, "target_kl": 0.1}},
    "trainer": {"total_epochs": 30, "n_gpus_per_node": 8},
}


def verl_config(**overrides) -> dict:
    """VERL_DEFAULTS with dotted overrides, e.g. ``{"algorithm.adv_estimator": "grpo"}``."""
    cfg = json.loads(json.dumps(VERL_DEFAULTS))
    for dotted, value in overrides.items():
        node = cfg
        *path, last = dotted.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return cfg


GRPO_VERL = {"algorithm.adv_estimator": "grpo", "actor_rollout_ref.rollout.n": 5,
             "actor_rollout_ref.actor.use_kl_loss": True, "actor_rollout_ref.actor.kl_loss_coef": 0.001}


@pytest.fixture(scope="module")
def trl_json(tmp_path_factory):
    trl = pytest.importorskip("trl")
    cfg = trl.GRPOConfig(output_dir=str(tmp_path_factory.mktemp("o")), use_cpu=True, bf16=False,
                         num_generations=16, per_device_train_batch_size=16, beta=0.04, scale_rewards="batch",
                         loss_type="dr_grpo",
                         report_to=[])
    path = tmp_path_factory.mktemp("trl") / "grpo_config.json"
    path.write_text(cfg.to_json_string())
    return path


def test_trl_json_written_by_trl_is_read(trl_json):
    raw = read_config_file(trl_json, "--trl-config")
    c = from_trl_config(raw)
    assert (c.preset, c.M, c.params, c.beta, c.kl_estimator, c.kl_treatment) == (
        "trl-grpo", 16, {"scale_rewards": "batch"}, 0.04, "k3", "pi||ref")
    assert any("loss_type = 'dr_grpo'" in line for line in c.neutral)
    others = next(line for line in c.neutral if "other field(s)" in line)  # named, not hidden
    assert int(others.split()[0]) == len(raw) - 20  # TRL writes all 20 fields the mapping reads


def test_trl_yaml_as_users_keep_it(tmp_path):
    path = tmp_path / "grpo.yaml"
    path.write_text("model_name_or_path: Qwen/Qwen2.5-0.5B\nnum_generations: 8\nbeta: 0.0\nscale_rewards: false\n"
                    "num_iterations: 2\nentropy_coef: 0.01\nlearning_rate: 1.0e-6\n")
    c = from_trl_config(read_config_file(path, "--trl-config"))
    assert c.params == {"scale_rewards": "none"} and c.beta is None and c.kl_estimator is None
    assert any("num_iterations = 2" in line for line in c.not_covered)
    assert any("entropy_coef" in line for line in c.not_covered)


def test_trl_without_bias_correction_is_reverse_kl():
    c = from_trl_config({"num_generations": 4, "beta": 0.1, "use_bias_correction_kl": False})
    assert c.kl_treatment == "ref||pi"


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo", "bnpo", "sapo", "luspo", "vespo"])
def test_trl_loss_types_are_the_plain_step_on_policy(loss_type):
    """TRL 1.16's loss types on-policy (ratio 1): neutral, with the reason; the same beta and scheme."""
    c = from_trl_config({"num_generations": 4, "loss_type": loss_type, "beta": 0.1})
    assert c.beta == 0.1 and not c.not_covered
    assert any(line.startswith(f"loss_type = {loss_type!r}: ") for line in c.neutral)


def test_trl_cispo_scales_the_policy_term_by_its_clamp():
    """cispo multiplies the policy term (not the KL term) by clamp(1, max=epsilon_high).detach(): the
    stationary condition of policy * c + beta * KL is that of beta / c (epsilon_high defaults to
    epsilon, 0.2 by default); with epsilon_high >= 1 nothing changes."""
    assert from_trl_config({"loss_type": "cispo", "beta": 0.1}).beta == pytest.approx(0.1 / 0.2)
    assert from_trl_config({"loss_type": "cispo", "beta": 0.1, "epsilon": 0.5}).beta == pytest.approx(0.2)
    c = from_trl_config({"loss_type": "cispo", "beta": 0.1, "epsilon_high": 5.0})
    assert c.beta == 0.1 and any("cispo" in line and "nothing changes" in line for line in c.neutral)
    assert from_trl_config({"loss_type": "cispo"}).beta is None


@pytest.mark.parametrize("cfg,listed", [
    ({"steps_per_generation": 4, "gradient_accumulation_steps": 2}, "steps_per_generation = 4"),
    ({"multi_objective_aggregation": "normalize_then_sum"}, "normalize_then_sum"),
])
def test_trl_off_policy_steps_and_gdpo_aggregation_are_not_covered(cfg, listed):
    assert any(listed in line for line in from_trl_config(cfg).not_covered)
    assert not from_trl_config({"steps_per_generation": 2, "gradient_accumulation_steps": 2}).not_covered


def test_trl_sequence_level_ratio_is_neutral_and_names_the_kl_caveat():
    c = from_trl_config({"importance_sampling_level": "sequence", "beta": 0.1})
    line = next(x for x in c.neutral if x.startswith("importance_sampling_level = 'sequence'"))
    assert "one-token answers only" in line and c.kl_treatment == "pi||ref"
    with pytest.raises(ValueError, match="importance_sampling_level must be 'token' or 'sequence', got 'tok'"):
        from_trl_config({"importance_sampling_level": "tok"})


def test_trl_report_matches_the_preset_and_lists_options():
    c = from_trl_config({"num_generations": 8, "beta": 0.5, "scale_rewards": "group", "num_iterations": 4})
    r = explain(c.preset, c.M, beta=c.beta, params=c.params, framework_config=c, p_ref=[0.2, 0.6])
    direct = explain("trl-grpo", 8, beta=0.5, p_ref=[0.2, 0.6])
    np.testing.assert_array_equal(r.weight, direct.weight)
    np.testing.assert_array_equal(r.kl.p_star, direct.kl.p_star)
    assert any(n.startswith("NOT COVERED") and "num_iterations = 4" in n for n in r.notes)


def test_verl_defaults_refuse_gae():
    with pytest.raises(ValueError, match="critic"):
        from_verl_config(verl_config())


def test_verl_grpo_with_kl_loss(tmp_path):
    path = tmp_path / "ppo_trainer.yaml"
    path.write_text(yaml.safe_dump(verl_config(**GRPO_VERL)))
    c = from_verl_config(read_config_file(path, "--verl-config"))
    assert (c.preset, c.M, c.params, c.beta, c.kl_estimator, c.kl_treatment, c.dynamic_sampling) == (
        "verl-grpo", 5, {"norm_adv_by_std_in_grpo": True}, 0.001, "k3", "ref||pi", False)


@pytest.mark.parametrize("kind,estimator,treatment", [("kl", "k1", "none"), ("mse", "k2", "pi||ref"),
                                                      ("low_var_kl", "k3", "ref||pi")])
def test_verl_kl_loss_types(kind, estimator, treatment):
    c = from_verl_config(verl_config(**GRPO_VERL, **{"actor_rollout_ref.actor.kl_loss_type": kind}))
    assert (c.kl_estimator, c.kl_treatment) == (estimator, treatment)


def test_explain_applies_dynamic_sampling_from_a_config():
    c = from_verl_config(verl_config(**GRPO_VERL, **{"algorithm.filter_groups": {"enable": True}}))
    r = explain(c.preset, c.M, params=c.params, dynamic_sampling=c.dynamic_sampling, framework_config=c,
                p_ref=[0.1, 0.5])
    expected = dynamic_sampling(get_preset("verl-grpo", 5), [0.1, 0.5])
    np.testing.assert_array_equal(r.scheme.c, expected.c)
    assert any("dynamic sampling" in n for n in r.notes)


def test_verl_kl_in_reward_and_dynamic_sampling():
    c = from_verl_config(verl_config(**{"algorithm.adv_estimator": "rloo", "actor_rollout_ref.rollout.n": 8,
                                        "algorithm.use_kl_in_reward": True, "algorithm.kl_ctrl.kl_coef": 0.02,
                                        "algorithm.filter_groups": {"enable": True, "metric": "acc"}}))
    assert (c.preset, c.beta, c.kl_treatment, c.dynamic_sampling) == ("verl-rloo", 0.02, "reward", True)


def test_verl_options_outside_the_theory_are_listed():
    c = from_verl_config(verl_config(**GRPO_VERL, **{"actor_rollout_ref.actor.ppo_epochs": 2,
                                                     "actor_rollout_ref.actor.entropy_coeff": 0.001}))
    assert any("ppo_epochs" in x for x in c.not_covered) and any("entropy_coeff" in x for x in c.not_covered)
    others = next(x for x in c.neutral if "other field(s)" in x)  # read, counted and named as irrelevant
    assert others.startswith("14 other field(s)") and "data.max_prompt_length" in others


def test_dynamic_sampling_against_brute_force():
    """Brute force: enumerate all 2^M reward vectors, drop the all-equal ones, and average the step
    E[(1/M) sum Z_i (R_i - p)/(p(1-p))] per kept group, weighted by P(kept | p) / E[P(kept)] over the
    batch's spread: it equals h'_M of rlvrlens.objectives.dynamic_sampling's scheme, which explain
    applies for a config with dynamic sampling (independent of h, dh's sums)."""
    import itertools

    M, spread = 4, np.array([0.1, 0.3, 0.8])
    for base in (grpo(M), reinforce(M)):
        scheme = dynamic_sampling(base, spread)
        q = 1 - spread**M - (1 - spread) ** M
        for p in (0.2, 0.5, 0.7):
            step = 0.0
            for R in itertools.product((0, 1), repeat=M):
                R = np.array(R, dtype=float)
                if R.min() == R.max():
                    continue
                prob = p ** R.sum() * (1 - p) ** (M - R.sum())
                step += prob * float(np.mean(base.weights(R) * (R - p) / (p * (1 - p))))
            assert float(dh(scheme, p)) == pytest.approx(step / q.mean(), rel=1e-12)


# -- runs -----------------------------------------------------------------------------------------
def _write_run(path, config, history, log=None, key="success.jsonl", extra=None):
    path.mkdir(parents=True, exist_ok=True)
    if config is not None:  # a config.json as the trainer writes it: every field
        from rlvrlens.training.config import TrainConfig

        (path / "config.json").write_text(json.dumps(TrainConfig(**config).to_dict()))
    with (path / key).open("w") as fh:
        for step, p in enumerate(history):
            fh.write(json.dumps({"step": 10 * step, "method": "exact", "p": list(p), **(extra or {})}) + "\n")
    if log is not None:
        (path / "log.jsonl").write_text("".join(json.dumps({"step": i, "frac_reward_zero_std": v}) + "\n"
                                                for i, v in enumerate(log)))


def test_run_report_predicts_with_the_run_config(tmp_path):
    cfg = {"scheme": "grpo", "num_generations": 8, "beta": 0.5, "kl_estimator": "exact", "scheme_params": {}}
    history = [[0.2, 0.0, 0.6], [0.3, 0.0, 0.7], [0.35, 0.0, 0.8]]
    _write_run(tmp_path / "run", cfg, history, log=[0.5, 0.4, 0.3])
    rep = explain_run(tmp_path / "run")
    scheme = get_preset  # noqa: F841 - the run's own scheme is the catalogue's grpo
    expected = attractor(success_map(grpo(8), 0.5, 0.2))
    assert rep.outcome[0] == expected.outcome and rep.predicted[0] == pytest.approx(float(expected.p[0]))
    assert list(rep.no_signal) == [False, True, False]  # p = 0 exactly: all-wrong groups
    assert rep.zero_std_measured == pytest.approx(0.4)
    p = np.array(history)
    assert rep.zero_std_predicted == pytest.approx(float(np.mean(p**8 + (1 - p) ** 8)))


def test_run_with_k3_gets_the_reverse_kl_point_not_the_forward_one(tmp_path):
    """k3 as a loss term is the reverse KL: p* solves p(1-p) h'_M(p) = beta (p - p_ref), solved here
    independently with brentq on h'_M; the forward fixed point differs by > 0.05 at these p_ref."""
    from scipy.optimize import brentq

    from rlvrlens.objectives import dh, get_scheme

    cfg = {"scheme": "grpo", "num_generations": 8, "beta": 0.5, "kl_estimator": "k3"}
    _write_run(tmp_path / "run", cfg, [[0.2, 0.5]])
    rep = explain_run(tmp_path / "run")
    s = get_scheme("grpo", 8)
    for p_ref, got in zip((0.2, 0.5), rep.predicted):
        want = brentq(lambda p: p * (1 - p) * float(dh(s, p)) - 0.5 * (p - p_ref), p_ref, 1 - 1e-12)
        forward = estimator_point(s, 0.5, p_ref, "k2").p
        assert abs(got - want) < 1e-8 and abs(forward - want) > 0.05
    assert any("KL(pi_ref||pi)" in n for n in rep.notes)
    kl_part = {p.name: p for p in rep.parts}["KL"]  # per-token k3: approximated, exact for one token only
    assert kl_part.stationary == "approximated" and "one-token answers only" in kl_part.how
    _write_run(tmp_path / "seq", {**cfg, "kl_level": "sequence"}, [[0.2, 0.5]])
    assert {p.name: p for p in explain_run(tmp_path / "seq").parts}["KL"].stationary == "modelled"


def test_trl_recorder_file_with_a_trl_config(tmp_path, capsys):
    """The PromptSuccessRecorder summary format (prompt_ids, low/high) and a TRL YAML for the scheme."""
    run = tmp_path / "trl_run"
    extra = {"prompt_ids": ["a", "b"], "low": [0.1, 0.4], "high": [0.5, 0.9], "source": "trl"}
    _write_run(run, None, [[0.25, 0.6], [0.3, 0.7]], key="eval_success.jsonl", extra=extra)
    (tmp_path / "grpo.yaml").write_text("num_generations: 8\nbeta: 0.5\n")
    code = main(["explain", "--run", str(run), "--trl-config", str(tmp_path / "grpo.yaml"), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "trl-grpo M=8" in out and "0.30 [0.10, 0.50]" in out  # half-width 0.2: 2 decimals
    assert (tmp_path / "explain_run.png").exists()
    rep = explain_run(run, scheme=get_preset("trl-grpo", 8), beta=0.5, kl_estimator="exact")
    assert rep.prompt_ids == ("a", "b")
    flow = flow_target(success_map(get_preset("trl-grpo", 8), 0.5, 0.25))  # a gradient run stops here
    assert rep.outcome[0] == Outcome.FIXED_POINT and abs(rep.predicted[0] - flow.p) < 1e-12


def test_cli_trl_and_verl_configs_print(tmp_path, capsys):
    (tmp_path / "t.yaml").write_text("num_generations: 8\nbeta: 0.5\nscale_rewards: none\n")
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(verl_config(**GRPO_VERL)))
    assert main(["explain", "--trl-config", str(tmp_path / "t.yaml"), "--p-ref-file", _p_file(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "scale_rewards=none" in out and "honoured: beta = 0.5" in out
    assert main(["explain", "--verl-config", str(tmp_path / "v.yaml"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["preset"] == "verl-grpo" and data["M"] == 5 and data["kl"]["beta"] == 0.001


def _p_file(tmp_path):
    (tmp_path / "p.txt").write_text("0.1 0.5 0.9\n")
    return str(tmp_path / "p.txt")


# -- section 5: where a gradient trainer with the config's KL estimator stops ---------------------------
def _verl_yaml(tmp_path, **kl):
    path = tmp_path / "verl.yaml"
    path.write_text(yaml.safe_dump(verl_config(**{**GRPO_VERL, "actor_rollout_ref.rollout.n": 8,
                                                  "actor_rollout_ref.actor.kl_loss_coef": 0.5, **kl})))
    return str(path)


def test_verl_low_var_kl_gets_the_reverse_kl_stop_point(tmp_path, capsys):
    """verl's low_var_kl is k3 in the loss: section 5's p* solves p(1-p) h'_M(p) = beta (p - p_ref),
    solved here independently by brentq on h'_M (rlvrlens.objectives.dh) to 1e-12; it differs from
    section 4's forward-map fixed point by > 0.01 at every p_ref of the table (a point 1e-8 off, or
    the forward value, fails)."""
    from scipy.optimize import brentq

    path = _verl_yaml(tmp_path, **{"actor_rollout_ref.actor.kl_loss_type": "low_var_kl"})
    assert main(["explain", "--verl-config", path, "--p-ref-file", _p_file(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    flow, kl = data["flow"], data["kl"]
    assert (flow["kl_estimator"], flow["kl"], flow["beta"]) == ("k3", "ref||pi", 0.5)
    assert flow["p_ref"] == kl["p_ref"] == [0.1, 0.5, 0.9]
    s = get_preset("verl-grpo", 8)
    for p_ref, got, one_minus, forward in zip(flow["p_ref"], flow["p_star"], flow["one_minus_p_star"],
                                              kl["p_star"]):
        want = brentq(lambda p: p * (1 - p) * float(dh(s, p)) - 0.5 * (p - p_ref), p_ref, 1 - 1e-12, xtol=1e-14)
        assert abs(got - want) < 1e-8 and abs(one_minus - (1 - want)) < 1e-8
        assert abs(forward - want) > 0.01  # 0.12, 0.09, 0.017 here
    assert main(["explain", "--verl-config", path, "--p-ref-file", _p_file(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "5. Where a small-step gradient trainer with this KL estimator stops: k3" in out
    assert "KL(pi_ref||pi) (the forward KL): p* solves p(1-p) h'_M(p) = beta (p - p_ref)" in out
    assert f"{flow['p_star'][0]:.6f}" in out.split("5. Where")[1]


def test_verl_k1_in_the_loss_goes_to_one(tmp_path, capsys):
    """kl_loss_type: kl is k1, whose expected gradient is 0: nothing pulls p back, p* = 1 (section 4's
    forward map would give p* < 1 at p_ref = 0.1)."""
    path = _verl_yaml(tmp_path, **{"actor_rollout_ref.actor.kl_loss_type": "kl"})
    assert main(["explain", "--verl-config", path, "--p-ref-file", _p_file(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["flow"]["kl_estimator"] == "k1" and data["flow"]["p_star"] == [1.0, 1.0, 1.0]
    assert data["kl"]["p_star"][0] < 0.95
    assert main(["explain", "--verl-config", path]) == 0
    assert "p -> 1 while h'_M > 0" in capsys.readouterr().out


@pytest.mark.parametrize("yaml_text,expected", [
    ("num_generations: 8\nbeta: 0.5\n", "k2"),  # k3 times the importance ratio: k2 per token, KL(pi||pi_ref)
    ("num_generations: 8\nbeta: 0.5\nuse_bias_correction_kl: false\n", "k3"),
])
def test_trl_config_stop_point_follows_the_bias_correction(tmp_path, capsys, yaml_text, expected):
    """TRL's k3 with use_bias_correction_kl has k2's gradient on each token, KL(pi||pi_ref) (the flow_target
    of Mroueh's map; named k2, never "exact": it is the sequence's only for one-token answers), without it
    KL(pi_ref||pi); the report's point is rlvrlens.explain.estimator_point's for that estimator."""
    (tmp_path / "t.yaml").write_text(yaml_text)
    assert main(["explain", "--trl-config", str(tmp_path / "t.yaml"), "--p-ref-file", _p_file(tmp_path),
                 "--json"]) == 0
    flow = json.loads(capsys.readouterr().out)["flow"]
    assert flow["kl_estimator"] == expected
    s = get_preset("trl-grpo", 8)
    assert flow["p_star"] == [estimator_point(s, 0.5, p, expected).p for p in (0.1, 0.5, 0.9)]
    if expected == "k2":
        assert flow["p_star"][0] == flow_target(success_map(s, 0.5, 0.1)).p


def test_verl_kl_in_reward_is_the_reward_estimator(tmp_path, capsys):
    """use_kl_in_reward folds the KL into the reward whatever kl_penalty is: for an affine scheme (rloo)
    logit p* = logit p_ref + 1/beta (closed form), for GRPO's std normalisation unresolved, never a guess."""
    from scipy.special import expit, logit

    for est, p_star in (("rloo", lambda p: float(expit(logit(p) + 1 / 0.5))), ("grpo", None)):
        cfg = verl_config(**{"algorithm.adv_estimator": est, "actor_rollout_ref.rollout.n": 8,
                             "algorithm.use_kl_in_reward": True, "algorithm.kl_ctrl.kl_coef": 0.5})
        (tmp_path / "r.yaml").write_text(yaml.safe_dump(cfg))
        assert main(["explain", "--verl-config", str(tmp_path / "r.yaml"), "--p-ref-file", _p_file(tmp_path),
                     "--json"]) == 0
        flow = json.loads(capsys.readouterr().out)["flow"]
        assert flow["kl_estimator"] == "reward"
        if p_star is None:
            assert flow["outcome"] == ["unresolved"] * 3 and flow["p_star"] == [None] * 3  # JSON: null, not NaN
        else:
            np.testing.assert_allclose(flow["p_star"], [p_star(p) for p in (0.1, 0.5, 0.9)], rtol=1e-9)


def test_no_kl_estimator_no_section_5(tmp_path, capsys):
    (tmp_path / "t.yaml").write_text("num_generations: 8\nbeta: 0.0\n")
    assert main(["explain", "--trl-config", str(tmp_path / "t.yaml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["flow"] is None


# -- verl 0.9.1's options (issue 25): straight-through KL names, new estimators, the rlvrlens plugin -----------------
@pytest.mark.parametrize("kind,value", [("k3+", "k3"), ("low_var_kl+", "k3"), ("k1+", "k1"), ("kl+", "k1"),
                                        ("abs+", "abs"), ("mse+", "k2"), ("k2+", "k2")])
def test_verl_straight_through_kl_is_the_k2_gradient_per_token(kind, value):
    """verl's kl_penalty(..., "X+") returns X's value with the k2 gradient (core_algos.kl_penalty,
    straight-through): in the loss it is k2, KL(pi||pi_ref), per token; in the reward only the value
    enters, so it is X's."""
    c = from_verl_config(verl_config(**GRPO_VERL, **{"actor_rollout_ref.actor.kl_loss_type": kind}))
    assert (c.kl_estimator, c.kl_treatment) == ("k2", "pi||ref")
    line = next(x for x in c.honoured if "kl_loss_type" in x)
    assert "per token the gradient of KL(pi||pi_ref)" in line and "one-token answers only" in line
    if value != "k2":
        assert f"the {value} value with the k2 gradient (straight-through)" in line
    r = from_verl_config(verl_config(**{**GRPO_VERL, "actor_rollout_ref.actor.use_kl_loss": False,
                                        "algorithm.use_kl_in_reward": True, "algorithm.kl_penalty": kind}))
    assert (r.kl_estimator, r.kl_treatment) == (value, None if value == "abs" else "reward")
    with pytest.raises(ValueError, match=r"kl_loss_type must be one of kl, k1, .* each optionally followed by '\+'"):
        from_verl_config(verl_config(**GRPO_VERL, **{"actor_rollout_ref.actor.kl_loss_type": "k4+"}))


def test_verl_k3_plus_stops_where_the_reverse_kl_does(tmp_path, capsys):
    """k3+ in the loss has the k2 gradient: section 5 is the KL(pi||pi_ref) point (estimator_point with
    "exact"), not low_var_kl's KL(pi_ref||pi) point."""
    path = _verl_yaml(tmp_path, **{"actor_rollout_ref.actor.kl_loss_type": "k3+"})
    assert main(["explain", "--verl-config", path, "--p-ref-file", _p_file(tmp_path), "--json"]) == 0
    flow = json.loads(capsys.readouterr().out)["flow"]
    s = get_preset("verl-grpo", 8)
    assert flow["kl"] == "pi||ref"
    assert flow["p_star"] == [estimator_point(s, 0.5, p, "exact").p for p in (0.1, 0.5, 0.9)]
    assert flow["p_star"][0] != pytest.approx(estimator_point(s, 0.5, 0.1, "k3").p, abs=0.01)


@pytest.mark.parametrize("estimator,preset", [("grpo_vectorized", "verl-grpo-vectorized"),
                                              ("rloo_vectorized", "verl-rloo-vectorized")])
def test_verl_vectorized_estimators(estimator, preset):
    c = from_verl_config(verl_config(**{**GRPO_VERL, "algorithm.adv_estimator": estimator,
                                        "algorithm.norm_adv_by_std_in_grpo": False}))
    assert c.preset == preset and c.params == {}
    line = next(x for x in c.neutral if x.startswith("algorithm.norm_adv_by_std_in_grpo = False"))
    assert f"not read by adv_estimator = {estimator!r}" in line
    base = get_preset("verl-grpo" if "grpo" in estimator else "verl-rloo", 5)
    np.testing.assert_array_equal(get_preset(preset, 5).c, base.c)  # the same weights for groups of 2 or more


@pytest.mark.parametrize("estimator,reason", [("gdpo", "several rewards"),
                                              ("optimal_token_baseline", "likelihood-dependent"),
                                              ("tir_optimal_token_baseline", "likelihood-dependent")])
def test_verl_estimators_outside_the_theory_say_why(estimator, reason):
    with pytest.raises(ValueError, match=rf"adv_estimator = '{estimator}' is not covered by the theory: .*{reason}"):
        from_verl_config(verl_config(**{**GRPO_VERL, "algorithm.adv_estimator": estimator}))


def test_verl_loss_modes_and_token_sum():
    c = from_verl_config(verl_config(**GRPO_VERL, **{"actor_rollout_ref.actor.loss_agg_mode": "token-sum",
                                                     "actor_rollout_ref.actor.policy_loss": {"loss_mode": "sapo"}}))
    assert any("loss_agg_mode = 'token-sum'" in x for x in c.neutral)
    assert any("loss_mode = 'sapo': on-policy" in x for x in c.neutral) and not c.not_covered
    c = from_verl_config(verl_config(**GRPO_VERL, **{"actor_rollout_ref.actor.policy_loss": {"loss_mode": "kl_cov"}}))
    assert any("loss_mode = 'kl_cov'" in x for x in c.not_covered)


PLUGIN_VERL = {**GRPO_VERL, "algorithm.adv_estimator": "rlvrlens", "actor_rollout_ref.rollout.n": 8,
               "actor_rollout_ref.actor.kl_loss_coef": 0.5,
               "algorithm.rlvrlens": {"target": "log(t/(1-t))", "record_dir": "/runs/x",
                                      "design": {"method": "minimax", "max_weight": 20, "interval": [0.05, 0.95]}}}


def test_verl_plugin_estimator_is_explained_with_its_scheme(tmp_path, capsys):
    """adv_estimator: rlvrlens is the scheme its algorithm.rlvrlens block names, built for rollout.n:
    the report is explain() of that designed scheme, with the config's KL."""
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(verl_config(**PLUGIN_VERL)))
    c = from_verl_config(read_config_file(path, "--verl-config"))
    want = design("log(t/(1-t))", 8, method="minimax", max_weight=20, interval=(0.05, 0.95)).scheme
    assert c.preset == "rlvrlens" and c.scheme == want
    assert any("record_dir" in x for x in c.neutral) and not any("rlvrlens." in x for x in c.neutral[-1:])
    assert main(["explain", "--verl-config", str(path), "--p-ref-file", _p_file(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    direct = explain(want, beta=0.5, p_ref=[0.1, 0.5, 0.9], kl_estimator="k3")
    assert (data["framework"], data["M"], data["a"], data["b"]) == ("verl", 8, want.a.tolist(), want.b.tolist())
    np.testing.assert_array_equal(data["difficulty_weight"]["weight"], direct.weight)
    assert data["flow"]["p_star"] == direct.flow.p_star.tolist()


def test_verl_plugin_config_errors_and_kl_in_the_reward(tmp_path):
    with pytest.raises(ValueError, match=r"adv_estimator = 'rlvrlens' needs an algorithm.rlvrlens block"):
        from_verl_config(verl_config(**{**GRPO_VERL, "algorithm.adv_estimator": "rlvrlens"}))
    with pytest.raises(ValueError, match=r"algorithm.rlvrlens: scheme 'pass_at_k' for groups of M = 8"):
        from_verl_config(verl_config(**{**PLUGIN_VERL, "algorithm.rlvrlens": {"scheme": "pass_at_k",
                                                                              "params": {"k": 9}}}))
    c = from_verl_config(verl_config(**{**PLUGIN_VERL, "actor_rollout_ref.actor.use_kl_loss": False,
                                        "algorithm.use_kl_in_reward": True, "algorithm.rlvrlens": {"scheme": "raft"}}))
    assert any("the plugin refuses the first batch" in x for x in c.not_covered)
    c = from_verl_config(verl_config(**{**PLUGIN_VERL, "actor_rollout_ref.actor.use_kl_loss": False,
                                        "algorithm.use_kl_in_reward": True, "algorithm.rlvrlens": {"scheme": "rloo"}}))
    assert not c.not_covered  # rloo has a formula for real rewards


def test_explain_run_with_a_verl_plugin_config(tmp_path, capsys):
    """explain --run with --verl-config: the run's scheme is the config's (here RAFT at M = 8)."""
    run = tmp_path / "run"
    _write_run(run, None, [[0.25, 0.6], [0.3, 0.7]], extra={"prompt_ids": ["a", "b"]})
    cfg = tmp_path / "v.yaml"
    cfg.write_text(yaml.safe_dump(verl_config(**{**PLUGIN_VERL, "algorithm.rlvrlens": {"scheme": "raft"}})))
    assert main(["explain", "--run", str(run), "--verl-config", str(cfg), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["scheme"], data["M"], data["beta"], data["kl_estimator"]) == ("raft", 8, 0.5, "k3")
