"""rlvrlens.dynamics (built by a later issue)."""
