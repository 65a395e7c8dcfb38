"""Who may use the console's server: the authentication middleware and the bind rule.

With a token or a password configured (:class:`~qops.console.settings.ConsoleSettings`),
:class:`AuthMiddleware` answers ``401`` with a ``WWW-Authenticate`` challenge to every
request without valid credentials: the console pages, the JSON APIs, ``/docs``,
``/openapi.json`` and ``/static`` alike. Credentials are an ``Authorization: Bearer <token>``
header, or HTTP Basic (user name and password, which browsers prompt for). Secrets are
compared in constant time and never taken from a URL.

:func:`check_bind` is the bind rule: a loopback address is always served; any other address
only with authentication configured.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import logging
from dataclasses import dataclass

from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from qops.console.settings import ConsoleSettings
from qops.errors import QopsError

logger = logging.getLogger(__name__)

REALM = "qops"
"""The protection space named in the ``WWW-Authenticate`` challenges."""


class UnauthenticatedBindError(QopsError):
    """The server was asked to listen on a non-loopback address without authentication.

    Args:
        host: The address it was asked to bind.
    """

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(
            f"refusing to serve on {host}, which is not a loopback address, without "
            "authentication: set QOPS_CONSOLE_TOKEN or QOPS_CONSOLE_PASSWORD (or use a "
            "qops-console block), or bind 127.0.0.1"
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or an address in 127.0.0.0/8 or ``::1``.

    Any other name or address (``0.0.0.0``, ``::``, a host name, a LAN address) is not.
    """
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ConsoleAuth:
    """The credentials the server accepts (at least one of token and password).

    Attributes:
        token: Accepted as ``Authorization: Bearer <token>``, and as the HTTP Basic
            password of ``user`` (so a browser can use it too).
        user: The HTTP Basic user name.
        password: Accepted as the HTTP Basic password of ``user``.
    """

    token: SecretStr | None
    user: str
    password: SecretStr | None

    @classmethod
    def from_settings(cls, settings: ConsoleSettings) -> ConsoleAuth | None:
        """The credentials ``settings`` configure, or ``None`` when they configure none."""
        if not settings.auth_configured:
            return None
        token = settings.console_token
        password = settings.console_password
        return cls(
            token=token if token is not None and token.get_secret_value() else None,
            user=settings.console_user,
            password=password if password is not None and password.get_secret_value() else None,
        )

    def _secrets(self) -> list[bytes]:
        return [s.get_secret_value().encode() for s in (self.token, self.password) if s]

    def accepts(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries valid credentials."""
        if not authorization:
            return False
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer" and self.token is not None:
            return hmac.compare_digest(credentials.encode(), self.token.get_secret_value().encode())
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        user_ok = hmac.compare_digest(user.encode(), self.user.encode())
        # Every secret is compared, so the time taken does not tell which one nearly matched.
        password_ok = False
        for secret in self._secrets():
            password_ok |= hmac.compare_digest(password.encode(), secret)
        return user_ok and password_ok

    def challenges(self) -> list[str]:
        """The ``WWW-Authenticate`` values of a 401: Basic (browsers prompt), then Bearer."""
        values = [f'Basic realm="{REALM}", charset="UTF-8"']
        if self.token is not None:
            values.append(f'Bearer realm="{REALM}"')
        return values


class AuthMiddleware:
    """ASGI middleware: every HTTP request without credentials ``auth`` accepts gets a 401."""

    def __init__(self, app: ASGIApp, auth: ConsoleAuth) -> None:
        self.app = app
        self.auth = auth
        self._body = json.dumps(
            {"detail": "authentication required", "error": "NotAuthenticated"}
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan: no request to check
            return
        if self.auth.accepts(Headers(scope=scope).get("authorization")):
            await self.app(scope, receive, send)
            return
        logger.info("%s: 401, no valid credentials", scope.get("path", ""))
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self._body)).encode()),
            *((b"www-authenticate", value.encode()) for value in self.auth.challenges()),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": self._body})


def check_bind(host: str, auth: ConsoleAuth | None) -> None:
    """The bind rule: loopback always; another address only with authentication.

    Raises:
        UnauthenticatedBindError: ``host`` is not a loopback address and ``auth`` is ``None``.
    """
    if auth is None and not is_loopback(host):
        raise UnauthenticatedBindError(host)
