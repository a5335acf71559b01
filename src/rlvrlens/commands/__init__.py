"""Subcommands of the ``rlvrlens`` CLI: one module per layer, each with ``register(subparsers)``."""
