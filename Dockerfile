# syntax=docker/dockerfile:1
# One image for every role: `serve` (default), `worker`, `beat`, `migrate`, `rotate-keys`, `token`.
#   docker build -t llm-providers .
#   docker run --rm -p 8080:8080 -e LLMP_ENV=production -e LLMP_DATABASE_URL=... llm-providers
ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the project and its dependencies into a self-contained virtualenv -------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# .dockerignore limits the context to pyproject.toml, the README and the four packages.
COPY . .
RUN pip install . \
    && llm-providers --help >/dev/null

# --- runtime: the virtualenv and a non-root user, nothing else --------------------------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LLMP_DATA_DIR=/var/lib/llm-providers
RUN groupadd --system --gid 10001 llmp \
    && useradd --system --uid 10001 --gid llmp --no-create-home \
       --home-dir /var/lib/llm-providers --shell /usr/sbin/nologin llmp \
    && install -d -o llmp -g llmp -m 0750 /var/lib/llm-providers
# Owned by root and read-only to the service user: the running code cannot be altered.
COPY --from=build /opt/venv /opt/venv
WORKDIR /var/lib/llm-providers
USER 10001:10001

EXPOSE 8080
# Liveness of the API (the default command). docker-compose.yml gives the worker and the scheduler
# their own checks and the one-shot `migrate` none.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

ENTRYPOINT ["llm-providers"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
