"""Data for tools: the read-only proxy to a connection's resource, and tables exported from it."""
