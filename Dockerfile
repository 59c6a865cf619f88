# perfloop's image: the worker (the default command), the executor and the simulator; see
# docker-compose.yml. The wheel is built in a first stage, so the image holds the installed
# package only, and it runs as an unprivileged user.
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY perfloop perfloop
COPY schemas schemas
COPY streams streams
COPY models models
COPY actions actions
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=wheel /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# the state folders exist in the image, owned by perfloop, so that a named volume mounted on
# one of them starts with that owner
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/perfloop \
        --shell /usr/sbin/nologin perfloop \
    && mkdir -p /var/lib/perfloop/worker /var/lib/perfloop/executor \
        /var/lib/perfloop/simulator-executor \
    && chown -R perfloop:perfloop /var/lib/perfloop
USER perfloop:perfloop
WORKDIR /var/lib/perfloop
# worker.http_port and executor.http_port: /healthz and /readyz
EXPOSE 8000 8001
# the worker's readiness (compose sets each service's own check)
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["perfloop", "health", "--ready"]
ENTRYPOINT ["perfloop"]
CMD ["worker"]
