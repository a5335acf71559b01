"""The verl plugin against verl's own code (verl 0.9.1, in the environment ``make test`` builds as
``.venv-verl``; skipped where verl is not installed).

Batches are built as verl builds them: one ``str(uuid.uuid4())`` per prompt
(``ray_trainer.py:1481``, ``v1/trainer_base.py:1476``), ``DataProto.repeat(n, interleave=True)`` for the
``n`` responses, prompts left-padded and responses right-padded in ``attention_mask``, the outcome
reward on the last valid response token (verl's reward managers), rows then reordered as verl's
sequence-length balancing does; advantages come from verl's ``compute_advantage``
(``verl.trainer.ppo.ray_trainer``) with the ``algorithm`` node of verl's own ``ppo_trainer.yaml``
in struct mode, as Hydra hands it over. (The default v1 trainer delegates every estimator but
``grpo`` to this same ``compute_advantage``: ``v1/utils.py``, ``compute_advantage_for_multi_trajectories``.)

Where a built-in estimator is the same weighting, the plugin's advantages are compared with it:

* ``rloo_vectorized``: bit for bit, in float32 as verl runs (0/1 rewards);
* ``grpo`` with ``norm_adv_by_std_in_grpo=False`` (Dr. GRPO): bit for bit in float64 for 0/1 rewards;
  in float32 within 1 ulp (verl rounds the group mean, then the difference);
* ``grpo``, ``rloo`` (and Dr. GRPO with real rewards): within ``8 eps max(1, max|A|)`` in float32 and
  float64 (``eps`` the dtype's machine epsilon): verl's arithmetic (mean, unbiased std, ``n/(n-1)``
  rescaling, division) rounds at each operation in the tensor's dtype, the plugin rounds once from
  float64 (and sums real rewards in another order). Measured: at most 2.4e-7 (float32) and 4.4e-16
  (float64);
* ``grpo_vectorized``: in float32 with the same bound (its ``group_mean_std`` works in float32
  whatever the input dtype, from sums of squares).

Every other scheme (the catalogue, designed, saved) is compared with ``WeightScheme.weights`` on
each group, grouped here by a dictionary of uids, independently of the plugin's grouping. The
presets ``explain --verl-config`` uses for verl's estimators are checked against those estimators too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

pytest.importorskip("verl.trainer.ppo.ray_trainer", reason="verl is installed only in .venv-verl (make test-verl)")

import torch  # noqa: E402
import verl  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from verl import DataProto  # noqa: E402
from verl.trainer.ppo import core_algos  # noqa: E402
from verl.trainer.ppo.ray_trainer import compute_advantage  # noqa: E402

from rlvrlens.core.records import read_jsonl  # noqa: E402
from rlvrlens.objectives import design, get_preset, get_scheme, log_odds, scheme_spec  # noqa: E402
from rlvrlens.training import verl_plugin  # noqa: E402
from rlvrlens.training.verl_plugin import ESTIMATOR, GroupRecorder, compute_rlvrlens_outcome_advantage  # noqa: E402

#: The algorithm node of verl's own trainer config.
ALGORITHM = OmegaConf.load(os.path.join(verl.__path__[0], "trainer", "config", "ppo_trainer.yaml")).algorithm
#: Group sizes of the test batch: several of each, and sizes other than rollout.n (filtered samples).
SIZES = (8, 8, 8, 8, 5, 3, 2, 16, 16, 7)
PROMPT_LENGTH, RESPONSE_LENGTH = 3, 6


def algorithm(estimator: str, **extra) -> OmegaConf:
    """verl's algorithm node with ``adv_estimator`` and extra keys, in struct mode as Hydra leaves it."""
    cfg = OmegaConf.merge(ALGORITHM, {"adv_estimator": estimator, **extra})
    OmegaConf.set_struct(cfg, True)
    return cfg


def verl_batch(sizes=SIZES, *, seed=0, real=False, dtype=torch.float32, repeat=4) -> DataProto:
    """``repeat`` copies of prompts with group sizes ``sizes``, laid out as verl lays them out."""
    rng = np.random.default_rng(seed)
    parts = []
    for n in [n for _ in range(repeat) for n in sizes]:
        prompt = DataProto.from_dict(non_tensors={"uid": np.array([str(uuid.uuid4())], dtype=object)},
                                     tensors={"p": torch.tensor([rng.uniform()])})
        group = prompt.repeat(repeat_times=n, interleave=True)
        length = torch.as_tensor(rng.integers(1, RESPONSE_LENGTH + 1, size=n))
        attention = torch.zeros(n, PROMPT_LENGTH + RESPONSE_LENGTH, dtype=torch.int64)
        attention[:, PROMPT_LENGTH - 1:PROMPT_LENGTH] = 1  # a left-padded prompt of one token
        attention[:, PROMPT_LENGTH:] = (torch.arange(RESPONSE_LENGTH) < length[:, None]).long()
        p = float(group.batch["p"][0])
        score = torch.as_tensor(rng.uniform(size=n) if real else (rng.uniform(size=n) < p).astype(float))
        rewards = torch.zeros(n, RESPONSE_LENGTH, dtype=dtype)
        rewards[torch.arange(n), length - 1] = score.to(dtype)
        group.batch["token_level_rewards"] = rewards
        group.batch["attention_mask"] = attention
        group.batch["responses"] = torch.ones(n, RESPONSE_LENGTH, dtype=torch.int64)
        parts.append(group)
    data = DataProto.concat(parts)
    data.reorder(torch.as_tensor(rng.permutation(len(data))))  # verl's _balance_batch reorders rows
    return data


def advantages(data: DataProto, estimator: str, *, norm: bool = True, **extra) -> torch.Tensor:
    """verl's compute_advantage on a copy of ``data``."""
    copy = DataProto.from_dict(tensors={k: v.clone() for k, v in data.batch.items()},
                               non_tensors={"uid": data.non_tensor_batch["uid"].copy()})
    out = compute_advantage(copy, adv_estimator=estimator, norm_adv_by_std_in_grpo=norm,
                            config=algorithm(estimator, **extra))
    return out.batch["advantages"]


def plugin(data: DataProto, **block) -> torch.Tensor:
    return advantages(data, ESTIMATOR, rlvrlens=block)


def per_group(data: DataProto, scheme_for) -> torch.Tensor:
    """The expected advantages: ``scheme_for(n).weights`` on each uid's rewards, times the response mask."""
    uid = data.non_tensor_batch["uid"]
    mask = data.batch["attention_mask"][:, -RESPONSE_LENGTH:]
    scores = data.batch["token_level_rewards"].sum(-1).double().numpy()
    rows: dict[str, list[int]] = {}
    for i, u in enumerate(uid):
        rows.setdefault(u, []).append(i)
    Z = np.zeros(len(uid))
    for members in rows.values():
        Z[members] = scheme_for(len(members)).weights(scores[members])
    return torch.as_tensor(Z, dtype=data.batch["token_level_rewards"].dtype).unsqueeze(-1) * mask


def bound(reference: torch.Tensor) -> float:
    """``8 eps max(1, max|A|)`` in the tensor's dtype (module docstring)."""
    return 8 * torch.finfo(reference.dtype).eps * max(1.0, float(reference.abs().max()))


# -- registration ----------------------------------------------------------------------------------
def test_import_verl_registers_the_estimator_through_the_entry_point():
    """In a fresh interpreter, ``import verl`` alone imports the plugin (verl loads the ``verl.plugins``
    entry points of installed packages: this package's metadata names the module) and registers it."""
    code = ("import sys, verl\nfrom importlib.metadata import entry_points\n"
            "from verl.trainer.ppo import core_algos\n"
            "fn = core_algos.ADV_ESTIMATOR_REGISTRY.get('rlvrlens')\n"
            "print(('rlvrlens', 'rlvrlens.training.verl_plugin') in [(e.name, e.value) for e in "
            "entry_points(group='verl.plugins')], fn.__module__)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERL_USE_EXTERNAL")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[-2] == "True rlvrlens.training.verl_plugin"


def test_registered_function_and_reregistration():
    assert core_algos.get_adv_estimator_fn(ESTIMATOR) is compute_rlvrlens_outcome_advantage
    verl_plugin.register()  # the same function again: accepted
    with pytest.raises(ValueError, match="already been registered"):
        core_algos.register_adv_est(ESTIMATOR)(lambda **kw: None)


# -- against verl's built-in estimators ---------------------------------------------------------------
def test_rloo_vectorized_bit_for_bit():
    data = verl_batch()
    assert torch.equal(plugin(data, scheme="rloo"), advantages(data, "rloo_vectorized"))


def test_dr_grpo_is_verl_grpo_without_std_bit_for_bit_in_float64():
    """For 0/1 rewards the group sum is exact and each side rounds k/n once in float64: equal bits. In
    float32 verl rounds k/n and then the difference, the plugin rounds once: at most 1 ulp apart."""
    data = verl_batch(dtype=torch.float64)
    assert torch.equal(plugin(data, scheme="dr_grpo"), advantages(data, "grpo", norm=False))
    data32 = verl_batch()
    ours, theirs = plugin(data32, scheme="dr_grpo"), advantages(data32, "grpo", norm=False)
    neighbours = (ours == torch.nextafter(theirs, theirs + 1)) | (ours == torch.nextafter(theirs, theirs - 1))
    assert bool(((ours == theirs) | neighbours).all()) and not torch.equal(ours, theirs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("real", [False, True])
@pytest.mark.parametrize("scheme,estimator,norm", [("grpo", "grpo", True), ("dr_grpo", "grpo", False),
                                                   ("rloo", "rloo", True), ("rloo", "rloo_vectorized", True)])
def test_grpo_and_rloo_within_rounding(scheme, estimator, norm, real, dtype):
    """grpo(M, eps=1e-6, std='sample') is verl's grpo (epsilon 1e-6, torch.std: unbiased); dr_grpo its
    norm_adv_by_std_in_grpo=False; rloo is verl's n/(n-1) rescaling, which is leave-one-out; real
    rewards go through the schemes' formulas (sums in another order: not bit for bit)."""
    data = verl_batch(real=real, dtype=dtype, seed=1)
    theirs = advantages(data, estimator, norm=norm)
    ours = plugin(data, scheme=scheme)
    assert ours.dtype == theirs.dtype == dtype
    assert float((ours - theirs).abs().max()) <= bound(theirs)
    assert float(theirs.abs().max()) > 0.5  # not a vacuous batch


def test_grpo_vectorized_within_rounding():
    data = verl_batch(seed=2)
    theirs = advantages(data, "grpo_vectorized")
    assert float((plugin(data, scheme="grpo") - theirs).abs().max()) <= bound(theirs)


def test_grpo_vectorized_ignores_norm_adv_by_std_in_grpo():
    """verl 0.9.1 passes norm_adv_by_std_in_grpo only to its wired-in grpo; registry estimators get
    ``config`` and grpo_vectorized does not read it: explain --verl-config says so."""
    data = verl_batch(seed=3)
    divided = advantages(data, "grpo_vectorized")
    assert torch.equal(advantages(data, "grpo_vectorized", norm=False, norm_adv_by_std_in_grpo=False), divided)
    assert not torch.equal(advantages(data, "grpo", norm=False), advantages(data, "grpo"))


PRESETS_VS_VERL = [("verl-grpo", {}, "grpo", True), ("verl-grpo", {"norm_adv_by_std_in_grpo": False}, "grpo", False),
                   ("verl-grpo-vectorized", {}, "grpo_vectorized", False), ("verl-rloo", {}, "rloo", True),
                   ("verl-rloo-vectorized", {}, "rloo_vectorized", True),
                   ("verl-grpo-passk", {}, "grpo_passk", True),
                   ("verl-grpo-passk", {"norm_adv_by_std_in_grpo": False}, "grpo_passk", False)]


@pytest.mark.parametrize("preset,params,estimator,norm", PRESETS_VS_VERL, ids=[f"{p[0]}-{p[3]}" for p in PRESETS_VS_VERL])
def test_explain_presets_are_verls_estimators(preset, params, estimator, norm):
    """The presets explain --verl-config uses, on every group of a batch of groups of rollout.n = 6,
    against verl's estimator run by compute_advantage with that config (grpo_passk reads
    norm_adv_by_std_in_grpo from the config, grpo from compute_advantage's argument,
    grpo_vectorized from neither: it always divides)."""
    data = verl_batch(sizes=(6,), repeat=40, seed=9)
    theirs = advantages(data, estimator, norm=norm, norm_adv_by_std_in_grpo=norm)
    ours = per_group(data, lambda n: get_preset(preset, n, **params))
    assert float((ours - theirs).abs().max()) <= bound(theirs) and float(theirs.abs().max()) > 0.5


# -- every other scheme: WeightScheme.weights per group --------------------------------------------------
CATALOGUE = [("reinforce", {}), ("raft", {}), ("reinforce_rej", {}), ("log_odds", {}), ("pass_at_k", {"k": 2}),
             ("maxrl", {"T": 2}), ("pkpo", {"k": 2}), ("w_reinforce", {"lam": 0.2}), ("nsr", {}),
             ("f_grpo", {"gamma": 0.5}), ("gpg", {"p_batch": [0.3, 0.6]}), ("grpo", {"std": "population"})]


@pytest.mark.parametrize("name,params", CATALOGUE, ids=[n for n, _ in CATALOGUE])
def test_catalogue_schemes_per_group(name, params):
    data = verl_batch(seed=4)
    expected = per_group(data, lambda n: get_scheme(name, n, **{k: tuple(v) if isinstance(v, list) else v
                                                               for k, v in params.items()}))
    got = plugin(data, scheme=name, params=params)
    assert torch.equal(got, expected)
    assert float(got.abs().max()) > 0


def test_designed_scheme_per_group():
    options = {"method": "minimax", "max_weight": 20, "interval": [0.05, 0.95]}
    data = verl_batch(seed=5)
    expected = per_group(data, lambda n: design("log(t/(1-t))", n, method="minimax", max_weight=20,
                                                 interval=(0.05, 0.95)).scheme)
    assert torch.equal(plugin(data, target="log(t/(1-t))", design=options), expected)


def test_saved_scheme_file(tmp_path):
    """The JSON of ``rlvrlens design --json``, read back: one group size only."""
    out = subprocess.run([sys.executable, "-m", "rlvrlens", "design", "--target", "log(t/(1-t))", "--M", "8",
                          "--json"], capture_output=True, text=True, check=True).stdout
    path = tmp_path / "scheme.json"
    path.write_text(out)
    saved = design("log(t/(1-t))", 8).scheme
    data = verl_batch(sizes=(8,), seed=6)
    assert torch.equal(plugin(data, scheme_file=str(path)), per_group(data, lambda n: saved))
    with pytest.raises(ValueError, match=r"holds a scheme for groups of M = 8 answers, got a group of 5"):
        plugin(verl_batch(sizes=(8, 5)), scheme_file=str(path))


# -- shapes, masks, refusals -----------------------------------------------------------------------
def test_padding_rows_and_singletons(tmp_path):
    """verl's padding rows (``padding_utils``: one shared ``pad<hex>`` uid, response_mask 0, reward 0)
    belong to no group and get 0; a group of one answer gets the scheme at M = 1 where it exists
    (reinforce: Z = R) and 0 with a warning where it does not (rloo; verl's rloo_vectorized gives 0
    too); another group size the scheme lacks is refused, naming it."""
    data = verl_batch(sizes=(4, 4))
    n = len(data)
    mask = data.batch["attention_mask"][:, -RESPONSE_LENGTH:].clone()
    pad_uid = f"pad{uuid.uuid4().hex}"
    tokens = {"token_level_rewards": torch.zeros(3, RESPONSE_LENGTH),
              "response_mask": torch.zeros(3, RESPONSE_LENGTH, dtype=mask.dtype)}
    rewards = torch.cat([data.batch["token_level_rewards"], tokens["token_level_rewards"]])
    masks = torch.cat([mask, tokens["response_mask"]])
    uid = np.concatenate([data.non_tensor_batch["uid"], np.array([pad_uid] * 3, dtype=object)])
    block = algorithm(ESTIMATOR, rlvrlens={"scheme": "log_odds"})
    adv, ret = compute_rlvrlens_outcome_advantage(token_level_rewards=rewards, response_mask=masks, index=uid,
                                                  config=block)
    assert adv is ret and torch.equal(adv[n:], torch.zeros(3, RESPONSE_LENGTH))
    assert torch.equal(adv[:n], per_group(data, log_odds))  # log_odds has a[0] = -1: padding would get it

    one = {"token_level_rewards": rewards[:1], "response_mask": masks[:1], "index": uid[:1]}
    adv, _ = compute_rlvrlens_outcome_advantage(**one, config=algorithm(ESTIMATOR, rlvrlens={"scheme": "reinforce"}))
    assert torch.equal(adv, rewards[:1].sum(-1, keepdim=True) * masks[:1])
    with pytest.warns(UserWarning, match=r"algorithm.rlvrlens: 1 group\(s\) of one answer got weight 0"):
        adv, _ = compute_rlvrlens_outcome_advantage(**one, config=algorithm(ESTIMATOR, rlvrlens={"scheme": "rloo"}))
    assert torch.equal(adv, torch.zeros_like(adv))
    mixed = {"token_level_rewards": rewards[:5], "response_mask": masks[:5], "index": np.array(list("abbbb"), object)}
    with pytest.warns(UserWarning, match="one answer"):
        compute_rlvrlens_outcome_advantage(**mixed, config=algorithm(ESTIMATOR, rlvrlens={
            "scheme": "rloo", "record_dir": str(tmp_path)}))
    assert [(r["n"], r["scheme"]) for r in read_jsonl(tmp_path / "groups.jsonl")] == [(1, None), (4, "rloo")]
    assert list(json.loads((tmp_path / "scheme.json").read_text())["by_group_size"]) == ["4"]
    three = {"token_level_rewards": rewards[:3], "response_mask": masks[:3], "index": np.array(["g"] * 3, object)}
    with pytest.raises(ValueError, match=r"algorithm.rlvrlens: scheme 'pass_at_k' for groups of M = 3: "):
        compute_rlvrlens_outcome_advantage(**three, config=algorithm(ESTIMATOR, rlvrlens={"scheme": "pass_at_k",
                                                                                         "params": {"k": 4}}))


def test_rewards_that_are_not_zero_one_are_refused_for_a_zero_one_scheme():
    data = verl_batch(real=True)
    uid = data.non_tensor_batch["uid"]
    with pytest.raises(ValueError) as err:
        plugin(data, scheme="log_odds")
    message = str(err.value)
    assert message.startswith("algorithm.rlvrlens: group uid=") and "rewards must be 0/1 for scheme 'log_odds'" in message
    assert "use_kl_in_reward" in message and message.split("'")[1] in set(uid)
    assert "\n" not in message


def test_config_errors_name_the_key():
    data = verl_batch(sizes=(2,), repeat=1)
    with pytest.raises(ValueError, match=r"needs an algorithm.rlvrlens block .* \+algorithm.rlvrlens.scheme=NAME"):
        advantages(data, ESTIMATOR)
    with pytest.raises(ValueError, match=r"algorithm.rlvrlens.scheme: unknown scheme 'grpoo'"):
        plugin(data, scheme="grpoo")
    with pytest.raises(ValueError, match=r"algorithm.rlvrlens.params: unknown option\(s\) k for scheme 'grpo'"):
        plugin(data, scheme="grpo", params={"k": 2})
    with pytest.raises(ValueError, match=r"needs verl's group ids"):
        compute_rlvrlens_outcome_advantage(token_level_rewards=torch.zeros(2, 3), response_mask=torch.ones(2, 3),
                                           config=algorithm(ESTIMATOR, rlvrlens={"scheme": "rloo"}))


# -- records -------------------------------------------------------------------------------------------
def test_records_one_line_per_group_and_the_scheme(tmp_path):
    record_dir = tmp_path / "records"
    first, second = verl_batch(sizes=(8, 8, 5), repeat=1, seed=7), verl_batch(sizes=(8,), repeat=2, seed=8)
    for data in (first, second):
        plugin(data, scheme="pass_at_k", params={"k": 2}, record_dir=str(record_dir))
    lines = read_jsonl(record_dir / "groups.jsonl")
    assert [r["step"] for r in lines] == [0, 0, 0, 1, 1]
    for step, data in enumerate((first, second)):
        uid = data.non_tensor_batch["uid"]
        scores = data.batch["token_level_rewards"].sum(-1).tolist()
        expected = {}
        for u, s in zip(uid, scores):
            expected.setdefault(u, []).append(s)
        got = {r["prompt_id"]: r["rewards"] for r in lines if r["step"] == step}
        assert got == expected
    assert {(r["source"], r["split"], r["scheme"]) for r in lines} == {("verl", "train", "pass_at_k")}
    assert all(r["n"] == len(r["rewards"]) and r["p_hat"] == np.mean(r["rewards"]) for r in lines)
    record = json.loads((record_dir / "scheme.json").read_text())
    assert record["config"] == {"scheme": "pass_at_k", "params": {"k": 2}}
    assert record["scheme"] == get_scheme("pass_at_k", 8, k=2).describe()
    assert sorted(record["by_group_size"]) == ["5", "8"]
    resumed = GroupRecorder(record_dir, scheme_spec({"scheme": "pass_at_k", "params": {"k": 2}}))
    assert resumed.step == 2  # a resumed run continues the numbering
