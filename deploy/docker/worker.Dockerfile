# The Crownstream worker image for docker-compose.yml and deploy/k8s (Python 3.11, the project installed).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml setup.py README.md ./
COPY crownstream crownstream
COPY schemas schemas
COPY streams streams
COPY agents agents
COPY sinks sinks
COPY standings standings
COPY notifications notifications
COPY web web
RUN pip install .
# Each replica tells the others where to route queries for the keys it owns: its own address on the network.
CMD ["sh", "-c", "export CROWNSTREAM_CANONICAL_URL=${CROWNSTREAM_CANONICAL_URL:-http://$(hostname -i | cut -d' ' -f1):${CROWNSTREAM_WEB_PORT:-6066}}; crownstream topics create && exec crownstream worker --loglevel ${CROWNSTREAM_LOG_LEVEL:-info}"]
