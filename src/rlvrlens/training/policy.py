"""Policies: a transformers causal LM, and a tabular softmax over a finite answer set.

Both expose the same interface, used by the trainer and the exact-probability tools:

- ``sample(prompts, n, generator=..., temperature=, top_p=, max_new_tokens=)`` -> :class:`Rollout`
  with ``n`` completions per prompt (rows ``i*n .. i*n+n-1`` belong to ``prompts[i]``);
- ``encode(prompts, completions)`` -> :class:`Rollout` of given text completions (each followed by
  EOS), for teacher forcing;
- ``token_logprobs(rollout)`` -> ``(logp, entropy)``, both ``(B, T)``, differentiable;
- ``parameters()``, ``state_dict()``, ``load_state_dict()``, ``clone(trainable=False)`` (a frozen copy:
  pi_ref; ``trainable=True``: a copy to train).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
import transformers

from rlvrlens.core.checks import check_float, check_int
from rlvrlens.core.kl import PI_REF, REF_PI, check_treatment
from rlvrlens.training.task import PREFILL
from rlvrlens.training.tokenizer import char_tokenizer


def _end_of_turn(tokenizer) -> str | None:
    """The special token the chat template puts right after an assistant message (``None`` if none)."""
    marker = "RLVRLENS-END-OF-TURN-PROBE"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}, {"role": "assistant", "content": marker}],
                                         tokenize=False)
    after = text[text.rindex(marker) + len(marker):] if marker in text else ""
    specials = sorted(getattr(tokenizer, "all_special_tokens", []) + list(tokenizer.get_added_vocab()),
                      key=len, reverse=True)
    for tok in specials:
        if tok and after.startswith(tok):
            return tok
    return None


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """transformers' progress bars off while loading or saving (they would interleave with the
    command line's one-line messages on stderr), then as they were."""
    was = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            transformers.utils.logging.enable_progress_bar()


def model_config_sizes(config: dict) -> tuple[int, int, int]:
    """``(vocabulary, hidden width, layers)`` from a transformers model config (as a dict, e.g. a
    folder's ``config.json``); unknown sizes count as 1, 0, 0."""
    text = config.get("text_config") or config
    vocab = int(text.get("vocab_size") or 1)
    width = int(text.get("hidden_size") or text.get("n_embd") or 0)
    layers = int(text.get("num_hidden_layers") or text.get("n_layer") or 0)
    return vocab, width, layers


def trainable_parameters(policy) -> list[torch.Tensor]:
    """The parameters of ``policy`` that training moves (those that require grad), in order."""
    return [q for q in policy.parameters() if q.requires_grad]


@dataclass
class Rollout:
    """A batch of completions.

    Attributes
    ----------
    prompts : list of str, length B
    completion_ids : LongTensor (B, T)
        Completion tokens (for a tabular policy: the answer index, ``T = 1``), padded after EOS.
    mask : FloatTensor (B, T)
        1 on the completion's tokens including its EOS, 0 on padding.
    texts : list of str
        Decoded completions without EOS.
    finished : BoolTensor (B,)
        Whether the completion ended with EOS (else it was cut at ``max_new_tokens``).
    logp, entropy : Tensor (B, T), optional
        Set by ``sample(..., with_grad=True)``: the log-probabilities of the sampled tokens under the
        distribution that sampled them (tempered logits, top-p nucleus) and its entropies,
        differentiable, recorded while sampling (zeros off-mask).
    """

    prompts: list[str]
    completion_ids: torch.Tensor
    mask: torch.Tensor
    texts: list[str]
    finished: torch.Tensor
    logp: torch.Tensor | None = None
    entropy: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.prompts)

    def select(self, rows: Sequence[int]) -> "Rollout":
        """The sub-batch of the given rows."""
        idx = torch.as_tensor(list(rows), dtype=torch.long)
        return Rollout([self.prompts[i] for i in idx.tolist()], self.completion_ids[idx], self.mask[idx],
                       [self.texts[i] for i in idx.tolist()], self.finished[idx])


def _check_sampling(n: int, temperature: float, top_p: float, max_new_tokens: int) -> None:
    check_int("n", n, minimum=1)
    check_float("temperature", temperature, low=0.0, low_open=True)
    check_float("top_p", top_p, low=0.0, high=1.0, low_open=True)
    check_int("max_new_tokens", max_new_tokens, minimum=1)


def draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One index per row of ``probs`` (shape ``(rows, 1)``), drawn with ``generator`` (a CPU generator
    draws on the CPU for a model elsewhere). Probabilities that are NaN or inf (weights or logits
    that overflowed: a diverged run) are refused in one line."""
    if not torch.isfinite(probs).all():
        raise ValueError("the policy's next-token probabilities are NaN or inf: its weights or logits overflowed "
                         "(the run diverged: lower learning_rate, warm_start_lr, beta or weight_decay, or raise temperature)")
    if generator is not None and generator.device != probs.device:
        return torch.multinomial(probs.cpu(), 1, generator=generator).to(probs.device)
    return torch.multinomial(probs, 1, generator=generator)


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Set to ``-inf`` the logits outside the smallest set of tokens whose probability is ``>= top_p``
    (nucleus sampling, Holtzman et al. 2020). The most likely token is always kept."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    drop_sorted = cum - torch.softmax(sorted_logits, dim=-1) >= top_p  # mass before this token
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def tempered_logprobs(logits: torch.Tensor, temperature: float = 1.0, top_p: float = 1.0,
                      keep: torch.Tensor | None = None) -> torch.Tensor:
    """``log_softmax(logits / temperature)`` over the ``top_p`` nucleus (renormalised; ``-inf`` outside it).

    These are the log-probabilities of the distribution :meth:`CausalLMPolicy.sample` draws from.
    ``keep`` (token ids of shape ``logits.shape[:-1]``) are never cut by the nucleus, so a token
    that was sampled keeps a finite score after the policy moved.

    Parameters
    ----------
    logits : torch.Tensor, shape (..., V)
        Next-token logits.
    temperature : float, default 1.0
        Sampling temperature (the logits are divided by it; not checked here).
    top_p : float, default 1.0
        Nucleus mass; ``1.0`` keeps every token.
    keep : torch.Tensor, optional
        Token ids, shape ``logits.shape[:-1]``, kept inside the nucleus whatever their rank.

    Returns
    -------
    torch.Tensor, shape (..., V)
        Log-probabilities, ``-inf`` for the tokens cut by the nucleus.

    Examples
    --------
    >>> tempered_logprobs(torch.tensor([0.0, 0.0]), temperature=2.0).exp().tolist()
    [0.5, 0.5]
    """
    logits = logits / temperature
    if top_p < 1.0:
        with torch.no_grad():
            drop = torch.isneginf(top_p_filter(logits.detach(), top_p)) & ~torch.isneginf(logits.detach())
            if keep is not None:
                drop.scatter_(-1, keep[..., None], False)
        logits = logits.masked_fill(drop, float("-inf"))
    return torch.log_softmax(logits, dim=-1)


class CausalLMPolicy:
    """Any ``transformers`` causal LM with its tokenizer, as a policy over text completions.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal LM (GPT-2, Llama, ...).
    tokenizer : transformers.PreTrainedTokenizerBase
        Must define ``eos_token_id`` and ``pad_token_id``.
    """

    def __init__(self, model: transformers.PreTrainedModel, tokenizer) -> None:
        if tokenizer.eos_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("tokenizer must define eos_token_id and pad_token_id")
        self.model = model.eval()  # no dropout: sampling and scoring must use the same distribution
        self.tokenizer = tokenizer
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        # the sampler's prompt pass needs only the last position's logits (skips the LM head on every
        # prompt token); scoring keeps the full pass, so that a policy (grad mode) and its frozen copy
        # (no grad) compute bitwise the same log-probabilities (Adam would amplify any rounding gap)
        self._last_only = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        #: Encode each distinct prompt once in token_logprobs (set False for models whose cache
        #: cannot be re-indexed).
        self.share_prompt_prefix = True
        #: Wrap prompts in the tokenizer's chat template (see :meth:`format_prompt`).
        self.chat_template = False
        #: ``sample(with_grad=True)``: differentiate the decoding loop itself (True: no second forward
        #: pass, fastest for tiny models) or sample without grad and score the tokens once by teacher
        #: forcing (False: set by :meth:`from_pretrained`; for SmolLM2-135M at 16 x 8 tokens the
        #: backward pass takes ~5 s instead of ~12 s, because the decoding loop's backward accumulates
        #: every weight gradient once per generated token). Both give the same log-probabilities.
        self.differentiate_sampling = True

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, arch: str = "gpt2", *, n_layer: int = 2, width: int = 64, n_head: int = 2,
                    max_positions: int = 128, seed: int = 0, tokenizer=None) -> "CausalLMPolicy":
        """A freshly initialised tiny model (``arch`` = ``"gpt2"`` or ``"llama"``) with the char tokenizer."""
        tokenizer = tokenizer or char_tokenizer()
        check_int("n_layer", n_layer)
        check_int("width", width)
        check_int("n_head", n_head)
        if width % n_head:
            raise ValueError(f"width must be divisible by n_head, got width={width}, n_head={n_head}")
        ids = dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.eos_token_id,
                   eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        if arch == "gpt2":
            config = transformers.GPT2Config(n_positions=max_positions, n_embd=width, n_layer=n_layer,
                                             n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0,
                                             attn_pdrop=0.0, activation_function="gelu_pytorch_tanh",
                                             **ids)
            model_cls = transformers.GPT2LMHeadModel
        elif arch == "llama":
            config = transformers.LlamaConfig(hidden_size=width, intermediate_size=2 * width,
                                              num_hidden_layers=n_layer, num_attention_heads=n_head,
                                              num_key_value_heads=n_head,
                                              max_position_embeddings=max_positions, **ids)
            model_cls = transformers.LlamaForCausalLM
        else:
            raise ValueError(f"arch must be 'gpt2' or 'llama', got {arch!r}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = model_cls(config)
        return cls(model, tokenizer)

    @classmethod
    def from_pretrained(cls, model: str | Path, *, chat_template: bool | None = None) -> "CausalLMPolicy":
        """A pretrained model by name (``"smollm2-135m"``), ``.gguf`` file or Hugging Face folder.

        Names and GGUF files are dequantised once and cached (:func:`rlvrlens.training.models.resolve_model`).
        ``chat_template``: wrap each prompt as a user turn of the tokenizer's chat template (``None``:
        whenever the tokenizer has one, i.e. for instruct models). The stop token is the model's own
        end-of-turn token (the special token the template puts after an assistant turn). A tokenizer
        without a pad token, or whose pad token is its stop token, gets a new ``<pad>`` token (one
        more embedding row, never sampled: its logit is ``-inf``), so the model's distribution is unchanged.
        """
        from rlvrlens.training.models import resolve_model

        path = resolve_model(model)
        with _quiet_progress():
            tokenizer = transformers.AutoTokenizer.from_pretrained(path)
            net = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        has_template = getattr(tokenizer, "chat_template", None) is not None
        if chat_template is None:
            chat_template = has_template
        elif chat_template and not has_template:
            raise ValueError(f"chat_template=True but the tokenizer of {str(model)!r} has no chat template")
        if chat_template:
            end = _end_of_turn(tokenizer)
            if end is not None and end != tokenizer.eos_token:
                tokenizer.eos_token = end
        if tokenizer.eos_token_id is None:
            raise ValueError(f"the tokenizer of {str(model)!r} has no end-of-sequence token")
        if tokenizer.pad_token_id is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
            tokenizer.add_special_tokens({"pad_token": "<pad>"})
            net.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        net.generation_config.pad_token_id = tokenizer.pad_token_id
        policy = cls(net, tokenizer)
        policy.chat_template = bool(chat_template)
        policy.differentiate_sampling = False
        return policy

    def save_pretrained(self, path: str | Path) -> None:
        with _quiet_progress():
            self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)

    # --- the policy interface ----------------------------------------------------------------
    def parameters(self):
        return self.model.parameters()

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)

    def clone(self, trainable: bool = False) -> "CausalLMPolicy":
        """A deep copy: frozen (``trainable=False``, used as pi_ref) or with parameters that require
        grad (``trainable=True``, a fresh policy to train from the same weights)."""
        model = copy.deepcopy(self.model)
        model.requires_grad_(trainable)
        model.eval()
        other = CausalLMPolicy(model, self.tokenizer)
        other.share_prompt_prefix = self.share_prompt_prefix
        other.chat_template = self.chat_template
        other.differentiate_sampling = self.differentiate_sampling
        return other

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str) -> "CausalLMPolicy":
        """Move the model to ``device`` (in place); returns the policy."""
        self.model.to(device)
        return self

    def footprint(self) -> tuple[int, int, int]:
        """``(vocabulary, hidden width, layers)``: what the trainer's memory estimate needs."""
        return model_config_sizes(self.model.config.to_dict())

    def enable_gradient_checkpointing(self) -> None:
        """Gradient (activation) checkpointing of the model's layers.

        transformers checkpoints a layer only while the layer is in training mode; the policy stays in
        eval mode (no dropout), so only the checkpointed layers themselves are flagged as training,
        not their children. The cached prompt prefix and the fused sampling pass are not used (a
        checkpointed layer drops its cache).
        """
        from transformers.modeling_layers import GradientCheckpointingLayer

        model = self.model
        if not getattr(model, "supports_gradient_checkpointing", False):
            raise ValueError(f"{type(model).__name__} does not support gradient checkpointing")
        enable = getattr(model, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:  # pragma: no cover (older transformers)
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        for module in model.modules():
            if isinstance(module, GradientCheckpointingLayer):
                module.training = True
        self.share_prompt_prefix = False

    def _shared_prefix_logits(self, distinct: list[str], prompts: list[str], comp: torch.Tensor,
                              comp_attn: torch.Tensor) -> torch.Tensor:
        """Logits predicting each completion token: distinct prompts once, their cache expanded to rows."""
        ids, attn = self._encode_prompts(distinct)
        row_of = {p: k for k, p in enumerate(distinct)}
        rows = torch.tensor([row_of[p] for p in prompts], device=self.device)
        out = self.model(input_ids=ids, attention_mask=attn, position_ids=(attn.cumsum(-1) - 1).clamp(min=0),
                         use_cache=True)
        first = out.logits[rows, -1:, :]
        if comp.shape[1] == 1:
            return first
        cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
        cache.batch_select_indices(rows)  # differentiable gather of the prompt keys/values
        attn = attn[rows]
        full_attn = torch.cat([attn, comp_attn], dim=-1)
        positions = attn.sum(-1, keepdim=True) + torch.arange(comp.shape[1], device=self.device)
        rest = self.model(input_ids=comp[:, :-1], attention_mask=full_attn[:, :-1],
                          position_ids=positions[:, :-1], use_cache=True, **{self._cache_kw: cache}).logits
        return torch.cat([first, rest], dim=1)

    def _never_pad(self, logits: torch.Tensor) -> torch.Tensor:
        """The policy never emits the pad token: its logit is -inf when sampling and scoring alike."""
        logits = logits.clone()
        logits[..., self.tokenizer.pad_token_id] = float("-inf")
        return logits

    def format_prompt(self, prompt: str) -> str:
        """The text the model is conditioned on for ``prompt``.

        A prompt may end with an assistant prefill after :data:`PREFILL` (``"2+3?<|prefill|>2 + 3 ="``):
        the model continues the prefill. With :attr:`chat_template` the part before the marker is the
        user's message and the prefill starts the assistant's turn; without it the two are joined.

        Examples
        --------
        >>> pol = CausalLMPolicy.from_config()
        >>> pol.format_prompt("2+3?" + PREFILL + "2+3=")
        '2+3?2+3='
        """
        user, _, prefill = prompt.partition(PREFILL)
        if not self.chat_template:
            return user + prefill
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                                  add_generation_prompt=True)
        return text + prefill

    def _encode_prompts(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded prompt ids and attention mask."""
        if isinstance(prompts, str) or not len(prompts):
            raise ValueError("prompts must be a non-empty list of strings")
        encoded = [self.tokenizer(self.format_prompt(p), add_special_tokens=False)["input_ids"] for p in prompts]
        if any(len(e) == 0 for e in encoded):
            raise ValueError("prompts must not be empty strings")
        width = max(len(e) for e in encoded)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded], device=self.device)
        mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=self.device)
        return ids, mask

    def _decode(self, ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
        eos = self.tokenizer.eos_token_id
        rows = []
        for row, m in zip(ids.tolist(), mask.tolist()):
            toks = [t for t, k in zip(row, m) if k and t != eos]
            rows.append(self.tokenizer.decode(toks))
        return rows

    def sample(self, prompts: Sequence[str], n: int = 1, *, generator: torch.Generator | None = None,
               temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 8,
               with_grad: bool = False) -> Rollout:
        """``n`` completions per prompt, sampled token by token with the KV cache; stops at EOS.

        With ``with_grad`` the decoding pass is recorded by autograd and the rollout carries the
        differentiable log-probabilities of its tokens: an on-policy step then needs no second
        forward pass (the decode computes the same function of the parameters as teacher forcing).
        """
        _check_sampling(n, temperature, top_p, max_new_tokens)
        if with_grad and not self.differentiate_sampling:
            with torch.no_grad():
                rollout = self._sample(prompts, n, generator, temperature, top_p, max_new_tokens, False)
            rollout.logp, rollout.entropy = self.token_logprobs(rollout, temperature=temperature, top_p=top_p)
            return rollout
        with torch.set_grad_enabled(with_grad):
            return self._sample(prompts, n, generator, temperature, top_p, max_new_tokens, with_grad)

    def _sample(self, prompts, n, generator, temperature, top_p, max_new_tokens, with_grad) -> Rollout:
        distinct = list(dict.fromkeys(prompts))  # each distinct prompt is prefilled once
        row_of = {p: k for k, p in enumerate(distinct)}
        prompts = [p for p in prompts for _ in range(n)]
        rows = torch.tensor([row_of[p] for p in prompts], device=self.device)
        ids, attn = self._encode_prompts(distinct)
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        B = len(prompts)
        out_tokens = torch.full((B, max_new_tokens), pad, dtype=torch.long, device=self.device)
        done = torch.zeros(B, dtype=torch.bool, device=self.device)
        positions = (attn.cumsum(-1) - 1).clamp(min=0)
        step_input, cache, scores = ids, None, []
        for t in range(max_new_tokens):
            out = self.model(input_ids=step_input, attention_mask=attn, position_ids=positions,
                             use_cache=True, **{self._cache_kw: cache}, **(self._last_only if t == 0 else {}))
            cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
            last = out.logits[:, -1, :]
            if t == 0:  # expand the distinct prompts' cache to one row per completion
                cache.batch_select_indices(rows)
                last, attn, positions = last[rows], attn[rows], positions[rows]
            raw = self._never_pad(last.float())
            if with_grad:  # the sampling distribution's own log-probabilities
                scores.append(tempered_logprobs(raw, temperature, top_p))
            logits = raw.detach() / temperature
            tok = draw(torch.softmax(top_p_filter(logits, top_p), dim=-1), generator).squeeze(-1)
            tok = torch.where(done, torch.full_like(tok, pad), tok)
            out_tokens[:, t] = tok
            done = done | (tok == eos)
            if bool(done.all()):
                out_tokens = out_tokens[:, : t + 1]
                break
            step_input = tok[:, None]
            attn = torch.cat([attn, torch.ones_like(attn[:, :1])], dim=-1)
            positions = positions[:, -1:] + 1
        rollout = self.rollout_from_tokens(prompts, out_tokens)
        if with_grad:
            rollout.logp, rollout.entropy = self._score(torch.stack(scores, dim=1), rollout)
        return rollout

    def rollout_from_tokens(self, prompts: Sequence[str], tokens: torch.Tensor) -> Rollout:
        """A :class:`Rollout` of given completion tokens (``(B, T)``, one row per prompt): the mask
        covers each row up to and including its first EOS, the texts are decoded without it."""
        eos = self.tokenizer.eos_token_id
        is_eos = tokens == eos
        # mask: 1 up to and including the first EOS
        before = torch.cumsum(is_eos.long(), dim=-1) - is_eos.long()
        mask = (before == 0).float()
        finished = is_eos.any(dim=-1)
        return Rollout(list(prompts), tokens, mask, self._decode(tokens, mask), finished)

    def encode(self, prompts: Sequence[str], completions: Sequence[str]) -> Rollout:
        """The completions as a :class:`Rollout` (each followed by EOS), for teacher forcing."""
        if len(prompts) != len(completions):
            raise ValueError("prompts and completions must have the same length")
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        encoded = [self.tokenizer(c, add_special_tokens=False)["input_ids"] + [eos] for c in completions]
        width = max(len(e) for e in encoded)
        tokens = torch.tensor([e + [pad] * (width - len(e)) for e in encoded], device=self.device)
        return self.rollout_from_tokens(list(prompts), tokens)

    def two_token_logprobs(self, prompts: Sequence[str]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per prompt, ``log pi(y1 | x)`` of shape ``(V,)`` and ``log pi(y2 | x, y1)`` of shape ``(V, V)``
        (row ``y1``), differentiable, at temperature 1; the pad token has log-probability ``-inf``.

        The whole two-token completion space in two forward passes per prompt (the prompt, then its
        ``V`` one-token continuations on the prompt's cache): what an exact sequence KL over
        completions of at most two tokens needs (:class:`rlvrlens.training.tasks.EnumeratedTask`).
        """
        V = len(self.tokenizer)
        first, second = [], []
        for prompt in prompts:
            ids, _ = self._encode_prompts([prompt])
            out = self.model(input_ids=ids, use_cache=True)
            cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
            cache.batch_select_indices(torch.zeros(V, dtype=torch.long, device=self.device))
            nxt = self.model(input_ids=torch.arange(V, device=self.device)[:, None],
                             position_ids=torch.full((V, 1), ids.shape[1], device=self.device),
                             use_cache=True, **{self._cache_kw: cache})
            logits = self._never_pad(torch.cat([out.logits[0, -1:], nxt.logits[:, -1]]).float())
            lp = torch.log_softmax(logits, dim=-1)
            first.append(lp[0])
            second.append(lp[1:])
        return first, second

    def token_logprobs(self, rollout: Rollout, *, temperature: float = 1.0,
                       top_p: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """``log pi(y_t | x, y_<t)`` and the entropy of ``pi(. | x, y_<t)``, each ``(B, T)`` (zeros off-mask).

        ``pi`` is the distribution :meth:`sample` draws from with the same ``temperature`` and
        ``top_p`` (:func:`tempered_logprobs`; the rollout's tokens are kept in the nucleus).
        When prompts repeat (a group of M completions per prompt), each distinct prompt is encoded
        once and its key/value cache is shared by its completions, gradients included.
        """
        comp = rollout.completion_ids.to(self.device)
        comp_attn = rollout.mask.to(self.device).long()
        distinct = list(dict.fromkeys(rollout.prompts))
        if self.share_prompt_prefix and len(distinct) < len(rollout.prompts):
            logits = self._shared_prefix_logits(distinct, rollout.prompts, comp, comp_attn)
        else:
            ids, attn = self._encode_prompts(rollout.prompts)
            full_attn = torch.cat([attn, comp_attn], dim=-1)
            positions = (full_attn.cumsum(-1) - 1).clamp(min=0)
            out = self.model(input_ids=torch.cat([ids, comp], dim=-1), attention_mask=full_attn,
                             position_ids=positions).logits
            P, T = ids.shape[1], comp.shape[1]
            logits = out[:, P - 1: P + T - 1, :]
        keep = comp if top_p < 1.0 else None
        return self._score(tempered_logprobs(self._never_pad(logits.float()), temperature, top_p, keep), rollout)

    def _score(self, logprobs: torch.Tensor, rollout: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities of the rollout's tokens and entropies from ``(B, T, V)`` log-softmaxes."""
        comp = rollout.completion_ids.to(self.device)
        on = rollout.mask.to(self.device) > 0
        # padding after EOS has log-probability -inf under _never_pad: score EOS there, then zero it
        safe = torch.where(on, comp, torch.full_like(comp, self.tokenizer.eos_token_id))
        logp = logprobs.gather(-1, safe[..., None]).squeeze(-1)
        entropy = -(logprobs.exp() * logprobs.clamp(min=torch.finfo(logprobs.dtype).min)).sum(-1)
        zero = torch.zeros((), dtype=logp.dtype, device=logp.device)
        return torch.where(on, logp, zero), torch.where(on, entropy, zero)


class TabularPolicy(torch.nn.Module):
    """A softmax over a fixed finite answer set for each of a fixed list of prompts.

    ``pi(answer_j | prompt_i) = softmax(logits[i])[j]``. A completion is a single "token": the answer
    index (``T = 1``). Exact for the theory: ``p = sum_{j in C(i)} pi(j | i)``.

    Examples
    --------
    >>> pol = TabularPolicy(["x"], ["yes", "no"])
    >>> pol.probabilities().tolist()
    [[0.5, 0.5]]
    """

    def __init__(self, prompts: Sequence[str], answers: Sequence[str], logits: torch.Tensor | None = None) -> None:
        super().__init__()
        if not len(prompts) or not len(answers):
            raise ValueError("prompts and answers must be non-empty")
        if len(set(answers)) != len(answers) or len(set(prompts)) != len(prompts):
            raise ValueError("prompts and answers must not repeat")
        self.prompt_list, self.answers = list(prompts), list(answers)
        self._prompt_index = {p: i for i, p in enumerate(self.prompt_list)}
        self._answer_index = {a: j for j, a in enumerate(self.answers)}
        init = torch.zeros(len(prompts), len(answers)) if logits is None else torch.as_tensor(logits)
        if not init.is_floating_point():
            init = init.float()
        if init.shape != (len(prompts), len(answers)):
            raise ValueError(f"logits must have shape ({len(prompts)}, {len(answers)}), got {tuple(init.shape)}")
        self.logits = torch.nn.Parameter(init.clone())

    def probabilities(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=-1)

    def footprint(self) -> tuple[int, int, int]:
        """``(answers, 0, 0)``: one "token" over the answer set (the trainer's memory estimate)."""
        return len(self.answers), 0, 0

    def enable_gradient_checkpointing(self) -> None:
        raise ValueError("gradient_checkpointing needs a transformers policy (CausalLMPolicy); a TabularPolicy "
                         "has no activations to recompute")

    def clone(self, trainable: bool = False) -> "TabularPolicy":
        """A copy of the logits: frozen (``trainable=False``, pi_ref) or trainable."""
        other = TabularPolicy(self.prompt_list, self.answers, self.logits.detach().clone())
        other.requires_grad_(trainable)
        return other

    def _rows(self, prompts: Sequence[str]) -> torch.Tensor:
        try:
            return torch.tensor([self._prompt_index[p] for p in prompts])
        except KeyError as exc:
            raise ValueError(f"prompt {exc.args[0]!r} is not one of this tabular policy's prompts") from None

    def sample(self, prompts: Sequence[str], n: int = 1, *, generator: torch.Generator | None = None,
               temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 1,
               with_grad: bool = False) -> Rollout:
        _check_sampling(n, temperature, top_p, max_new_tokens)
        prompts = [p for p in prompts for _ in range(n)]
        with torch.no_grad():
            logits = self.logits[self._rows(prompts)] / temperature
            idx = draw(torch.softmax(top_p_filter(logits, top_p), dim=-1), generator)
        rollout = self._answers_rollout(prompts, idx)
        if with_grad:
            rollout.logp, rollout.entropy = self.token_logprobs(rollout, temperature=temperature, top_p=top_p)
        return rollout

    def _answers_rollout(self, prompts: list[str], idx: torch.Tensor) -> Rollout:
        B = len(prompts)
        return Rollout(prompts, idx, torch.ones(B, 1), [self.answers[j] for j in idx[:, 0].tolist()],
                       torch.ones(B, dtype=torch.bool))

    def encode(self, prompts: Sequence[str], completions: Sequence[str]) -> Rollout:
        if len(prompts) != len(completions):
            raise ValueError("prompts and completions must have the same length")
        try:
            idx = torch.tensor([[self._answer_index[c]] for c in completions])
        except KeyError as exc:
            raise ValueError(f"completion {exc.args[0]!r} is not in the answer set") from None
        return self._answers_rollout(list(prompts), idx)

    def token_logprobs(self, rollout: Rollout, *, temperature: float = 1.0,
                       top_p: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.logits[self._rows(rollout.prompts)]
        keep = rollout.completion_ids[:, 0] if top_p < 1.0 else None
        logprobs = tempered_logprobs(logits, temperature, top_p, keep)
        logp = logprobs.gather(-1, rollout.completion_ids)
        entropy = -(logprobs.exp() * logprobs.clamp(min=torch.finfo(logprobs.dtype).min)).sum(-1, keepdim=True)
        return logp, entropy

    def sequence_kl(self, reference: "TabularPolicy", prompts: Sequence[str], direction: str = PI_REF) -> torch.Tensor:
        """Exact KL per prompt, differentiable, shape ``(len(prompts),)``: ``KL(pi(.|x) || pi_ref(.|x))``
        (``direction="pi||ref"``) or ``KL(pi_ref(.|x) || pi(.|x))`` (``"ref||pi"``)."""
        check_treatment(direction, (PI_REF, REF_PI))
        rows = self._rows(prompts)
        logp = torch.log_softmax(self.logits[rows], dim=-1)
        logq = torch.log_softmax(reference.logits[rows].detach(), dim=-1)
        if direction == REF_PI:
            logp, logq = logq, logp
        return (logp.exp() * (logp - logq)).sum(-1)
