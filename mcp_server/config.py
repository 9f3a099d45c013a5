"""Settings: pydantic models of every setting, and the loader that layers flags, environment, file and defaults."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_validator

Source = Literal["flag", "env", "file", "default"]

CONFIG_ENV_VAR = "RETELL_TELA_MCP_CONFIG"
AUTH_TOKEN_ENV_VAR = "RETELL_TELA_MCP_AUTH_TOKEN"

# Dotted setting key -> environment variable. Settings absent here have no variable (SPEC: configuration table).
ENV_VARS: dict[str, str] = {
    "retell.api_key": "RETELL_API_KEY",
    "retell.base_url": "RETELL_BASE_URL",
    "tela.api_key": "TELA_API_KEY",
    "tela.base_url": "TELA_BASE_URL",
    "timeout_seconds": "RETELL_TELA_MCP_TIMEOUT",
    "max_retries": "RETELL_TELA_MCP_MAX_RETRIES",
    "log_level": "RETELL_TELA_MCP_LOG_LEVEL",
    "cache_ttl_seconds": "RETELL_TELA_MCP_CACHE_TTL",
    "allow_runs": "RETELL_TELA_MCP_ALLOW_RUNS",
    "allow_edits": "RETELL_TELA_MCP_ALLOW_EDITS",
    "confirm_writes": "RETELL_TELA_MCP_CONFIRM_WRITES",
    "request_state_key": "RETELL_TELA_MCP_REQUEST_STATE_KEY",
    "request_state_store": "RETELL_TELA_MCP_REQUEST_STATE_STORE",
    "oauth_issuer": "RETELL_TELA_MCP_OAUTH_ISSUER",
    "oauth_resource": "RETELL_TELA_MCP_OAUTH_RESOURCE",
    "oauth_keys_max_stale_seconds": "RETELL_TELA_MCP_OAUTH_KEYS_MAX_STALE_SECONDS",
    "cors_origins": "RETELL_TELA_MCP_CORS_ORIGINS",
    "app_views": "RETELL_TELA_MCP_APP_VIEWS",
    "toolsets": "RETELL_TELA_MCP_TOOLSETS",
    "call_transcripts": "RETELL_TELA_MCP_CALL_TRANSCRIPTS",
}
# Settings given as a list: a comma list in an environment variable or a flag.
LIST_SETTINGS = frozenset({"toolsets", "cors_origins"})
# A vendor's toolset lists its tools; `calls` adds, for each vendor listed, the tools that read production calls and
# completion runs: real customers' conversations, which a team may not want an assistant to see.
TOOLSETS = ("retell", "tela", "calls")
VENDOR_TOOLSETS = ("retell", "tela")


class ConfigError(Exception):
    """Raised when the configuration cannot be used; its message is the one line printed before exiting."""


def is_loopback(host: str) -> bool:
    """`localhost`, or a literal address in 127.0.0.0/8 or ::1. Nothing else: `evil.localhost` is a name some
    resolvers send to the network, and no other name is ours to trust."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(value: str) -> str:
    """Accept https:// URLs, and http:// only for loopback hosts, so an API key never crosses a network in clear."""
    parts = urlsplit(value.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("must be an absolute https:// URL such as https://api.example.com")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password; put the API key in its own setting")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query string or fragment")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("has port 0; use a port from 1 to 65535, or none for the scheme's default")
    if not _HOST.fullmatch(host):
        raise ValueError(f"has host {_shown_key(host)!r}, which is not a valid host name or address")
    if parts.scheme == "http" and not is_loopback(host):
        raise ValueError(
            f"uses plain http:// for host {host!r}; use https:// (http:// is allowed only for localhost, "
            "127.0.0.1 and ::1)"
        )
    return value.strip().rstrip("/")


# A host name (letters, digits, hyphens, dots) or an IP address (IPv6 between brackets in the URL: `urlsplit`
# leaves the colons): anything else cannot be a real server and fails later in a confusing way.
_HOST = re.compile(r"[A-Za-z0-9.-]+|[0-9A-Fa-f:.]+(%[A-Za-z0-9]+)?")
# A browser's Origin header: http(s), a host name or bracketed IPv6 address, an optional port; no path, no slash.
_WEB_ORIGIN = re.compile(r"https?://([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?", re.IGNORECASE)


def check_credential(value: str) -> str:
    """An API key (or the HTTP auth token) goes into a header as is: printable ASCII with no space. Whitespace
    around it (a pasted newline) or any other character would be sent, rejected and reported as a network fault,
    so refuse it here. The message never quotes the value."""
    if value != value.strip():
        raise ValueError("has leading or trailing whitespace (a pasted newline or space?); remove it")
    bad = next((char for char in value if not ("!" <= char <= "~")), None)
    if bad is not None:
        what = "whitespace" if bad.isspace() else "a control character" if not bad.isprintable() else "non-ASCII text"
        raise ValueError(f"contains {what}; it must be printable ASCII without spaces")
    return value


def check_store_url(value: str) -> str:
    """A Redis URL: `redis://` (or `rediss://`, over TLS, verified against the system's CAs), a host, and optionally
    a user and password, a port and a database number; nothing else, so that whatever starts also connects. The
    message never quotes it: it may hold a password."""
    if value != value.strip() or any(not ("!" <= char <= "~") for char in value):
        raise ValueError("contains whitespace, a control character or non-ASCII text; percent-encode them")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError("is not a valid URL (has it a port that is not a number from 1 to 65535?)") from None
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError("must be a redis:// or rediss:// URL such as redis://:password@redis.internal:6379/0")
    if not parts.hostname or not _HOST.fullmatch(parts.hostname) or port == 0:
        raise ValueError("needs a host (and a port from 1 to 65535, if any): redis://:password@host:6379/0")
    if not re.fullmatch(r"/?|/[0-9]+", parts.path) or parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ValueError("may end only in a database number (redis://host:6379/0): no other path, query or fragment")
    return value


def shown_store_url(url: str) -> str:
    """The store's URL as `check` and the logs show it: its password masked like a key."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{mask_secret(unquote(parts.password))}@{host}"))


class VendorSettings(BaseModel):
    """One vendor's API key and base URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr | None = None
    base_url: str

    @field_validator("api_key", mode="after")
    @classmethod
    def _usable_key(cls, value: SecretStr | None) -> SecretStr | None:
        """An empty (or blank) key is no key; any other must be sendable as it is."""
        if value is None or not value.get_secret_value().strip():
            return None
        check_credential(value.get_secret_value())
        return value

    @field_validator("base_url", mode="after")
    @classmethod
    def _safe_base_url(cls, value: str) -> str:
        return check_base_url(value)

    @property
    def configured(self) -> bool:
        return self.api_key is not None


class RetellSettings(VendorSettings):
    base_url: str = "https://api.retellai.com"


class TelaSettings(VendorSettings):
    base_url: str = "https://api.tela.com"


class Settings(BaseModel):
    """Everything the server needs to run; see the SPEC's configuration table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retell: RetellSettings = RetellSettings()
    tela: TelaSettings = TelaSettings()
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    max_retries: int = Field(default=2, ge=0, le=10)
    max_response_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=1024**3)
    # Vendor body bytes read and parsed at once, across all calls: a parsed answer of many small keys takes ~10x
    # its bytes, so this, not the number of calls, bounds the memory a burst of large answers can take.
    max_inflight_bytes: int = Field(default=16 * 1024 * 1024, ge=64 * 1024, le=1024**3)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    cache_ttl_seconds: float = Field(default=600.0, ge=0)
    cache_ttl_unfinished_seconds: float = Field(default=0.0, ge=0)
    cache_ttl_tela_seconds: float = Field(default=0.0, ge=0)
    cache_max_entries: int = Field(default=1000, ge=0)
    cache_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    # Serving over HTTP: a connection must send each request's headers within this time, and at most this many
    # connections are open at once, so slow or idle clients cannot hold the server.
    http_header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    http_max_connections: int = Field(default=200, ge=1, le=100_000)
    # Politeness toward each vendor: connections open to it at once; a burst past this waits its turn.
    vendor_max_connections: int = Field(default=100, ge=1, le=1000)
    # Off by default: the tools that start runs (and spend vendor credits) are not even listed unless enabled.
    allow_runs: bool = False
    # Off by default: the tools that write tests and draft new versions are not listed unless enabled.
    allow_edits: bool = False
    # Every write asks the user first, where the client can be asked (elicitation); false: the opt-in is the consent.
    confirm_writes: bool = True
    # Stateless HTTP replicas seal a write's confirmation round trip (protocol 2026-07-28) with this shared key, so
    # any replica can take the answer; without it each process makes its own key and a round trip must come back to
    # the replica that asked.
    request_state_key: SecretStr | None = None
    # Where replicas sharing that key note the confirmations already used (a Redis URL, which may hold a password),
    # so one answer sends one write on any replica; without it each process remembers its own.
    request_state_store: SecretStr | None = None
    # HTTP: accept JWT access tokens from this OAuth issuer (for this server's public URL, `oauth_resource`) instead
    # of the static token. Both or neither.
    oauth_issuer: str | None = None
    oauth_resource: str | None = None
    # HTTP, OAuth: the issuer's keys are used at most this long after the load that fetched them; past it, and while
    # the issuer cannot be reached to load them again, tokens are refused with 503 (a withdrawn key stops working).
    oauth_keys_max_stale_seconds: float = Field(default=3600.0, gt=0, allow_inf_nan=False)
    # HTTP: browser origins (`https://app.example.com`) whose pages may call /mcp: CORS preflights are answered for
    # them, and they pass the Origin check as `--allowed-origin` ones do. Empty: no page of another origin may call.
    cors_origins: list[str] = Field(default_factory=list)
    # MCP App views of a batch and a run, for clients that declared the extension (others never see them).
    app_views: bool = True
    # Which vendors' tools, prompts and resources are listed: most users have one vendor, and every tool listed
    # costs context on every turn.
    toolsets: list[str] = Field(default_factory=lambda: list(TOOLSETS))
    # Which transcript of a Retell call is shown: the PII-scrubbed one whenever Retell has one, or the full one.
    call_transcripts: Literal["scrubbed", "full"] = "scrubbed"

    _sources: dict[str, Source] = PrivateAttr(default_factory=dict)
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @field_validator("request_state_key", mode="after")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if len(value.get_secret_value().encode()) < 32:
            raise ValueError("must be at least 32 bytes (for example the output of: openssl rand -hex 32)")
        return value

    @field_validator("request_state_store", mode="after")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        check_store_url(value.get_secret_value())
        return value

    @field_validator("oauth_issuer", "oauth_resource", mode="after")
    @classmethod
    def _safe_oauth_url(cls, value: str | None) -> str | None:
        """https:// (http:// only on loopback), like a base URL, so no token crosses a network in clear. Kept as
        written, trailing slash and all: tokens' `iss` and `aud` are compared with it as strings."""
        if value is None or not value.strip():
            return None
        check_base_url(value)
        return value.strip()

    @field_validator("cors_origins", mode="after")
    @classmethod
    def _web_origins(cls, value: list[str]) -> list[str]:
        """Each a web origin as browsers send it (`scheme://host[:port]`, nothing after), kept lower-case and once."""
        for origin in value:
            match = _WEB_ORIGIN.fullmatch(origin.strip())
            if match is None or not 0 < int((match[3] or ":443")[1:]) <= 65535:
                raise ValueError(f"{_shown_key(origin)!r} is not an origin such as https://app.example.com")
        return list(dict.fromkeys(origin.strip().lower() for origin in value))

    @field_validator("toolsets", mode="after")
    @classmethod
    def _known_toolsets(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in TOOLSETS]
        if unknown:
            raise ValueError(f"unknown toolset {_shown_key(unknown[0])!r} (known: {', '.join(TOOLSETS)})")
        if not any(name in VENDOR_TOOLSETS for name in value):
            raise ValueError("names no vendor's toolset; give retell, tela or both (and calls, to add calls)")
        return [name for name in TOOLSETS if name in value]  # one order, each once

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    def source_of(self, key: str) -> Source:
        """Where the effective value of a dotted setting key came from."""
        return self._sources.get(key, "default")

    @property
    def warnings(self) -> list[str]:
        """One-line warnings about settings that work but should not be left as they are."""
        return list(self._warnings)

    def secrets(self) -> list[str]:
        """The configured API keys (and the request-state key, and the store's password as written in its URL and
        decoded) in clear, for redaction only."""
        keys = [v.api_key.get_secret_value() for v in (self.retell, self.tela) if v.api_key is not None]
        keys += [self.request_state_key.get_secret_value()] if self.request_state_key is not None else []
        password = urlsplit(self.request_state_store.get_secret_value()).password if self.request_state_store else None
        return keys + ([password, unquote(password)] if password else [])


def setting_keys() -> list[str]:
    """Every dotted setting key, in declaration order (vendor sections expanded)."""
    keys: list[str] = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(f"{name}.{sub}" for sub in annotation.model_fields)
        else:
            keys.append(name)
    return keys


def mask_secret(secret: str) -> str:
    """Show a key as `key_…a1b2`: enough to tell two keys apart, never eight characters in a row."""
    return f"{secret[:4]}…{secret[-4:]}" if len(secret) >= 12 else "…" * 3


def _unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        head, _, tail = key.partition(".")
        if tail:
            nested.setdefault(head, {})[tail] = value
        else:
            nested[head] = value
    return nested


def _flatten(document: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{sub}": inner for sub, inner in value.items()})
        else:
            flat[key] = value
    return flat


def _describe_error(error: Mapping[str, Any]) -> tuple[str, str]:
    """(dotted key, problem) for a pydantic error, in words a user can act on, never echoing the input."""
    key = _shown_key(".".join(str(part) for part in error["loc"])) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        parent, _, _ = key.rpartition(".")
        known = Settings.model_fields if not parent else VendorSettings.model_fields
        return key, f"unknown setting (known here: {', '.join(known)})"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return key, "should be a JSON object"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    if kind.endswith("_type") and "input" in error:
        message += f" (got {_json_type(error['input'])})"  # the type only: the value may be a secret
    return key, message


def _shown_key(key: str) -> str:
    """A key as it can appear in a one-line message: control characters escaped, and clipped."""
    shown = key if key.isprintable() else key.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _json_type(value: object) -> str:
    names = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config error: {path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config error: {path}: is a directory, not a JSON file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config error: {path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"config error: {path}: cannot be read ({exc.strerror})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"config error: {path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(f"config error: {path}: the top level must be a JSON object, not {type(document).__name__}")
    try:
        # Strict: a JSON file has real types, so "30" for a number is a mistake worth reporting, not coercing.
        Settings.model_validate(document, strict=True)
    except ValidationError as exc:
        key, problem = _describe_error(exc.errors()[0])
        raise ConfigError(f"config error: {path}: key '{key}': {problem}") from None
    return document


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_path: str | os.PathLike[str] | None = None,
) -> Settings:
    """Build the settings from, highest first: command-line flags, environment variables, the JSON file, defaults.

    `flags` maps dotted keys (`retell.base_url`, `timeout_seconds`) to values, `None` meaning not given.
    `env` defaults to `os.environ`; the config file is `config_path`, else `$RETELL_TELA_MCP_CONFIG`, else none.
    Raises `ConfigError` with a one-line message naming the file or variable, the key and the problem.
    """
    env = os.environ if env is None else env
    path_text = config_path if config_path is not None else env.get(CONFIG_ENV_VAR) or None
    file_values = _flatten(_read_file(Path(path_text))) if path_text is not None else {}
    env_values: dict[str, Any] = {key: env[var] for key, var in ENV_VARS.items() if env.get(var, "").strip()}
    flag_values = {key: value for key, value in (flags or {}).items() if value is not None}
    for values in (env_values, flag_values):
        for key in LIST_SETTINGS & values.keys():
            if isinstance(values[key], str):
                values[key] = [part.strip() for part in values[key].split(",") if part.strip()]

    merged: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    layers: tuple[tuple[Source, dict[str, Any]], ...] = (
        ("file", file_values),
        ("env", env_values),
        ("flag", flag_values),
    )
    for source, values in layers:
        for key, value in values.items():
            merged[key] = value
            sources[key] = source
    try:
        settings = Settings.model_validate(_unflatten(merged))
    except ValidationError as exc:
        key, problem = _describe_error(exc.errors()[0])
        origin = sources.get(key)
        if origin == "env":
            raise ConfigError(f"config error: environment variable {ENV_VARS[key]} ({key}): {problem}") from None
        if origin == "flag":
            raise ConfigError(f"config error: flag --{key.replace('.', '-').replace('_', '-')}: {problem}") from None
        raise ConfigError(f"config error: {path_text}: key '{key}': {problem}") from None
    settings._sources.update(sources)
    if settings.request_state_key is not None and settings.request_state_store is None:
        settings._warnings.append(
            "warning: request_state_key is set without request_state_store: replicas sharing the key take each "
            "other's write confirmations, but each remembers only those used on itself; set request_state_store to "
            "a Redis URL they share"
        )
    if path_text is not None and any(file_values.get(f"{vendor}.api_key") for vendor in ("retell", "tela")):
        settings._warnings.extend(_exposure_warning(Path(path_text)))
    return settings


def _exposure_warning(path: Path) -> list[str]:
    """Like ssh with a private key: a file holding an API key that other users can read deserves a word."""
    if sys.platform == "win32":
        return []  # ACLs, not mode bits: nothing this check could read reliably
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return []
    if not mode & (stat.S_IRGRP | stat.S_IROTH):
        return []
    return [f"warning: {path} holds an API key and other users can read it (mode {mode:04o}); run: chmod 600 {path}"]
