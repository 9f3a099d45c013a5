"""Every failure a tool can report, each carrying its contract code (SPEC: Errors).

UpstreamError                        base; never raised itself
 ├── InvalidArgument                 invalid_argument       the ID cannot be valid; nothing was sent
 ├── NotConfigured                   not_configured         no API key for that vendor; nothing was sent
 ├── Unauthorized                    unauthorized           HTTP 401
 ├── Forbidden                       forbidden              HTTP 403
 ├── NotFound                        not_found              HTTP 404 (and Retell's 422 "cannot find")
 ├── RateLimited                     rate_limited           HTTP 429 still returned after retries
 ├── UpstreamFault                   upstream_error         other 4xx, or 5xx after retries
 ├── UpstreamTimeout                 timeout                no answer in time, after retries
 ├── Unreachable                     unreachable            connection refused/reset, DNS, TLS, after retries
 ├── BadUpstreamResponse             bad_upstream_response  a 2xx whose body is not a JSON object, or too large
 ├── Declined                        declined               the user declined or cancelled a write, or its confirmation
 │                                                          was already used; nothing was sent
 ├── UnsafeEdit                      unsafe_edit            a write would change what live traffic uses; not sent
 └── Unconfirmed                     unconfirmed            a write must be confirmed but cannot be (the client cannot
                                                            be asked here, or used ones cannot be checked); not sent
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

Provider = Literal["retell", "tela"]

PROVIDER_NAMES: dict[Provider, str] = {"retell": "Retell", "tela": "Tela"}


class UpstreamError(Exception):
    """A call that cannot return the vendor's object; `payload()` is the JSON the client sees."""

    code: ClassVar[str] = "upstream_error"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        provider: Provider,
        status: int | None = None,
        retry_after_seconds: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider: Provider = provider
        self.status = status
        self.retry_after_seconds = retry_after_seconds
        # None: the class's rule. False for a request that may have started a run: it must never be sent again.
        self._retryable = retryable

    @property
    def is_retryable(self) -> bool:
        return self._retryable_by_kind() if self._retryable is None else self._retryable

    def _retryable_by_kind(self) -> bool:
        return self.retryable

    def payload(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code,
            "provider": self.provider,
            "status": self.status,
            "message": self.message,
            "retryable": self.is_retryable,
        }
        if self.retry_after_seconds is not None:
            error["retry_after_seconds"] = round(self.retry_after_seconds, 3)
        return {"error": error}


class InvalidArgument(UpstreamError):
    """Raised before any request when an ID has a shape no ID of that vendor has."""

    code = "invalid_argument"


class NotConfigured(UpstreamError):
    """Raised before any request when the vendor has no API key configured."""

    code = "not_configured"


class Unauthorized(UpstreamError):
    """Raised on HTTP 401: the vendor rejected the API key."""

    code = "unauthorized"


class Forbidden(UpstreamError):
    """Raised on HTTP 403: the key is valid but may not read this object."""

    code = "forbidden"


class NotFound(UpstreamError):
    """Raised on HTTP 404 (and Retell's 422 "cannot find requested asset"): no such object."""

    code = "not_found"


class RateLimited(UpstreamError):
    """Raised on HTTP 429 once retries are spent or the vendor's wait would pass the call's deadline."""

    code = "rate_limited"
    retryable = True


class UpstreamFault(UpstreamError):
    """Raised on any other 4xx, and on 5xx once retries are spent; carries the vendor's own message."""

    code = "upstream_error"

    def _retryable_by_kind(self) -> bool:
        return self.status is not None and (self.status >= 500 or self.status in (408, 409))


class UpstreamTimeout(UpstreamError):
    """Raised when no complete answer arrived within the timeout, after retries."""

    code = "timeout"
    retryable = True


class Unreachable(UpstreamError):
    """Raised when the connection failed (refused, reset, DNS, TLS), after retries."""

    code = "unreachable"
    retryable = True


class BadUpstreamResponse(UpstreamError):
    """Raised on a 2xx whose body is not a JSON object, or is larger than `max_response_bytes`."""

    code = "bad_upstream_response"


class Declined(UpstreamError):
    """Raised when the user declines or cancels a write's confirmation, or the confirmation was already used once:
    nothing was sent."""

    code = "declined"


class UnsafeEdit(UpstreamError):
    """Raised when a write would change what live traffic uses, or that cannot be proven not to (a published
    version, a shared engine, a draft that a phone number or a handoff would serve at once): only the reads that
    found it were made. `lasting`: the same call would be refused again whatever the user pins."""

    code = "unsafe_edit"

    def __init__(
        self, message: str, *, provider: Provider, lasting: bool = False, retryable: bool | None = None
    ) -> None:
        super().__init__(message, provider=provider, retryable=retryable)
        self.lasting = lasting


class Unconfirmed(UpstreamError):
    """Raised when a write must be confirmed but cannot be: over stateless HTTP a handshake-era client's capabilities
    are unknown, or the store of used confirmations cannot be reached. Nothing was sent."""

    code = "unconfirmed"
