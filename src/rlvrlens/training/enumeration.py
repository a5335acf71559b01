"""Exact success probability under a subword tokenizer: every token sequence of every accepted string.

With a BPE vocabulary many token sequences decode to the same text (``" 12"`` is ``Ġ 1 2`` or
``Ġ1 2`` ...), and the sampler accepts any of them. The success probability of prompt ``x`` is

.. math::  p(C|x) = \\sum_{s \\in C(x)} \\sum_{y:\\ \\mathrm{decode}(y) = s} \\pi(y \\mid x)

over token sequences ``y`` that the sampler can produce with that text: the tokens of ``s`` then the
stop token, within ``max_new_tokens`` tokens in all, or exactly ``max_new_tokens`` tokens of ``s``
without the stop token (a completion cut at the limit whose text is already accepted is rewarded).
Summing one tokenisation (``encode(s)``) undercounts ``p``.

The sequences are enumerated by a depth-first search over the target's bytes: at each position,
every vocabulary token whose byte string is a prefix of what remains (found by walking a prefix
trie of the vocabulary). Their probabilities are summed by teacher forcing in batches, so ``p``
stays differentiable (autograd gives ``grad p``). Completeness: for a byte-level tokenizer
(GPT-2, Llama-3, SmolLM2, ...) the decoded text is the UTF-8 decoding of the concatenated token
bytes, so a sequence decodes to ``s`` iff its bytes are ``s.encode()`` (for ``s`` without U+FFFD);
for other tokenizers each token's decoded text is used, and every enumerated sequence is checked
to decode to ``s`` with the tokenizer itself. Tokenizers that clean up spaces on decoding are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import torch

from rlvrlens.training.task import PREFILL

__all__ = ["NotEnumerable", "VocabularyTrie", "vocabulary_trie", "tokenizations", "accepted_sequences",
           "exact_success_tokens", "unencodable_characters", "check_task_encodable"]

#: Default cap on the number of token sequences per prompt before falling back to an estimate.
MAX_SEQUENCES = 20_000


class NotEnumerable(ValueError):
    """The accepted completions cannot be enumerated (too many tokenisations, or a tokenizer whose
    decoding is not a concatenation of token strings)."""


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (Radford et al. 2019, encoder.py)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, n = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(keep, map(chr, chars)))


@dataclass
class VocabularyTrie:
    """A prefix trie over the vocabulary's byte strings (``children[node][byte] -> node``,
    ``ends[node]`` the token ids whose bytes end there). Stop and pad tokens are left out."""

    children: list[dict[int, int]]
    ends: list[list[int]]
    byte_level: bool

    def matches(self, data: bytes, start: int) -> list[tuple[int, int]]:
        """``(token_id, end)`` for every token whose bytes equal ``data[start:end]``."""
        out, node = [], 0
        for pos in range(start, len(data)):
            node = self.children[node].get(data[pos], -1)
            if node < 0:
                break
            out.extend((tok, pos + 1) for tok in self.ends[node])
        return out


def _is_byte_level(tokenizer) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and "ByteLevel" in str(backend.decoder)


def _token_bytes(tokenizer) -> tuple[list[bytes | None], bool]:
    """Each token id's bytes as the decoder sees them (``None``: never part of a completion's text)."""
    byte_level = _is_byte_level(tokenizer)
    skip = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    added = {tid: tok.content for tid, tok in getattr(tokenizer, "added_tokens_decoder", {}).items()}
    inverse = {c: b for b, c in _bytes_to_unicode().items()} if byte_level else {}
    out: list[bytes | None] = []
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    for tid, piece in enumerate(pieces):
        if tid in skip or piece is None:
            out.append(None)
        elif tid in added:
            out.append(added[tid].encode("utf-8"))
        elif byte_level:
            try:
                out.append(bytes(inverse[c] for c in piece))
            except KeyError:  # not a byte-level piece: use its decoded text
                out.append(tokenizer.decode([tid]).encode("utf-8"))
        else:
            out.append(tokenizer.decode([tid]).encode("utf-8"))
    return out, byte_level


@lru_cache(maxsize=8)
def _trie_for(tokenizer_id: int, tokenizer) -> VocabularyTrie:
    strings, byte_level = _token_bytes(tokenizer)
    children: list[dict[int, int]] = [{}]
    ends: list[list[int]] = [[]]
    for tid, data in enumerate(strings):
        if not data:  # None, or empty: an empty token would make the set infinite; refused below
            if data == b"":
                raise NotEnumerable(f"token {tid} decodes to the empty string: its accepted set is not finite")
            continue
        node = 0
        for b in data:
            nxt = children[node].get(b)
            if nxt is None:
                nxt = len(children)
                children[node][b] = nxt
                children.append({}), ends.append([])
            node = nxt
        ends[node].append(tid)
    return VocabularyTrie(children, ends, byte_level)


def vocabulary_trie(tokenizer) -> VocabularyTrie:
    """The (cached) prefix trie of ``tokenizer``'s vocabulary."""
    if getattr(tokenizer, "clean_up_tokenization_spaces", False):
        raise NotEnumerable("the tokenizer cleans up spaces when decoding (clean_up_tokenization_spaces=True), "
                            "so several texts decode alike")
    return _trie_for(id(tokenizer), tokenizer)


def tokenizations(tokenizer, text: str, max_tokens: int, *, limit: int = MAX_SEQUENCES) -> list[tuple[int, ...]]:
    """Every token sequence of at most ``max_tokens`` tokens whose bytes are ``text.encode()``.

    Examples
    --------
    >>> from rlvrlens.training.tokenizer import char_tokenizer
    >>> tok = char_tokenizer()
    >>> [tok.decode(list(s)) for s in tokenizations(tok, "12", 4)]
    ['12']
    """
    if "\ufffd" in text:
        raise NotEnumerable(f"{text!r} contains U+FFFD, which many byte strings decode to")
    trie = vocabulary_trie(tokenizer)
    data = text.encode("utf-8")
    out: list[tuple[int, ...]] = []
    # reach[i]: fewest tokens from byte i to the end (prunes paths that cannot finish within max_tokens)
    INF = len(data) + max_tokens + 1
    reach = [INF] * (len(data) + 1)
    reach[len(data)] = 0
    nexts = [trie.matches(data, i) for i in range(len(data))]
    for i in range(len(data) - 1, -1, -1):
        reach[i] = min((1 + reach[end] for _, end in nexts[i]), default=INF)
    stack: list[tuple[int, tuple[int, ...]]] = [(0, ())]
    while stack:
        pos, seq = stack.pop()
        if pos == len(data):
            out.append(seq)
            if len(out) > limit:
                raise NotEnumerable(f"{text!r} has more than {limit} tokenisations of at most {max_tokens} tokens")
            continue
        for tok, end in nexts[pos]:
            if len(seq) + 1 + reach[end] <= max_tokens:
                stack.append((end, seq + (tok,)))
    return sorted(out)


def accepted_sequences(tokenizer, accepted: Sequence[str], max_new_tokens: int, *,
                       limit: int = MAX_SEQUENCES) -> list[tuple[int, ...]]:
    """All completions (token ids, the stop token included where it fits) the sampler can produce
    whose text is one of ``accepted``: ``y + (eos,)`` with ``len(y) < max_new_tokens``, or ``y`` alone
    with ``len(y) == max_new_tokens`` (cut at the limit). Each is checked to decode to its string."""
    eos = tokenizer.eos_token_id
    out: list[tuple[int, ...]] = []
    for text in dict.fromkeys(accepted):
        for seq in tokenizations(tokenizer, text, max_new_tokens, limit=limit):
            if tokenizer.decode(list(seq)) != text:
                raise NotEnumerable(f"token sequence {list(seq)} does not decode to {text!r} "
                                    "(this tokenizer's decoding is not a concatenation of token strings)")
            out.append(seq + (eos,) if len(seq) < max_new_tokens else seq)
        if len(out) > limit:
            raise NotEnumerable(f"more than {limit} accepted token sequences")
    return out


def exact_success_tokens(policy, prompts: Sequence[str], accepted: Sequence[Sequence[str]], max_new_tokens: int, *,
                         batch_size: int = 256, limit: int = MAX_SEQUENCES) -> torch.Tensor:
    """``p(C|x)`` for each prompt by teacher forcing every accepted token sequence; differentiable.

    ``accepted[k]`` lists prompt ``k``'s accepted strings. Rows are scored ``batch_size`` at a time.
    """
    tok = policy.tokenizer
    rows: list[tuple[int, tuple[int, ...]]] = []
    for k, strings in enumerate(accepted):
        rows.extend((k, seq) for seq in accepted_sequences(tok, strings, max_new_tokens, limit=limit))
    total = torch.zeros(len(prompts), dtype=torch.float32, device=policy.device)
    pad = tok.pad_token_id
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        width = max(len(seq) for _, seq in chunk)
        ids = torch.tensor([list(seq) + [pad] * (width - len(seq)) for _, seq in chunk], device=policy.device)
        rollout = policy.rollout_from_tokens([prompts[k] for k, _ in chunk], ids)
        rollout.mask = torch.tensor([[1.0] * len(seq) + [0.0] * (width - len(seq)) for _, seq in chunk],
                                    device=policy.device)
        logp, _ = policy.token_logprobs(rollout)
        owner = torch.tensor([k for k, _ in chunk], device=policy.device)
        total = total.index_add(0, owner, torch.exp(logp.sum(-1)).to(total.dtype))
    return total


def unencodable_characters(tokenizer, text: str) -> list[str]:
    """The characters of ``text`` that do not survive encoding and decoding (e.g. ``<unk>`` ones).

    Examples
    --------
    >>> from rlvrlens.training.tokenizer import char_tokenizer
    >>> unencodable_characters(char_tokenizer(), "Yes, 12")
    ['Y']
    """
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer.decode(ids) == text:
        return []
    bad = []
    for c in dict.fromkeys(text):
        if tokenizer.decode(tokenizer(c, add_special_tokens=False)["input_ids"]) != c:
            bad.append(c)
    return bad or [text]


def check_task_encodable(policy, task) -> None:
    """Refuse (``ValueError`` naming the characters) a task whose prompts or accepted completions the
    policy's tokenizer cannot represent: such a prompt is not what the model sees, and such an answer
    can never be produced, so neither rewards nor success probabilities would mean anything."""
    tok = getattr(policy, "tokenizer", None)
    if tok is None:
        return
    bad: dict[str, list[str]] = {}
    for i, prompt in enumerate(task.prompts):
        for c in unencodable_characters(tok, prompt.replace(PREFILL, "")):
            bad.setdefault(c, []).append(f"prompt {i}")
        for text in (task.accepted(i) or [task.answers[i]]):
            for c in unencodable_characters(tok, text):
                bad.setdefault(c, []).append(f"answer {i}")
    if bad:
        shown = ", ".join(f"{c!r} (in {where[0]}{' and others' if len(where) > 1 else ''})"
                          for c, where in list(bad.items())[:12])
        raise ValueError(f"task {task.name!r} has characters the tokenizer cannot encode: {shown}; use a "
                         "tokenizer whose vocabulary covers the task (e.g. char_tokenizer(chars_for_task(task)))")
