"""Two stateless replicas behind a real balancer (Debian's nginx, configured as docs/deployment.md shows) take the same
OAuth tokens with nothing shared but the issuer, through the SDK client's own OAuth flow."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import TOOL_NAMES
from tests.oidc import authorization_server, install
from tests.test_http import free_port, healthy, http_server
from tests.test_oauth import JOB, MemoryStorage, User, oauth_env, sdk_oauth

DEPLOYMENT = Path(__file__).resolve().parent.parent / "docs" / "deployment.md"


def proxy_location() -> str:
    """The `location /` block of docs/deployment.md's nginx configuration: what the test balancer runs."""
    text = DEPLOYMENT.read_text(encoding="utf-8")
    match = re.search(r"^    (location / \{\n.*?^    \})$", text, re.S | re.M)
    assert match, "docs/deployment.md has no nginx `location / { ... }` block"
    return match[1]


@contextmanager
def nginx(directory: Path, port: int, replicas: list[int]) -> Iterator[str]:
    """nginx on 127.0.0.1:`port`, round-robin over the replicas, proxying as the deployment guide says (plain HTTP
    here: TLS is the balancer's own business)."""
    binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if binary is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx): the balancer test needs a real one")
    upstreams = "\n".join(f"        server 127.0.0.1:{replica};" for replica in replicas)
    (directory / "nginx.conf").write_text(
        f"""
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
daemon off;
events {{ worker_connections 64; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    upstream retell_tela_mcp {{
{upstreams}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name 127.0.0.1;
    {proxy_location()}
    }}
}}
"""
    )
    process = subprocess.Popen(
        [binary, "-p", str(directory), "-c", str(directory / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not healthy(url, process, 20):
            error = (directory / "error.log").read_text() if (directory / "error.log").exists() else ""
            raise AssertionError(f"nginx did not start: {error[-1500:]}")
        yield url
    finally:
        process.terminate()
        process.wait(10)
        assert process.stderr is not None
        process.stderr.close()


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_two_stateless_replicas_behind_nginx_accept_the_same_tokens(tmp_path: Path, mode: str) -> None:
    """nginx spreads one SDK client's requests (2026-07-28, or a 2025-11-25 client that opens a session) over two
    `--stateless` replicas that share no state: the 401 through the balancer points at its public URL, the client
    completes its OAuth flow once, and both replicas accept the token it got (each loading the issuer's keys on its
    own) and serve its calls."""
    directory = install()
    port, replicas = free_port(), [free_port(), free_port()]
    public = f"http://127.0.0.1:{port}"
    logs: list[str] = []
    with authorization_server(directory) as idp, ExitStack() as stack:
        env = oauth_env(idp.issuer, f"{public}/mcp")
        for replica in replicas:
            stack.enter_context(http_server("--stateless", port=replica, env=env, logs=logs))
        url = stack.enter_context(nginx(tmp_path, port, replicas))
        refused = httpx2.post(f"{url}/mcp", json={}, headers={"accept": "application/json, text/event-stream"})
        user, storage = User(idp.issuer, "alice", [None]), MemoryStorage()
        async with (
            httpx2.AsyncClient(auth=sdk_oauth(url, user, storage)) as http,
            Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=mode) as client,
        ):
            tools = [tool.name for tool in (await client.list_tools()).tools]
            results = [await client.call_tool("get_test_run", JOB) for _ in range(6)]
        fetched = idp.stats()["jwks"]
    assert (
        refused.status_code == 401
        and f'resource_metadata="{public}/.well-known/oauth-protected-resource/mcp"'
        in (refused.headers["www-authenticate"])
    )
    assert len(user.urls) == 1 and tools == TOOL_NAMES and all(r.is_error is False for r in results)
    calls = [log.count("tool=get_test_run") for log in logs]
    assert sum(calls) == 6 and min(calls) >= 2, calls  # both replicas served calls with the one token
    assert fetched == 2  # one JWKS fetch per replica: the only thing they share is the issuer


ROOT = DEPLOYMENT.parent.parent


def test_the_image_recipe_installs_only_the_wheel_and_runs_it_as_an_unprivileged_user() -> None:
    """The Dockerfile's last stage takes the wheel from the build stage (no sources), installs it, then runs as uid
    10001 serving stateless HTTP; the build context is the package alone, so no `.env`, key file or `.venv` is sent."""
    stages = re.split(r"^FROM ", (ROOT / "Dockerfile").read_text(encoding="utf-8"), flags=re.M)[1:]
    build, final = stages[0], stages[-1]
    assert "wheel" in build.split("\n", 1)[0] and "pip wheel" in build
    assert re.search(r"^COPY --from=wheel /dist/ ", final, re.M) and not re.search(r"^COPY (?!--from)", final, re.M)
    assert final.index("pip install") < final.index("USER 10001:10001")
    assert not re.search(r"^USER (0|root)\b", final, re.M)
    assert 'ENTRYPOINT ["retell-tela-mcp"]' in final and '"--stateless"' in final and '"0.0.0.0"' in final
    rules = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*" and {rule for rule in rules if rule.startswith("!")} == {
        "!pyproject.toml", "!README.md", "!mcp_server/"
    }  # fmt: skip
