# Slim production image: consent-portal serve (gunicorn), non-root, with a health check.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY app ./app
COPY entra_emulator ./entra_emulator
RUN python -m venv /opt/portal \
 && /opt/portal/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11-slim
ENV PATH=/opt/portal/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORTAL_PRODUCTION=true \
    PORTAL_INSTANCE_PATH=/var/lib/portal \
    PORTAL_BIND=0.0.0.0:8000
RUN useradd --system --uid 10001 --home-dir /var/lib/portal --create-home portal
COPY --from=build /opt/portal /opt/portal
WORKDIR /srv/portal
COPY gunicorn.conf.py ./
COPY templates ./templates
COPY static ./static
COPY migrations ./migrations
COPY app ./app
USER portal
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
CMD ["consent-portal", "serve"]
