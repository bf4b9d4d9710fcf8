"""Performance ratios of the portal under its production gunicorn configuration (make bench)."""
