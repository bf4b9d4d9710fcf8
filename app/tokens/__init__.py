"""The token broker: connection rows, sealed caches, keys, refresh locks and slots (no Flask)."""
