"""Configuration: precedence, sources, and every way a bad configuration stops start-up with one clear line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcp_server.cli import main
from mcp_server.config import ConfigError, Settings, load_settings, mask_secret, setting_keys


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "config.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    return path


def test_defaults_match_the_spec() -> None:
    """With nothing configured: SPEC defaults, no keys, every value's source is 'default'."""
    settings = load_settings(env={})
    assert settings.retell.base_url == "https://api.retellai.com"
    assert settings.tela.base_url == "https://api.tela.com"
    assert (settings.timeout_seconds, settings.max_retries) == (30, 2)
    assert settings.max_response_bytes == 10 * 1024 * 1024
    assert settings.log_level == "INFO"
    assert not settings.retell.configured and not settings.tela.configured
    assert {settings.source_of(k) for k in setting_keys()} == {"default"}


def test_flags_beat_env_beat_file_beat_defaults(tmp_path: Path) -> None:
    """Each layer overrides the ones below it, and `source_of` says which layer won for each key."""
    path = write(
        tmp_path,
        {"retell": {"api_key": "file-key-123456", "base_url": "https://file.example"}, "timeout_seconds": 5,
         "max_retries": 4, "log_level": "debug"},
    )  # fmt: skip
    env = {"RETELL_BASE_URL": "https://env.example", "RETELL_TELA_MCP_TIMEOUT": "7", "TELA_API_KEY": "tela-env-key"}
    settings = load_settings({"timeout_seconds": 9.5, "log_level": None}, env=env, config_path=path)
    assert settings.timeout_seconds == 9.5 and settings.source_of("timeout_seconds") == "flag"
    assert settings.retell.base_url == "https://env.example" and settings.source_of("retell.base_url") == "env"
    assert settings.max_retries == 4 and settings.source_of("max_retries") == "file"
    assert settings.log_level == "DEBUG" and settings.source_of("log_level") == "file"
    assert settings.max_response_bytes == 10 * 1024 * 1024 and settings.source_of("max_response_bytes") == "default"
    assert settings.retell.api_key is not None and settings.retell.api_key.get_secret_value() == "file-key-123456"
    assert settings.tela.api_key is not None and settings.source_of("tela.api_key") == "env"


def test_config_path_comes_from_env_when_no_flag(tmp_path: Path) -> None:
    """RETELL_TELA_MCP_CONFIG names the file when --config is not given."""
    path = write(tmp_path, {"max_retries": 0})
    assert load_settings(env={"RETELL_TELA_MCP_CONFIG": str(path)}).max_retries == 0


def test_example_config_file_loads_and_shows_every_setting() -> None:
    """config.example.json is valid, holds every setting with its default, and no secret."""
    path = Path(__file__).parent.parent / "config.example.json"
    document = json.loads(path.read_text())
    keys = set()
    for key, value in document.items():
        keys |= {f"{key}.{sub}" for sub in value} if isinstance(value, dict) else {key}
    assert keys == set(setting_keys())
    settings = load_settings(env={}, config_path=path)
    assert settings.model_dump(exclude={"retell", "tela"}) == Settings().model_dump(exclude={"retell", "tela"})
    assert not settings.retell.configured and not settings.tela.configured


def test_empty_key_means_not_configured() -> None:
    """An empty or blank key (as in the example file) counts as no key."""
    settings = load_settings(env={"RETELL_API_KEY": "   "})
    assert settings.retell.api_key is None


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://localhost:9/", "http://[::1]:80", "https://api.example.com/v1/"]
)
def test_https_or_loopback_http_base_urls_are_accepted(url: str) -> None:
    """https anywhere, plain http only on loopback; a trailing slash is dropped."""
    assert load_settings(env={"TELA_BASE_URL": url}).tela.base_url == url.rstrip("/")


BAD_FILES = [
    ('{"timeout_seconds": 30,}', "invalid JSON at line 1"),
    ("[1, 2]", "top level must be a JSON object"),
    ({"timeout": 30}, "key 'timeout': unknown setting"),
    ({"time\nout": 30}, "key 'time\\nout': unknown setting"),
    ({"x" * 500: 1}, "key '" + "x" * 57 + "...': unknown setting"),
    ({"retell": {"apikey": "x"}}, "key 'retell.apikey': unknown setting"),
    ({"retell": "key"}, "key 'retell': should be a JSON object"),
    ({"timeout_seconds": "30"}, "key 'timeout_seconds': input should be a valid number (got a string)"),
    ({"max_retries": 1.5}, "key 'max_retries'"),
    ({"max_retries": True}, "key 'max_retries'"),
    ({"timeout_seconds": -1}, "key 'timeout_seconds': input should be greater than 0"),
    ({"log_level": "LOUD"}, "key 'log_level'"),
    ({"tela": {"base_url": "http://api.tela.com"}}, "key 'tela.base_url': uses plain http://"),
    ({"tela": {"base_url": "ftp://api.tela.com"}}, "key 'tela.base_url': must be an absolute https:// URL"),
    ({"tela": {"base_url": "https://user:pw@api.tela.com"}}, "must not carry a user name or password"),
    ({"retell": {"api_key": 12345}}, "key 'retell.api_key': input should be a valid string (got a number)"),
]


@pytest.mark.parametrize(("document", "problem"), BAD_FILES)
def test_bad_config_file_names_file_key_and_problem(tmp_path: Path, document: Any, problem: str) -> None:
    """Each malformed file raises ConfigError whose one line names the file and the problem."""
    path = write(tmp_path, document)
    with pytest.raises(ConfigError) as caught:
        load_settings(env={}, config_path=path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"config error: {path}: ")
    assert problem in message


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    """A config path that does not exist stops start-up naming the path."""
    with pytest.raises(ConfigError, match=r"config error: .*nope\.json: file not found"):
        load_settings(env={}, config_path=tmp_path / "nope.json")


def test_config_path_that_is_a_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_settings(env={}, config_path=tmp_path)


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"RETELL_TELA_MCP_TIMEOUT": "soon"}, "environment variable RETELL_TELA_MCP_TIMEOUT (timeout_seconds)"),
        ({"RETELL_TELA_MCP_MAX_RETRIES": "-1"}, "environment variable RETELL_TELA_MCP_MAX_RETRIES"),
        ({"RETELL_BASE_URL": "http://10.0.0.5"}, "environment variable RETELL_BASE_URL (retell.base_url): uses plain"),
    ],
)
def test_bad_environment_value_names_the_variable(env: dict[str, str], problem: str) -> None:
    """A bad environment variable is reported by its name and setting."""
    with pytest.raises(ConfigError) as caught:
        load_settings(env=env)
    assert problem in str(caught.value)


def test_bad_config_never_echoes_a_key(tmp_path: Path) -> None:
    """Even when the key is the bad value, the message does not repeat it."""
    path = write(tmp_path, {"retell": {"api_key": ["sk_live_abcdefghijkl"]}})
    with pytest.raises(ConfigError) as caught:
        load_settings(env={}, config_path=path)
    assert "abcdefgh" not in str(caught.value)
    assert "got an array" in str(caught.value)


def test_keys_never_print(tmp_path: Path) -> None:
    """Settings hold keys as SecretStr: neither repr nor str nor a JSON dump shows them."""
    settings = load_settings(env={"RETELL_API_KEY": "key_supersecret_0000"})
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert "supersecret" not in text


def test_masked_key_shows_ends_only() -> None:
    """`check`'s masked form keeps four characters at each end and never eight in a row."""
    assert mask_secret("key_0123456789a1b2") == "key_…a1b2"
    assert "abcdef" not in mask_secret("abcdefgh")


@pytest.mark.parametrize(
    ("argv", "env", "problem"),
    [
        (["--config", "{missing}"], {}, "file not found"),
        (["--timeout-seconds", "0"], {}, "flag --timeout-seconds: input should be greater than 0"),
        ([], {"RETELL_BASE_URL": "http://example.com"}, "RETELL_BASE_URL"),
        (["call", "get_test_run", "--config", "{bad}"], {}, "unknown setting"),
    ],
)
def test_cli_exits_non_zero_with_one_line_and_no_traceback(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: dict[str, str],
    problem: str,
) -> None:
    """Every bad configuration ends start-up with exit 2 and exactly one line on stderr; stdout stays empty."""
    bad = write(tmp_path, {"nope": 1})
    argv = [a.format(missing=tmp_path / "missing.json", bad=bad) for a in argv]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as caught:
        main(argv)
    out, err = capsys.readouterr()
    assert caught.value.code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("retell-tela-mcp: config error: ")
    assert problem in err
    assert "Traceback" not in err


# Issue 10, point 5: config that cannot work is refused at start-up, naming the setting, never quoting the key.
UNUSABLE_KEYS = [
    ("key_abcdefgh12345 ", "leading or trailing whitespace"),
    (" key_abcdefgh12345", "leading or trailing whitespace"),
    ("key_abcdefgh12345\n", "leading or trailing whitespace"),
    ("key_abcd\tefgh12345", "contains whitespace"),
    ("key_abcd efgh12345", "contains whitespace"),
    ("key_abcd\x07efgh12345", "contains a control character"),
    ("key_abcdéfgh12345", "contains non-ASCII text"),
]


@pytest.mark.parametrize(("key", "problem"), UNUSABLE_KEYS)
def test_a_key_that_cannot_be_sent_is_refused_by_env_and_file(tmp_path: Path, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as from_env:
        load_settings(env={"TELA_API_KEY": key})
    with pytest.raises(ConfigError) as from_file:
        load_settings(env={}, config_path=write(tmp_path, {"retell": {"api_key": key}}))
    for caught, where in (
        (from_env, "environment variable TELA_API_KEY (tela.api_key)"),
        (from_file, "'retell.api_key'"),
    ):
        message = str(caught.value)
        assert where in message and problem in message and "\n" not in message
        assert "abcd" not in message and "efgh" not in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://api.example.com:99999", "port that is not a number from 1 to 65535"),
        ("https://api.example.com:0", "has port 0"),
        ("https://api.example.com:http", "port that is not a number"),
        ("http://evil.localhost:8080", "uses plain http:// for host 'evil.localhost'"),
        ("http://localhost.evil.com", "uses plain http://"),
        ("http://127.0.0.1.nip.io", "uses plain http://"),
        ("https://api example.com", "not a valid host name"),
    ],
)
def test_a_base_url_that_cannot_work_is_refused(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"RETELL_BASE_URL": url})
    assert "environment variable RETELL_BASE_URL (retell.base_url): " in str(caught.value)
    assert problem in str(caught.value)


def test_loopback_means_localhost_and_literal_loopback_addresses_only() -> None:
    from mcp_server.config import is_loopback

    assert all(is_loopback(h) for h in ("localhost", "LOCALHOST", "127.0.0.1", "127.9.9.9", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("evil.localhost", "localhost.", "0.0.0.0", "10.0.0.1", "example.com"))


def test_check_refuses_a_bad_key_too(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`check` loads the same settings: an unsendable key stops it with the same one line, before any probe."""
    monkeypatch.setenv("RETELL_API_KEY", "key_abcdefgh12345\n")
    with pytest.raises(SystemExit) as caught:
        main(["check"])
    out, err = capsys.readouterr()
    assert caught.value.code == 2 and out == ""
    assert err.count("\n") == 1 and "RETELL_API_KEY (retell.api_key): has leading or trailing whitespace" in err
    assert "abcdefgh" not in err


@pytest.mark.skipif(__import__("sys").platform == "win32", reason="POSIX mode bits")
def test_a_config_file_with_a_key_others_can_read_gets_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, {"retell": {"api_key": "key_abcdefgh12345"}})
    path.chmod(0o644)
    settings = load_settings(env={}, config_path=path)
    assert settings.warnings == [
        f"warning: {path} holds an API key and other users can read it (mode 0644); run: chmod 600 {path}"
    ]
    path.chmod(0o600)
    assert load_settings(env={}, config_path=path).warnings == []
    path.chmod(0o644)
    with pytest.raises(SystemExit):
        main(["call", "--config", str(path), "no_such_tool"])
    err = capsys.readouterr().err
    assert (
        err.splitlines()[0] == f"retell-tela-mcp: warning: {path} holds an API key and other users can read it "
        f"(mode 0644); run: chmod 600 {path}"
    )
    assert "abcdefgh" not in err


def test_a_readable_config_file_without_keys_gets_no_warning(tmp_path: Path) -> None:
    path = write(tmp_path, {"retell": {"api_key": ""}, "timeout_seconds": 5})
    path.chmod(0o644)
    assert load_settings(env={}, config_path=path).warnings == []


def test_an_auth_token_that_cannot_be_sent_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETELL_TELA_MCP_AUTH_TOKEN", "tök")
    with pytest.raises(SystemExit) as caught:
        main(["serve", "--transport", "http"])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and err.count("\n") == 1
    assert "HTTP auth token" in err and "non-ASCII" in err and "tök" not in err


@pytest.mark.parametrize("port", ["0", "99999", "-1", "http"])
def test_a_serve_port_out_of_range_is_a_usage_error(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["serve", "--transport", "http", "--port", port])
    assert caught.value.code == 2
    assert "not a port number from 1 to 65535" in capsys.readouterr().err
