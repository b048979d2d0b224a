"""Compose: which stored items go into an edition, in which sections (pure; no clock, no I/O)."""
