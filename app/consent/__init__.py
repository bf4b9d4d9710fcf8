"""Admin consent: requests and their notices, tenant-wide consents, readiness, expiry (no Flask)."""
