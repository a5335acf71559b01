"""A character-level tokenizer built in code, so the built-in tasks need nothing downloaded.

It is a real :class:`transformers.PreTrainedTokenizerFast` (a ``tokenizers`` WordLevel model over
single characters), so ``save_pretrained`` / ``AutoTokenizer.from_pretrained`` round-trip it.
"""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

#: Special tokens, in id order.
SPECIAL_TOKENS = ("<pad>", "<eos>", "<unk>")
#: The default character set: digits, arithmetic, punctuation, lower-case letters and space.
DEFAULT_CHARS = string.digits + "+-*/=%:,;.#?()[]<>!" + string.ascii_lowercase + " "


def char_tokenizer(chars: str = DEFAULT_CHARS) -> PreTrainedTokenizerFast:
    """A tokenizer with one token per character of ``chars`` plus ``<pad>``, ``<eos>``, ``<unk>``.

    Parameters
    ----------
    chars : str, default DEFAULT_CHARS
        The characters, non-empty and without repeats (digits, arithmetic signs, lowercase letters
        and space by default).

    Returns
    -------
    PreTrainedTokenizerFast
        The tokenizer (special tokens first, then ``chars`` in order).

    Raises
    ------
    ValueError
        If ``chars`` is empty, not a string, or repeats a character.

    Examples
    --------
    >>> tok = char_tokenizer()
    >>> ids = tok("12+3=", add_special_tokens=False)["input_ids"]
    >>> len(ids), tok.decode(ids)
    (5, '12+3=')
    """
    if not isinstance(chars, str) or not chars:
        raise ValueError("chars must be a non-empty string")
    if len(set(chars)) != len(chars):
        raise ValueError("chars must not repeat a character")
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for c in chars:
        vocab[c] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>",
                                   unk_token="<unk>")


def chars_for_task(task, chars: str = DEFAULT_CHARS) -> str:
    """``chars`` plus every other character of the task's prompts and accepted answers, in order of first appearance.

    This is a character set for :func:`char_tokenizer` that encodes the whole task.

    Parameters
    ----------
    task : Task
        The task (its prompts and accepted answers, or its answers where none are listed).
    chars : str, default DEFAULT_CHARS
        The characters to start from.

    Returns
    -------
    str
        ``chars`` followed by the task's other characters.

    Examples
    --------
    >>> from rlvrlens.training.task import Task
    >>> chars_for_task(Task("yn", ("is 3 odd?",), ("Yes",)), chars="0123456789 ")
    '0123456789 isod?Ye'
    """
    seen = dict.fromkeys(chars)
    for i, prompt in enumerate(task.prompts):
        for text in [prompt, *(task.accepted(i) or [task.answers[i]])]:
            seen.update(dict.fromkeys(text))
    return "".join(seen)
