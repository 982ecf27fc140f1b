# One image for every process of the exchange; the container's command chooses the role (k8s/base):
#   python manage.py serve_web | serve_websockets | run_matching_worker --shard-from-hostname | prepare_exchange
#   python -m celery -A exchange worker | beat
# Built by `make build-adaptive`. The project goes in as its wheel, built in a first stage with its pinned
# dependencies; the running image has no compiler, no source tree and no root user.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheels
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exchange ./exchange
COPY matching ./matching
COPY matching_worker ./matching_worker
COPY migrations_admin ./migrations_admin
COPY benchmarks ./benchmarks
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 DJANGO_SETTINGS_MODULE=exchange.settings \
    STATIC_ROOT=/app/static EXCHANGE_VAR_DIR=/tmp/exchange PORT=8080 WEBSOCKET_PORT=8081
RUN useradd --uid 10001 --user-group --home-dir /app --create-home exchange
COPY --from=wheels /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels exchange-backoffice && rm -rf /wheels
WORKDIR /app
COPY --chown=exchange:exchange manage.py ./
COPY --chown=exchange:exchange deploy/docker/health-check /app/health-check
# collectstatic reads the settings, which need a database and Redis named (never reached here) to skip the
# embedded servers.
RUN DB_HOST=unused REDIS_HOST=unused python manage.py collectstatic --noinput --verbosity 0 \
    && chmod 0555 /app/health-check
USER 10001:10001
EXPOSE 8080 8081
CMD ["python", "manage.py", "serve_web"]
