"""A user's trust: factor scores fused on read (see docs/trust.md)."""
