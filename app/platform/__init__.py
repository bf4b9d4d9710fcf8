"""The Flask glue: settings, services bound to the app, sessions, logs, metrics, headers."""
