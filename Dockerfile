# perfloop's image: the worker, the executor and the simulator (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY streams streams
COPY models models
COPY actions actions
COPY perfloop perfloop
RUN pip install --no-cache-dir . && mkdir -p /var/lib/perfloop
ENTRYPOINT ["perfloop"]
