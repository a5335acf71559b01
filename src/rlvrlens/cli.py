"""The ``rlvrlens`` command. Thin: it parses, calls the layers, prints and plots.

Each module of :mod:`rlvrlens.commands` contributes subcommands through ``register(subparsers)``;
every subcommand stores its handler as ``func(args) -> int``.

Every error a user can cause prints as one line ``rlvrlens CMD: error: ...`` naming the thing at
fault, and exits with status 2: bad values and types (``ValueError``, ``TypeError``), files that
are missing, unreadable, directories or corrupt (``OSError`` and its subclasses, JSON / TOML /
YAML decode errors), a full disk (said so). Ctrl-C exits with 130, quietly. Floating-point
warnings (``RuntimeWarning``) of intermediate steps are not shown (the layers check their results). The
global ``--traceback`` flag shows the full Python trace and the warnings instead (for bug reports).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import pkgutil
import sys
import warnings
from typing import Sequence

import rlvrlens
import rlvrlens.commands

#: Exit status for a user's error (argparse's own convention) and for Ctrl-C (128 + SIGINT).
EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``rlvrlens CMD: error: ...``; ``CMD --help`` shows the usage)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rlvrlens",
        description="What does an RL-with-verifiable-rewards update optimise, and where does it converge?",
    )
    parser.add_argument("--version", action="version", version=f"rlvrlens {rlvrlens.__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full Python traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for info in sorted(pkgutil.iter_modules(rlvrlens.commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"rlvrlens.commands.{info.name}").register(sub)
    return parser


def _decode_errors() -> tuple[type[BaseException], ...]:
    """Parse errors of the file formats the commands read (TOML and YAML only if importable)."""
    errors: list[type[BaseException]] = [json.JSONDecodeError, UnicodeDecodeError]
    try:
        import tomllib

        errors.append(tomllib.TOMLDecodeError)
    except ImportError:  # pragma: no cover - Python < 3.11
        pass
    yaml = sys.modules.get("yaml")
    if yaml is not None:
        errors.append(yaml.YAMLError)
    return tuple(errors)


def describe_error(exc: BaseException) -> str:
    """One line for an error the user caused, naming the file or value at fault.

    Examples
    --------
    >>> describe_error(FileNotFoundError(2, "No such file or directory", "cfg.toml"))
    'cfg.toml: no such file or directory'
    >>> describe_error(OSError(errno.ENOSPC, "No space left on device", "out/log.jsonl"))
    'out/log.jsonl: disk full (no space left on device)'
    >>> describe_error(FileNotFoundError("--config: cfg.toml does not exist"))
    '--config: cfg.toml does not exist'
    >>> err = NotADirectoryError("cannot write to run directory 'f/sub': Not a directory")
    >>> err.errno = errno.ENOTDIR
    >>> describe_error(err)
    "cannot write to run directory 'f/sub': Not a directory"
    """
    if isinstance(exc, OSError) and not isinstance(exc, (ValueError, TypeError)):
        where = exc.filename if exc.filename is not None else None
        if exc.strerror is None and str(exc):  # our own message, e.g. FileNotFoundError("--config: ..."),
            # errno possibly set after it (rundir keeps the cause's errno on its one-line errors)
            what, where = str(exc), None
        elif exc.errno == errno.ENOSPC:
            what = "disk full (no space left on device)"
        elif isinstance(exc, IsADirectoryError):
            what = "is a directory, expected a file"
        elif isinstance(exc, NotADirectoryError):
            what = "not a directory"
        elif isinstance(exc, FileNotFoundError):
            what = "no such file or directory"
        elif isinstance(exc, PermissionError):
            what = "permission denied"
        else:
            what = (exc.strerror or str(exc) or type(exc).__name__).rstrip(".")
            what = what[0].lower() + what[1:] if what else what
        text = f"{where}: {what}" if where else what
    elif isinstance(exc, json.JSONDecodeError):
        text = f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    elif isinstance(exc, UnicodeDecodeError):
        text = f"not a text file ({exc.reason} at byte {exc.start})"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())  # one line


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a parse error (2, already printed)
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    if args.traceback:
        return int(args.func(args) or 0)
    user_errors = (ValueError, TypeError, OSError, ImportError) + _decode_errors()
    try:
        with warnings.catch_warnings():  # floating-point warnings of intermediate steps are not the user's:
            warnings.simplefilter("ignore", RuntimeWarning)  # results are checked (--traceback shows them)
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED  # quietly: the user asked for it
    except user_errors as exc:
        print(f"rlvrlens {args.command}: error: {describe_error(exc)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
