"""rlvrlens.training (built by a later issue)."""
