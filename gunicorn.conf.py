"""Production gunicorn settings for `consent-portal serve`; every value can be overridden."""

import multiprocessing
import os

bind = os.environ.get("PORTAL_BIND", "0.0.0.0:8000")
# Threaded workers: a token exchange blocks on Entra for up to the outbound timeout.
worker_class = "gthread"
workers = int(os.environ.get("PORTAL_WORKERS", min(4, multiprocessing.cpu_count() * 2)))
threads = int(os.environ.get("PORTAL_THREADS", 8))
timeout = int(os.environ.get("PORTAL_WORKER_TIMEOUT", 60))
graceful_timeout = 30  # finish requests in flight on SIGTERM
keepalive = 5
forwarded_allow_ips = os.environ.get("PORTAL_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
# %(U)s is the path without the query string: callbacks carry codes and states (C40).
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
