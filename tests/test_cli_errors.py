"""Every error a user can cause is one line naming the thing at fault, with exit status 2
(issue 11 item 5): driven in-process through ``rlvrlens.cli.main`` and through the Python API.

Every case is a plain case: the ones that waited for another branch's hardening (design targets,
run directories, ``evaluate`` on an empty directory) pass since ``obj``, ``trainer`` and ``cli`` are
merged.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from rlvrlens.cli import describe_error, main


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("inputs")
    (d / "garbage.json").write_text("{not json")
    (d / "garbage.toml").write_text("steps = = 3\n")
    (d / "list.json").write_text("[1, 2, 3]\n")
    (d / "binary.bin").write_bytes(b"\xff\xfe\x00\x81" * 8)
    (d / "p_bad.txt").write_text("0.2 0.5 abc\n")
    (d / "p_range.txt").write_text("0.2 1.5\n")
    (d / "p_empty.txt").write_text("# nothing\n")
    (d / "unknown_field.toml").write_text("no_such_field = 3\n")
    (d / "bad_value.toml").write_text("beta = -1.0\n")
    (d / "empty_run").mkdir()
    (d / "trl_bad.yaml").write_text("num_generations: [1, 2\n")
    (d / "trl_type.yaml").write_text("num_generations: eight\n")
    (d / "trl_scale.yaml").write_text("num_generations: 8\nscale_rewards: sometimes\n")
    (d / "verl_bad.yaml").write_text("algorithm:\n  adv_estimator: nonsense\nactor_rollout_ref:\n  rollout:\n    n: 8\n")
    (d / "verl_n.yaml").write_text("algorithm:\n  adv_estimator: grpo\nactor_rollout_ref:\n  rollout:\n    n: 1\n")
    (d / "verl_list.yaml").write_text("- 1\n- 2\n")
    run = d / "bad_success_run"
    run.mkdir()
    (run / "success.jsonl").write_text('{"step": 0, "p": [0.5]}\n{broken\n{"step": 1, "p": [0.6]}\n')
    (run / "config.json").write_text(json.dumps({"scheme": "grpo", "num_generations": 8, "beta": 0.1}))
    nocfg = d / "run_without_config"
    nocfg.mkdir()
    (nocfg / "success.jsonl").write_text('{"step": 0, "method": "exact", "p": [0.5, 0.2]}\n')
    # hostile files (issue 23): nesting beyond Python's parsers, sizes, aliases, numbers YAML 1.1 misreads
    deep = "[" * 100_000 + "]" * 100_000
    (d / "deep.json").write_text(deep)
    (d / "deep.yaml").write_text(f"a: {deep}\n")
    (d / "deep.toml").write_text(f"a = {deep}\n")
    (d / "deep_task.jsonl").write_text(deep + "\n")
    (d / "nested.yaml").write_text("".join("  " * i + f"k{i}:\n" for i in range(80)) + "  " * 80 + "x: 1\n")
    (d / "big.yaml").write_text("num_generations: 8\n" + "# padding\n" * 200_000)
    bomb = "".join(f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefg", "bcdefgh"))
    (d / "aliases.yaml").write_text("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + bomb)
    (d / "bigint.json").write_text('{"num_generations": ' + "9" * 5000 + "}")
    (d / "trl_ngen_huge.yaml").write_text("num_generations: 1000000000\n")
    (d / "trl_beta_huge.yaml").write_text("num_generations: 8\nbeta: 1e308\n")
    (d / "trl_beta_word.yaml").write_text("num_generations: 8\nbeta: lots\n")
    (d / "verl_n_huge.yaml").write_text("algorithm:\n  adv_estimator: grpo\nactor_rollout_ref:\n  rollout:\n"
                                        "    n: 1000000000\n")
    (d / "verl_not_mapping.yaml").write_text("algorithm: 3\n")
    (d / "random.bin").write_bytes(bytes(range(256)) * 16)
    run = d / "run_deep_success"
    run.mkdir()
    (run / "success.jsonl").write_text(deep + "\n")
    run = d / "run_huge_M"
    run.mkdir()
    (run / "success.jsonl").write_text('{"step": 0, "method": "exact", "p": [0.5, 0.2]}\n')
    (run / "config.json").write_text(json.dumps({"scheme": "grpo", "num_generations": 10**9, "scheme_params": {},
                                                 "beta": 0.1, "kl_estimator": "k3", "kl_in_reward": False}))
    config = {"scheme": "grpo", "num_generations": 8, "scheme_params": {}, "beta": 0.1, "kl_estimator": "k3",
              "kl_in_reward": False}
    for name, line in (("run_nan_p", '{"step": 0, "p": [NaN, 0.5]}'), ("run_p_number", '{"step": 0, "p": 0.5}'),
                       ("run_p_words", '{"step": 0, "p": ["a", 0.5]}')):
        (d / name).mkdir()
        (d / name / "success.jsonl").write_text(line + '\n{"step": 1, "p": [0.3, 0.5]}\n')
        (d / name / "config.json").write_text(json.dumps(config))
    (d / "p_big.txt").write_bytes(b"0.5\n" * (2**22 + 1))
    return {k.name: str(k) for k in d.iterdir()} | {"dir": str(d), "missing": str(d / "missing.txt")}


#: (id, argv with {name} placeholders, substring the one-line message must contain)
CLI_CASES = [
    # schemes: names and parameters
    ("unknown-scheme", ["h", "--scheme", "nope", "--M", "8", "--t", "0.5"], "nope"),
    ("scheme-flag-not-taken", ["h", "--scheme", "raft", "--M", "8", "--eps", "1e-3", "--t", "0.5"], "--eps"),
    ("negative-eps", ["h", "--scheme", "grpo", "--M", "8", "--eps", "-1", "--t", "0.5"], "eps"),
    ("k-too-large", ["h", "--scheme", "pass_at_k", "--M", "4", "--k", "9", "--t", "0.5"], "k"),
    ("k-zero", ["h", "--scheme", "pass_at_k", "--M", "4", "--k", "0", "--t", "0.5"], "k"),
    ("M-zero", ["h", "--scheme", "grpo", "--M", "0", "--t", "0.5"], "M"),
    ("M-negative", ["h", "--scheme", "grpo", "--M", "-3", "--t", "0.5"], "M"),
    ("M-not-int", ["h", "--scheme", "grpo", "--M", "abc", "--t", "0.5"], "--M"),
    ("M-float", ["h", "--scheme", "grpo", "--M", "2.5", "--t", "0.5"], "--M"),
    ("t-above-one", ["h", "--scheme", "grpo", "--M", "8", "--t", "1.5"], "t"),
    ("t-negative", ["h", "--scheme", "grpo", "--M", "8", "--t", "-0.1"], "t"),
    ("t-nan", ["h", "--scheme", "grpo", "--M", "8", "--t", "nan"], "t"),
    ("std-choice", ["h", "--scheme", "grpo", "--M", "8", "--std", "weird", "--t", "0.5"], "--std"),
    ("unknown-command", ["frobnicate"], "frobnicate"),
    ("missing-required", ["h", "--M", "8"], "--scheme"),
    # dynamics: beta, p_ref, alpha
    ("beta-zero", ["fixed-points", "--scheme", "grpo", "--M", "8", "--beta", "0", "--p-ref", "0.2"], "beta"),
    ("beta-negative", ["fixed-points", "--scheme", "grpo", "--M", "8", "--beta", "-1", "--p-ref", "0.2"], "beta"),
    ("beta-inf", ["fixed-points", "--scheme", "grpo", "--M", "8", "--beta", "inf", "--p-ref", "0.2"], "beta"),
    ("beta-nan", ["iterate", "--scheme", "grpo", "--M", "8", "--beta", "nan", "--p-ref", "0.2"], "beta"),
    ("p-ref-above-one", ["fixed-points", "--scheme", "grpo", "--M", "8", "--beta", "1", "--p-ref", "1.2"], "p_ref"),
    ("p-ref-negative", ["iterate", "--scheme", "grpo", "--M", "8", "--beta", "1", "--p-ref", "-0.2"], "p_ref"),
    ("alpha-above-one", ["fixed-points", "--scheme", "grpo", "--M", "8", "--beta", "1", "--p-ref", "0.2",
                         "--alpha", "2"], "alpha"),
    ("no-scheme-no-population", ["fixed-points", "--beta", "1", "--p-ref", "0.2"], "--scheme"),
    ("population-with-other-scheme", ["fixed-points", "--population", "--scheme", "raft", "--beta", "1",
                                      "--p-ref", "0.2"], "--scheme 'raft' does not apply"),
    ("population-with-k", ["iterate", "--population", "--k", "2", "--beta", "1", "--p-ref", "0.2"],
     "--k does not apply to --population"),
    ("population-mean-only-eps", ["fixed-points", "--population", "--mean-only", "--eps", "0.1", "--beta", "1",
                                  "--p-ref", "0.2"], "--eps does not apply"),
    ("population-dynamic-sampling", ["fixed-points", "--population", "--dynamic-sampling", "0.5", "--beta", "1",
                                     "--p-ref", "0.2"], "--dynamic-sampling does not apply"),
    ("mean-only-without-population", ["fixed-points", "--scheme", "grpo", "--mean-only", "--beta", "1",
                                      "--p-ref", "0.2"], "--population"),
    ("iterate-negative-n", ["iterate", "--scheme", "grpo", "--M", "8", "--beta", "1", "--p-ref", "0.2",
                            "--n", "-1"], "n"),
    ("iterate-p0-range", ["iterate", "--scheme", "grpo", "--M", "8", "--beta", "1", "--p-ref", "0.2",
                          "--p0", "3"], "p"),
    ("iterate-plot-under-a-file", ["iterate", "--scheme", "grpo", "--M", "4", "--beta", "1", "--p-ref", "0.2",
                                   "--n", "2", "--plot", "{garbage.json}/fig.png"], "garbage.json"),
    # explain: presets, parameters, files
    ("unknown-preset", ["explain", "--preset", "nope", "--M", "8"], "nope"),
    ("unknown-compare", ["explain", "--preset", "trl-grpo", "--M", "8", "--compare", "nada"], "nada"),
    ("preset-param-unknown", ["explain", "--preset", "trl-grpo", "--M", "8", "--param", "foo=1"], "foo"),
    ("preset-param-malformed", ["explain", "--preset", "trl-grpo", "--M", "8", "--param", "scale_rewards"], "--param"),
    ("preset-param-bad-value", ["explain", "--preset", "trl-grpo", "--M", "8", "--param", "scale_rewards=often"],
     "scale_rewards"),
    ("explain-M-one", ["explain", "--preset", "trl-grpo", "--M", "1"], "M"),
    ("explain-beta-negative", ["explain", "--preset", "trl-grpo", "--M", "8", "--beta", "-2"], "beta"),
    ("compare-param-alone", ["explain", "--preset", "trl-grpo", "--M", "8", "--compare-param", "x=1"], "--compare"),
    ("p-ref-file-missing", ["explain", "--preset", "trl-grpo", "--M", "8", "--p-ref-file", "{missing}"], "missing.txt"),
    ("p-ref-file-dir", ["explain", "--preset", "trl-grpo", "--M", "8", "--p-ref-file", "{dir}"], "{dir}"),
    ("p-ref-file-garbage", ["explain", "--preset", "trl-grpo", "--M", "8", "--p-ref-file", "{p_bad.txt}"], "p_bad.txt"),
    ("p-ref-file-range", ["explain", "--preset", "trl-grpo", "--M", "8", "--p-ref-file", "{p_range.txt}"], "p_ref"),
    ("p-ref-file-empty", ["explain", "--preset", "trl-grpo", "--M", "8", "--p-ref-file", "{p_empty.txt}"], "p_empty"),
    ("p-ref-file-binary", ["explain", "--preset", "trl-grpo", "--M", "8", "--p-ref-file", "{binary.bin}"], "binary"),
    ("explain-out-is-file", ["explain", "--preset", "trl-grpo", "--M", "4", "--out", "{garbage.json}"], "garbage.json"),
    ("explain-nothing", ["explain"], "--preset"),
    ("trl-config-missing", ["explain", "--trl-config", "{missing}"], "missing.txt"),
    ("trl-config-dir", ["explain", "--trl-config", "{dir}"], "{dir}"),
    ("trl-config-bad-yaml", ["explain", "--trl-config", "{trl_bad.yaml}"], "trl_bad.yaml"),
    ("trl-config-garbage-json", ["explain", "--trl-config", "{garbage.json}"], "garbage.json"),
    ("trl-config-type", ["explain", "--trl-config", "{trl_type.yaml}"], "num_generations"),
    ("trl-config-scale", ["explain", "--trl-config", "{trl_scale.yaml}"], "scale_rewards"),
    ("trl-config-not-mapping", ["explain", "--trl-config", "{list.json}"], "list.json"),
    ("verl-config-estimator", ["explain", "--verl-config", "{verl_bad.yaml}"], "adv_estimator"),
    ("verl-config-n", ["explain", "--verl-config", "{verl_n.yaml}"], "rollout.n"),
    ("verl-config-list", ["explain", "--verl-config", "{verl_list.yaml}"], "verl_list.yaml"),
    ("verl-config-missing", ["explain", "--verl-config", "{missing}"], "missing.txt"),
    ("two-sources", ["explain", "--preset", "trl-grpo", "--M", "8", "--trl-config", "{trl_scale.yaml}"], "--preset"),
    ("run-missing", ["explain", "--run", "{missing}"], "missing.txt"),
    ("run-empty-dir", ["explain", "--run", "{empty_run}"], "success"),
    ("run-corrupt-line", ["explain", "--run", "{bad_success_run}"], "success.jsonl"),
    ("run-no-config", ["explain", "--run", "{run_without_config}"], "config"),
    ("run-is-file", ["explain", "--run", "{garbage.json}"], "garbage.json"),
    # design targets (hardened by branch obj)
    ("design-syntax", ["design", "--target", "log(t", "--M", "8"], "target"),
    ("design-M-zero", ["design", "--target", "t", "--M", "0"], "M"),
    ("design-code-execution", ["design", "--target", "__import__('os').getcwd()", "--M", "4"], "target"),
    ("design-abs", ["design", "--target", "abs(t - 0.5)", "--M", "4"], "abs"),
    ("design-floor", ["design", "--target", "floor(4*t)", "--M", "4"], "floor"),
    ("design-heaviside", ["design", "--target", "Heaviside(t - 0.5)", "--M", "4"], "Heaviside"),
    ("design-nan", ["design", "--target", "nan*t", "--M", "4"], "nan"),
    ("design-complex", ["design", "--target", "sqrt(t - 2)", "--M", "4"], "real-valued"),
    ("design-interval", ["design", "--target", "t", "--M", "4", "--interval", "0.9", "0.1"], "interval"),
    # train / evaluate: files and values, refused before any model is built
    ("train-config-missing", ["train", "--out", "{dir}/r1", "--config", "{missing}"], "missing.txt"),
    ("train-config-dir", ["train", "--out", "{dir}/r2", "--config", "{dir}"], "{dir}"),
    ("train-config-garbage", ["train", "--out", "{dir}/r3", "--config", "{garbage.toml}"], "garbage.toml"),
    ("train-config-unknown-field", ["train", "--out", "{dir}/r4", "--config", "{unknown_field.toml}"], "no_such_field"),
    ("train-config-bad-value", ["train", "--out", "{dir}/r5", "--config", "{bad_value.toml}"], "beta"),
    ("train-beta-negative", ["train", "--out", "{dir}/r6", "--beta", "-1"], "beta"),
    ("train-unknown-scheme", ["train", "--out", "{dir}/r7", "--scheme", "nope"], "nope"),
    ("train-kl-estimator", ["train", "--out", "{dir}/r8", "--kl-estimator", "k9"], "kl_estimator"),
    ("train-num-generations", ["train", "--out", "{dir}/r9", "--num-generations", "0"], "num_generations"),
    ("train-unknown-task", ["train", "--out", "{dir}/r10", "--task", "no_such_task"], "no_such_task"),
    ("train-out-empty", ["train", "--out", ""], "--out"),
    ("train-out-is-file", ["train", "--out", "{garbage.json}", "--steps", "1"], "garbage.json"),
    ("evaluate-missing", ["evaluate", "{missing}"], "missing.txt"),
    ("evaluate-empty-dir", ["evaluate", "{empty_run}"], "{empty_run}' holds no run (no checkpoint.pt, config.json or model/)"),
    ("evaluate-success-only", ["evaluate", "{run_without_config}"], "{run_without_config}' holds no run"),
    ("evaluate-model-dir-no-task", ["evaluate", "{bad_success_run}"], "{bad_success_run}' has no checkpoint.pt"),
    ("evaluate-garbage-file", ["evaluate", "{garbage.json}"], "garbage.json"),
    ("repro-unknown-paper", ["repro", "nobody", "--out", "{dir}/repro"], "nobody"),
]

#: Issue 23: sizes on every command are refused before anything large is allocated (a wrong
#: implementation allocates gigabytes, raises MemoryError, or runs for minutes).
SIZE_CASES = [
    ("h-M-1e9", ["h", "--scheme", "grpo", "--M", "1000000000", "--t", "0.5"], "M must be an integer >= 1 and <= 1000000"),
    ("h-M-20-digits", ["h", "--scheme", "grpo", "--M", "9" * 20, "--t", "0.5"], "M must be an integer >= 1 and <= 1000000"),
    ("h-pass-at-k-M-1e9", ["h", "--scheme", "pass_at_k", "--M", "1000000000", "--k", "3", "--t", "0.5"], "M must be"),
    ("design-M-1e9", ["design", "--target", "log(t/(1-t))", "--M", "1000000000"], "M must be"),
    ("fixed-points-M-1e9", ["fixed-points", "--scheme", "grpo", "--M", "1000000000", "--beta", "1", "--p-ref", "0.2"],
     "M must be"),
    ("iterate-M-1e9", ["iterate", "--scheme", "raft", "--M", "1000000000", "--beta", "1", "--p-ref", "0.2", "--n", "3"],
     "M must be"),
    ("iterate-n-1e8", ["iterate", "--scheme", "raft", "--M", "8", "--beta", "0.5", "--p-ref", "0.1", "--n", "100000000"],
     "n must be an integer >= 0 and <= 100000"),
    ("iterate-n-20-digits", ["iterate", "--scheme", "raft", "--M", "8", "--beta", "0.5", "--p-ref", "0.1", "--n", "9" * 20],
     "n must be an integer >= 0 and <= 100000"),
    ("explain-M-1e9", ["explain", "--preset", "trl-grpo", "--M", "1000000000"], "M must be"),
    ("explain-trl-num-generations-1e9", ["explain", "--trl-config", "{trl_ngen_huge.yaml}"],
     "num_generations must be an integer >= 2 and <= 1000000"),
    ("explain-verl-n-1e9", ["explain", "--verl-config", "{verl_n_huge.yaml}"], "actor_rollout_ref.rollout.n must be"),
    ("explain-run-config-M-1e9", ["explain", "--run", "{run_huge_M}"], "run_huge_M/config.json: M must be"),
    ("validate-device-tpu", ["validate", "--preset", "tiny", "--out", "{dir}/val", "--device", "tpu"],
     "device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
]

#: Issue 23: design targets beyond float64 or undefined in (0, 1) (a wrong implementation raises
#: OverflowError, or reduces an empty array).
TARGET_CASES = [
    ("10**1999*t", "beyond the float64 range"),
    ("1e308*t*10", "beyond the float64 range"),
    ("2**6000*t", "beyond the float64 range"),
    ("9" * 1000, "beyond the float64 range"),  # a constant: lambdify returns the Python int
    ("E**20000", "h(t) must be finite for every t in (0, 1)"),
    ("exp(1000*t)", "h(t) must be finite for every t in (0, 1)"),
    ("log(t)*1e308", "h(t) must be finite"),
    ("1/(t-0.5)", "h(t) must be finite"),
    ("exp(-1e308*t)", "non-decreasing on [0, 1]; h'(0) = -1e+308 < 0"),
]

#: Issue 23: every file reader, with files nested beyond the parser, too large, binary, or holding
#: values of the wrong kind: one line naming the file or the field.
FILE_CASES = [
    ("trl-deep-json", ["explain", "--trl-config", "{deep.json}"], "deep.json is nested deeper than a config is"),
    ("trl-deep-yaml", ["explain", "--trl-config", "{deep.yaml}"], "deep.yaml is nested deeper"),
    ("verl-deep-yaml", ["explain", "--verl-config", "{deep.yaml}"], "deep.yaml is nested deeper"),
    ("verl-nested-80", ["explain", "--verl-config", "{nested.yaml}"], "nested.yaml is nested deeper than a config is"),
    ("trl-too-large", ["explain", "--trl-config", "{big.yaml}"], "a config file is at most 1048576"),
    ("verl-alias-bomb", ["explain", "--verl-config", "{aliases.yaml}"], "aliases.yaml holds more than 100000 values"),
    ("trl-binary", ["explain", "--trl-config", "{random.bin}"], "random.bin is not a text file"),
    ("trl-5000-digits", ["explain", "--trl-config", "{bigint.json}"], "bigint.json"),
    ("trl-beta-1e308", ["explain", "--trl-config", "{trl_beta_huge.yaml}"], "beta must be 0 or in [1e-12, 1e+12]"),
    ("trl-beta-word", ["explain", "--trl-config", "{trl_beta_word.yaml}"], "beta must be a number, got 'lots'"),
    ("verl-section-not-mapping", ["explain", "--verl-config", "{verl_not_mapping.yaml}"],
     "algorithm must be a mapping of options, got 3"),
    ("run-deep-success", ["explain", "--run", "{run_deep_success}"], "run_deep_success/success.jsonl: no per-prompt"),
    ("run-nan-p", ["explain", "--run", "{run_nan_p}"], "run_nan_p/success.jsonl: 'p' must hold probabilities in [0, 1], got nan"),
    ("run-p-number", ["explain", "--run", "{run_p_number}"], "run_p_number/success.jsonl: every record's 'p' must be a non-empty list"),
    ("run-p-words", ["explain", "--run", "{run_p_words}"], "run_p_words/success.jsonl: 'p' must hold numbers"),
    ("p-ref-file-16MB", ["explain", "--preset", "trl-grpo", "--M", "8", "--p-ref-file", "{p_big.txt}"],
     "p_big.txt' is 16777220 bytes; at most 16777216 are read"),
    ("train-config-deep-json", ["train", "--out", "{dir}/rd1", "--config", "{deep.json}"], "deep.json"),
    ("train-config-deep-toml", ["train", "--out", "{dir}/rd2", "--config", "{deep.toml}"], "deep.toml' is nested too deeply"),
    ("train-task-deep", ["train", "--out", "{dir}/rd3", "--task", "{deep_task.jsonl}"], "deep_task.jsonl:1: not valid JSON"),
    ("evaluate-random-bytes", ["evaluate", "{random.bin}"], "random.bin' is not a checkpoint (not a torch.save archive)"),
]


def _fill(text, files):
    for key, value in files.items():
        text = text.replace("{" + key + "}", value)
    return text


def _params(cases):
    out = []
    for c in cases:
        values, marks = (c.values, c.marks) if hasattr(c, "marks") else (c, ())
        out.append(pytest.param(*values, marks=marks, id=str(values[0])))
    return out


@pytest.mark.parametrize("case_id,argv,needle", _params(CLI_CASES))
def test_cli_user_error_is_one_line(case_id, argv, needle, files, capsys, monkeypatch):
    monkeypatch.chdir(files["dir"])  # a case that wrongly ran (e.g. train --out "") must not write into the repo
    code = main([_fill(x, files) for x in argv])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert len(lines) == 1, err
    assert lines[0].startswith("rlvrlens") and "error:" in lines[0]
    assert _fill(needle, files) in lines[0], lines[0]


@pytest.mark.parametrize("case_id,argv,needle", _params(SIZE_CASES + FILE_CASES))
def test_hostile_sizes_and_files_are_one_line(case_id, argv, needle, files, capsys, monkeypatch):
    test_cli_user_error_is_one_line(case_id, argv, needle, files, capsys, monkeypatch)


@pytest.mark.parametrize("target,needle", TARGET_CASES, ids=[t for t, _ in TARGET_CASES])
def test_design_targets_beyond_float64_are_one_line(target, needle, files, capsys, monkeypatch):
    test_cli_user_error_is_one_line(target, ["design", "--target", target, "--M", "8"], needle, files, capsys,
                                    monkeypatch)


#: Issue 23: float flags at the extremes. (argv, the flag's parameter name); each value either gives
#: a one-line error naming the parameter or a result without NaN.
FLOAT_FLAGS = [
    (["h", "--scheme", "grpo", "--M", "8", "--t", "0.5", "--eps", "{v}"], "eps"),
    (["h", "--scheme", "w_reinforce", "--M", "8", "--t", "0.5", "--lam", "{v}"], "lam"),
    (["h", "--scheme", "f_grpo", "--M", "8", "--t", "0.5", "--gamma", "{v}"], "gamma"),
    (["h", "--scheme", "grpo", "--M", "8", "--t", "{v}"], "t"),
    (["design", "--target", "t", "--M", "4", "--method", "minimax", "--max-weight", "{v}"], "max_weight"),
    (["design", "--target", "t", "--M", "4", "--interval", "{v}", "0.9"], "interval"),
    (["fixed-points", "--scheme", "grpo", "--M", "8", "--beta", "{v}", "--p-ref", "0.2"], "beta"),
    (["fixed-points", "--scheme", "grpo", "--M", "8", "--beta", "1", "--p-ref", "{v}"], "p_ref"),
    (["fixed-points", "--population", "--eps", "{v}", "--beta", "1", "--p-ref", "0.2"], "eps"),
    (["iterate", "--scheme", "grpo", "--M", "8", "--beta", "1", "--p-ref", "0.2", "--n", "3", "--p0", "{v}"], "p"),
    (["explain", "--preset", "trl-grpo", "--M", "8", "--beta", "{v}", "--kl-estimator", "k3"], "beta"),
]
EXTREMES = ["0", "inf", "-inf", "nan", "1e308", "1e-320"]


@pytest.mark.parametrize("value", EXTREMES)
@pytest.mark.parametrize("argv,name", FLOAT_FLAGS, ids=[a[0] + "-" + n for a, n in FLOAT_FLAGS])
def test_float_flags_at_the_extremes(argv, name, value, capsys, tmp_path, monkeypatch):
    """Either one line naming the parameter with exit status 2, or a result with no NaN (a wrong
    implementation printed h = nan for lam = 1e308, or failed inside a root finder at beta = 1e308)."""
    monkeypatch.chdir(tmp_path)
    code = main([x.replace("{v}", value) for x in argv] + ["--json"])
    out, err = capsys.readouterr()
    assert code in (0, 2) and "Traceback" not in err, (code, err)
    if code == 2:  # named as the layer does (p_ref) or as the flag (--p-ref: argparse's own "-inf" error)
        assert len(err.strip().splitlines()) == 1 and (name in err or name.replace("_", "-") in err), err
    else:
        assert "NaN" not in out and err == "", (out[:500], err)


def test_h_at_lam_1e308_is_the_number_not_nan(capsys):
    """h_M(t) = (1 + lam) t for W-REINFORCE: 5e307 at t = 1/2 (the sum of the weights overflows
    unless it is scaled)."""
    assert main(["h", "--scheme", "w_reinforce", "--M", "8", "--lam", "1e308", "--t", "0", "0.5", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["h"] == pytest.approx([0.0, 5e307, 1e308], rel=1e-12) and out["dh"] == pytest.approx([1e308] * 3)


def test_trl_numbers_are_read_as_trl_reads_them(tmp_path):
    """YAML 1.1 reads 4e-2 as a string; TRL converts strings by the field's type (argparse), verl's
    OmegaConf reads them as floats: 0.04, not a refusal."""
    from rlvrlens.explain import from_trl_config, from_verl_config, read_config_file

    f = tmp_path / "grpo.yaml"
    for text, beta in (("beta: 4e-2", 0.04), ("beta: 1e4", 1e4), ("beta: 1e6", 1e6), ("beta: '0.04'", 0.04)):
        f.write_text(f"num_generations: '16'\n{text}\n")
        c = from_trl_config(read_config_file(f, "--trl-config"))
        assert (c.M, c.beta) == (16, beta)
    f.write_text("algorithm: {adv_estimator: grpo}\nactor_rollout_ref:\n  rollout: {n: 8}\n"
                 "  actor: {use_kl_loss: true, kl_loss_coef: 1e-3}\n")
    assert from_verl_config(read_config_file(f, "--verl-config")).beta == 0.001
    f.write_text("num_generations: 1e9\n")  # argparse's int('1e9') fails in TRL too
    with pytest.raises(ValueError, match="num_generations must be an integer"):
        from_trl_config(read_config_file(f, "--trl-config"))


def test_enough_cases():
    assert len(CLI_CASES) + len(API_CASES) >= 60
    assert len(SIZE_CASES) + len(TARGET_CASES) + len(FILE_CASES) + len(FLOAT_FLAGS) * len(EXTREMES) >= 100


def test_traceback_flag_shows_the_trace(capsys):
    with pytest.raises(ValueError, match="nope"):
        main(["--traceback", "h", "--scheme", "nope", "--M", "8", "--t", "0.5"])


def test_keyboard_interrupt_exits_130_quietly(monkeypatch, capsys):
    import rlvrlens.commands.objectives as objectives_commands

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(objectives_commands, "run_schemes", interrupted)
    from rlvrlens.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["schemes"])
    if args.func is not interrupted:  # the parser bound the function at registration
        monkeypatch.setattr("rlvrlens.cli.build_parser", lambda: _patched(parser, "schemes", interrupted))
    assert main(["schemes"]) == 130
    out, err = capsys.readouterr()
    assert err == "" and "Traceback" not in out


def _patched(parser, name, func):
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.choices[name].set_defaults(func=func)
    return parser


@pytest.mark.parametrize("exc,expected", [
    (OSError(errno.ENOSPC, "No space left on device", "out/log.jsonl"), "out/log.jsonl: disk full"),
    (PermissionError(errno.EACCES, "Permission denied", "/root/x"), "/root/x: permission denied"),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "d"), "d: is a directory"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "f.toml"), "f.toml: no such file"),
    (json.JSONDecodeError("Expecting value", "x", 0), "not valid JSON"),
    (ValueError("beta must be > 0\n  got -1"), "beta must be > 0 got -1"),
])
def test_describe_error_is_one_line(exc, expected):
    text = describe_error(exc)
    assert expected in text and "\n" not in text


def test_disk_full_through_the_cli(monkeypatch, files, capsys):
    """ENOSPC while writing the figure: one line saying the disk is full."""
    import rlvrlens.figures.style as style

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(files["dir"]) / "fig.png"))

    monkeypatch.setattr(style, "save", full)
    code = main(["iterate", "--scheme", "grpo", "--M", "4", "--beta", "1", "--p-ref", "0.2", "--n", "2",
                 "--plot", str(Path(files["dir"]) / "fig.png")])
    err = capsys.readouterr().err
    assert code == 2 and "disk full" in err and len(err.strip().splitlines()) == 1


# -- the Python API: the same mistakes raise ValueError / TypeError naming the parameter ------------
def _api_cases():
    from rlvrlens import dynamics, explain, objectives

    g = dynamics.grpo_success_map(1.0, 0.2)
    return [
        ("get_scheme-unknown", lambda: objectives.get_scheme("nope", 8), ValueError, "nope"),
        ("get_scheme-bad-param", lambda: objectives.get_scheme("raft", 8, eps=1.0), ValueError, "eps"),
        ("grpo-M", lambda: objectives.grpo(0), ValueError, "M"),
        ("h-t-range", lambda: objectives.h(objectives.grpo(4), 2.0), ValueError, "t"),
        ("get_preset-unknown", lambda: objectives.get_preset("nope", 8), ValueError, "nope"),
        ("success_map-type", lambda: dynamics.success_map("grpo", 1.0, 0.2), TypeError, "WeightScheme"),
        ("success_map-beta", lambda: dynamics.success_map(objectives.grpo(4), -1.0, 0.2), ValueError, "beta"),
        ("success_map-p_ref", lambda: dynamics.success_map(objectives.grpo(4), 1.0, 2.0), ValueError, "p_ref"),
        ("attractor-array", lambda: dynamics.attractor(g.with_params(beta=[1.0, 2.0])), ValueError, "single"),
        ("attractor-type", lambda: dynamics.attractor(3), TypeError, "SuccessMap"),
        ("iterate-n", lambda: dynamics.iterate(g, 0.2, -1), ValueError, "n"),
        ("grid-p_refs", lambda: dynamics.fixed_point_grid(g, [1.0], [1.0]), ValueError, "p_refs"),
        ("count-p_refs", lambda: dynamics.count_fixed_points(g, [1.0], [-0.5]), ValueError, "p_refs"),
        ("explain-M-missing", lambda: explain.explain("trl-grpo"), ValueError, "M"),
        ("explain-beta", lambda: explain.explain("trl-grpo", 8, beta=0.0), ValueError, "beta"),
        ("explain-p_ref", lambda: explain.explain("trl-grpo", 8, p_ref=[1.5]), ValueError, "p_ref"),
        ("explain-empty-p_ref", lambda: explain.explain("trl-grpo", 8, p_ref=np.array([])), ValueError, "p_ref"),
        ("explain-4e6-p_ref", lambda: explain.explain("trl-grpo", 8, p_ref=np.full(4_000_000, 0.5)), ValueError,
         "the number of p_ref values = 4000000 is too large"),
        ("align-type", lambda: explain.align_with_limit("grpo", [0.5]), TypeError, "WeightScheme"),
        ("trl-config-mapping", lambda: explain.from_trl_config({"num_generations": 8, "loss_type": "nope"}),
         ValueError, "loss_type"),
        ("verl-config-mapping", lambda: explain.from_verl_config({"algorithm": {"adv_estimator": "gae"}}),
         ValueError, "gae"),
    ]


API_CASES = _api_cases()


@pytest.mark.parametrize("case_id,call,exc_type,needle", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_user_error_names_the_parameter(case_id, call, exc_type, needle):
    with pytest.raises(exc_type) as info:
        call()
    assert needle in str(info.value) and "\n" not in str(info.value).strip()
