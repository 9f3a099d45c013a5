# retell-tela-mcp over Streamable HTTP, for replicas behind a balancer (docs/deployment.md).
#   docker build -t retell-tela-mcp .          (or: podman build -t retell-tela-mcp .)
#   docker run -p 8000:8000 -e RETELL_API_KEY -e TELA_API_KEY \
#     -e RETELL_TELA_MCP_OAUTH_ISSUER=https://login.example.com -e RETELL_TELA_MCP_OAUTH_RESOURCE=https://mcp.example.com/mcp \
#     retell-tela-mcp
# The first stage builds the wheel; the image holds only that wheel installed in a virtual environment, and runs it as
# an unprivileged user. Bound to 0.0.0.0 it refuses to start without OAuth or RETELL_TELA_MCP_AUTH_TOKEN.
# PYTHON_IMAGE is any Debian-like image with python3 (3.11 or newer) and its venv module.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mcp_server ./mcp_server
RUN python3 -m venv /build && /build/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 mcp \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mcp
COPY --from=wheel /dist/ /tmp/dist/
RUN python3 -m venv /opt/retell-tela-mcp \
    && /opt/retell-tela-mcp/bin/pip install --no-cache-dir /tmp/dist/*.whl \
    && rm -rf /tmp/dist
ENV PATH=/opt/retell-tela-mcp/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["retell-tela-mcp"]
CMD ["serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8000", "--stateless"]
