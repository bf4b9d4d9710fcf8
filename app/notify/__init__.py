"""Telling people and systems: the delivery queue, webhooks and mail senders (no Flask)."""
