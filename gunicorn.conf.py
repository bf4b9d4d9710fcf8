"""Production gunicorn settings for `consent-portal serve`; every value can be overridden."""

import json
import multiprocessing
import os
import shutil
from pathlib import Path

from gunicorn import util
from gunicorn.glogging import Logger

bind = os.environ.get("PORTAL_BIND", "0.0.0.0:8000")
# Threaded workers: a token exchange blocks on Entra for up to the outbound timeout. Threads are
# cheap and mostly wait on I/O; at most PORTAL_REFRESH_CONCURRENCY (4) of them wait on Entra for
# refreshes at once, so the others stay free for /healthz, /readyz and cached tokens.
worker_class = "gthread"
workers = int(os.environ.get("PORTAL_WORKERS", min(4, multiprocessing.cpu_count() * 2)))
threads = int(os.environ.get("PORTAL_THREADS", 16))
timeout = int(os.environ.get("PORTAL_WORKER_TIMEOUT", 60))
graceful_timeout = int(os.environ.get("PORTAL_GRACEFUL_TIMEOUT", 30))  # finish requests in flight
keepalive = 5
# gunicorn applies X-Forwarded-Proto only from these peers; by default the same proxies the app
# trusts for X-Forwarded-For (PORTAL_TRUSTED_PROXIES; none: nobody).
forwarded_allow_ips = os.environ.get("PORTAL_FORWARDED_ALLOW_IPS") or os.environ.get(
    "PORTAL_TRUSTED_PROXIES", ""
)
# gunicorn's own header limits (its defaults) answer before the app: a request line over 4094
# bytes (414), a field over 8190 bytes or over 100 fields (431), in JSON (write_json_error below).
# Within them, the app refuses headers over PORTAL_HEADER_MAX_BYTES in all, in JSON on /api/.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190


def write_json_error(sock, status_int, reason, mesg):  # noqa: ANN001, ANN201 - gunicorn's
    """Answer a request gunicorn refuses before the app sees it in the API's JSON, not HTML.

    The path is not known yet (the headers did not parse), so every such refusal is JSON; mesg
    can quote the request, so only the reason is sent.
    """
    code = "invalid_request" if status_int < 500 else "server_error"
    body = json.dumps({"error": code, "error_description": reason}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
        f"Cache-Control: no-store\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = write_json_error  # workers/base.py calls util.write_error for these answers
errorlog = "-"
# The portal writes its own access line per request, in JSON and with the request id
# (app/platform/logs.py).
# PORTAL_GUNICORN_ACCESS_LOG=1 adds gunicorn's; %(U)s is the path without the query string:
# callbacks carry codes and states (C40).
GUNICORN_ACCESS_LOG = os.environ.get("PORTAL_GUNICORN_ACCESS_LOG") == "1"
accesslog = "-" if GUNICORN_ACCESS_LOG else None
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.platform.logs.JsonFormatter"}},
    "filters": {"redact": {"()": "app.platform.logs.RedactSecrets"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["redact"],
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": []},  # the app installs its own (app/platform/logs.py)
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}


class PortalLogger(Logger):
    """gunicorn's logger, writing gunicorn's access line only when it was asked for."""

    def access(self, resp, req, environ, request_time):  # noqa: ANN001, ANN201
        """Skip the line unless PORTAL_GUNICORN_ACCESS_LOG=1.

        gunicorn turns its access log on whenever logconfig_dict is set, which would add a
        second line per request (and its formatting cost) to the portal's own.
        """
        if GUNICORN_ACCESS_LOG:
            super().access(resp, req, environ, request_time)


logger_class = PortalLogger

# Prometheus: every worker writes its samples under one folder; /metrics sums them. The folder
# lives in this instance's folder, is emptied when the master starts and is set before any worker
# imports prometheus_client.
_instance = Path(os.environ.get("PORTAL_INSTANCE_PATH") or "instance").resolve()
_metrics_dir = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or _instance / "prometheus")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)


def on_starting(server):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """Empty the metrics folder: samples of a previous run's workers must not be summed."""
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    _metrics_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


def child_exit(server, worker):  # noqa: ANN001, ANN201
    """Tell prometheus_client that a worker is gone (its live gauges are dropped)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
