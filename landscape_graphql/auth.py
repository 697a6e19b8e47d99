"""Who is asking: bearer tokens from a file, OIDC JWTs, or nobody (auth off).

Credentials are read only from the ``Authorization: Bearer`` header; cookies and
query strings are never looked at, so a token cannot leak through a logged URL
or be replayed by a cross-site form.

Tokens file (``--auth-tokens FILE``), JSON::

    {"tokens": [
      {"name": "ci-reader", "sha256": "<64 hex>", "runs": ["run-a", "run-b"]},
      {"name": "ops", "sha256": "<64 hex>"}
    ]}

``sha256`` is the hex SHA-256 of the token's UTF-8 bytes (the file never holds a
usable secret; ``python -m landscape_graphql.auth`` prints a new token and its
entry).  ``runs`` absent or null means every run; ``name`` is optional and
becomes the principal's subject.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from .errors import AUTH_UNAVAILABLE_CODE, UNAUTHENTICATED_CODE
from .extras import require

__all__ = [
    "ANONYMOUS",
    "AnonymousAuthenticator",
    "AuthError",
    "Authenticator",
    "BearerAuthenticator",
    "InsecureBindError",
    "JWKSCache",
    "OIDCConfig",
    "OIDCVerifier",
    "Principal",
    "TokenStore",
    "bearer_token",
    "build_authenticator",
    "hash_token",
    "is_loopback_host",
    "new_token",
    "refuse_insecure_bind",
]

logger = logging.getLogger("landscape_graphql.auth")

REALM = "landscape-graphql"
# Asymmetric only: with an HS* algorithm a public JWKS key would double as the
# HMAC secret, letting anyone who can read the JWKS mint tokens.
ASYMMETRIC_ALGORITHMS = {
    "RS256": "RSA", "RS384": "RSA", "RS512": "RSA", "PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
    "ES256": "EC", "ES384": "EC", "ES512": "EC", "EdDSA": "OKP",
}  # fmt: skip
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_JWKS_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    allowed_runs: frozenset[str] | None  # None: every run
    method: Literal["token", "oidc", "anonymous"]


ANONYMOUS = Principal(subject="anonymous", allowed_runs=None, method="anonymous")


class AuthError(Exception):
    """Refused credentials; ``status_code``/``headers``/``body`` make the response."""

    def __init__(self, description: str, *, error: str | None = "invalid_token", status_code: int = 401):
        super().__init__(description)
        self.description, self.error, self.status_code = description, error, status_code

    @property
    def headers(self) -> dict[str, str]:
        if self.status_code != 401:
            return {}
        challenge = f'Bearer realm="{REALM}"'
        if self.error:  # RFC 6750 3.1: no error code when no credentials were sent
            challenge += f', error="{self.error}", error_description="{self.description}"'
        return {"WWW-Authenticate": challenge}

    @property
    def body(self) -> dict[str, Any]:
        code = UNAUTHENTICATED_CODE if self.status_code == 401 else AUTH_UNAVAILABLE_CODE
        return {"errors": [{"message": self.description, "extensions": {"code": code}}]}


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The bearer token of the request, None when no Authorization header is sent."""
    # items(), not get(): Starlette's Headers lists repeated headers, and two
    # Authorization headers must not be resolved by picking one.
    values = [value for key, value in headers.items() if key.lower() == "authorization"]
    if not values:
        return None
    if len(values) > 1:
        raise AuthError("Send a single Authorization header", error="invalid_request")
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthError("Use the Bearer authorization scheme", error="invalid_request")
    token = token.strip()
    if not _B64TOKEN.fullmatch(token):
        raise AuthError("Malformed bearer token", error="invalid_request")
    return token


# ---------------------------------------------------------------- tokens file


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh token and the sha256 hex to put in the tokens file."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


@dataclass(frozen=True, slots=True)
class _TokenEntry:
    subject: str
    digest: bytes
    allowed_runs: frozenset[str] | None


class TokenStore:
    def __init__(self, entries: Sequence[_TokenEntry]) -> None:
        if not entries:
            raise ValueError("the tokens file lists no tokens")
        self._entries = tuple(entries)

    @classmethod
    def from_file(cls, path: str | Path) -> TokenStore:
        try:
            return cls.from_json(Path(path).read_text(encoding="utf-8"))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None

    @classmethod
    def from_json(cls, text: str) -> TokenStore:
        data = json.loads(text)
        items = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ValueError('expected {"tokens": [...]}')
        entries: list[_TokenEntry] = []
        seen: set[bytes] = set()
        for index, item in enumerate(items):
            where = f"tokens[{index}]"
            if not isinstance(item, dict) or set(item) - {"name", "sha256", "runs"}:
                raise ValueError(f"{where}: expected an object with name, sha256 and runs")
            digest_hex, name, runs = item.get("sha256"), item.get("name"), item.get("runs")
            if not isinstance(digest_hex, str) or not _HEX64.fullmatch(digest_hex):
                raise ValueError(f"{where}: sha256 must be 64 hex digits")
            if name is not None and (not isinstance(name, str) or not name):
                raise ValueError(f"{where}: name must be a non-empty string")
            if runs is not None and (not isinstance(runs, list) or not all(isinstance(r, str) for r in runs)):
                raise ValueError(f"{where}: runs must be a list of run ids")
            digest = bytes.fromhex(digest_hex)
            if digest in seen:
                raise ValueError(f"{where}: duplicate sha256")
            seen.add(digest)
            subject = name or f"token#{index}"
            entries.append(_TokenEntry(subject, digest, None if runs is None else frozenset(runs)))
        return cls(entries)

    def verify(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode()).digest()
        match: _TokenEntry | None = None
        # Every entry is compared, match or not, so timing says nothing about
        # which entry (or how much of a digest) matched.
        for entry in self._entries:
            if hmac.compare_digest(digest, entry.digest):
                match = entry
        if match is None:
            return None
        return Principal(subject=match.subject, allowed_runs=match.allowed_runs, method="token")


# ---------------------------------------------------------------- OIDC

JWKSFetcher = Callable[[str], Awaitable[Mapping[str, Any]]]


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_fetch_url(url: str, what: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname or ""))):
        raise ValueError(f"the {what} must use https (plain http only on loopback)")


@dataclass(frozen=True, slots=True)
class OIDCConfig:
    issuer: str
    audience: str
    # None: the issuer's discovery document (/.well-known/openid-configuration) names it.
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    runs_claim: str = "landscape_runs"
    # When the runs claim is absent: True grants every run, False grants none.
    missing_runs_claim_means_all: bool = True
    subject_claim: str = "sub"
    leeway_seconds: float = 30.0
    jwks_ttl_seconds: float = 300.0
    jwks_min_refetch_seconds: float = 30.0

    def __post_init__(self) -> None:
        bad = [a for a in self.algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if bad or not self.algorithms:
            raise ValueError(f"OIDC algorithms must be among {sorted(ASYMMETRIC_ALGORITHMS)}, got {bad}")
        if self.jwks_url is not None:
            _check_fetch_url(self.jwks_url, "JWKS URL")
        else:
            _check_fetch_url(self.issuer, "issuer URL (its discovery document gives the JWKS URL)")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect is refused, not followed: the keys come from the URL that was checked (https,
    # or loopback http), never from wherever a compromised or misconfigured endpoint points.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


async def fetch_json(url: str, timeout: float = 5.0) -> Mapping[str, Any]:
    """The JSON object at `url` (a JWKS or a discovery document): no redirects, at most
    MAX_JWKS_BYTES. The caller has checked the URL's scheme."""
    def get() -> Mapping[str, Any]:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        with _opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_JWKS_BYTES + 1)
        if len(body) > MAX_JWKS_BYTES:
            raise ValueError("document too large")
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("document is not an object")
        return data

    return await asyncio.to_thread(get)



async def discover_jwks_url(issuer: str, fetch: JWKSFetcher = fetch_json) -> str:
    """The `jwks_uri` of the issuer's OpenID Connect discovery document.

    The document must name the same issuer (OpenID Connect Discovery 1.0, section 4.3), and
    its `jwks_uri` is held to the rule a configured JWKS URL is."""
    document = await fetch(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if document.get("issuer") != issuer:
        raise ValueError("the discovery document names another issuer")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise ValueError("the discovery document has no jwks_uri")
    _check_fetch_url(jwks_uri, "discovered jwks_uri")
    return jwks_uri


class JWKSCache:
    """Signing keys by ``kid``, refreshed after ``ttl`` or on an unknown ``kid``.

    Unknown-``kid`` refetches happen at most once per ``min_refetch`` seconds, so
    a stream of forged kids cannot turn the server into a JWKS hammer.
    """

    def __init__(
        self,
        url: str | None,
        *,
        fetch: JWKSFetcher = fetch_json,
        discover: Callable[[], Awaitable[str]] | None = None,
        ttl: float = 300.0,
        min_refetch: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if url is None and discover is None:
            raise ValueError("JWKSCache needs a JWKS URL or a way to discover it")
        self.url, self._fetch, self.ttl, self.min_refetch, self._clock = url, fetch, ttl, min_refetch, clock
        # Until it succeeds, discovery is retried with each fetch (and rate-limited like one).
        self._discover = discover
        self._keys: dict[str, Mapping[str, Any]] | None = None
        self._fetched_at = self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _refresh(self, reason: str) -> None:
        async with self._lock:
            now = self._clock()
            if now - self._attempted_at < self.min_refetch and self._keys is not None:
                return  # someone refreshed while we waited, or too soon to retry
            self._attempted_at = now
            try:
                if self.url is None:
                    assert self._discover is not None
                    self.url = await self._discover()
                document = await self._fetch(self.url)
                keys = document.get("keys")
                if not isinstance(keys, list):
                    raise ValueError("JWKS document has no keys list")
                self._keys = {
                    k["kid"]: k for k in keys if isinstance(k, dict) and isinstance(k.get("kid"), str)
                }
                self._fetched_at = now
            except Exception as error:  # any failure means "no fresh keys"
                logger.warning("JWKS fetch from %s failed (%s): %s", self.url or "discovery", reason, error)
                if self._keys is None:
                    raise AuthError(
                        "Token verification is temporarily unavailable", error=None, status_code=503
                    ) from None

    async def get(self, kid: str) -> Mapping[str, Any] | None:
        if self._keys is None or self._clock() - self._fetched_at >= self.ttl:
            await self._refresh("expired")
        assert self._keys is not None
        if kid not in self._keys and self._clock() - self._attempted_at >= self.min_refetch:
            await self._refresh("unknown kid")
        return self._keys.get(kid)


class OIDCVerifier:
    def __init__(self, config: OIDCConfig, *, jwks: JWKSCache | None = None) -> None:
        require("oidc")  # refused when the server is configured, not at the first token
        self.config = config
        self.jwks = jwks or JWKSCache(
            config.jwks_url, ttl=config.jwks_ttl_seconds, min_refetch=config.jwks_min_refetch_seconds,
            discover=None if config.jwks_url is not None else functools.partial(discover_jwks_url, config.issuer),
        )

    async def verify(self, token: str) -> Principal:
        import jwt  # here, not at module level: PyJWT and cryptography cost every start-up ~40 ms

        config = self.config
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthError("Malformed token") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in config.algorithms:
            raise AuthError("Token algorithm not allowed")
        if not isinstance(kid, str):
            raise AuthError("Token has no key id")
        jwk = await self.jwks.get(kid)
        if jwk is None:
            raise AuthError("Unknown signing key")
        # The key must be of the family the token claims, and not restricted to
        # another algorithm or use: otherwise a key could be used against its intent.
        if (
            jwk.get("kty") != ASYMMETRIC_ALGORITHMS[alg]
            or jwk.get("alg", alg) != alg
            or jwk.get("use", "sig") != "sig"
        ):
            raise AuthError("Signing key does not match the token algorithm")
        try:
            key = jwt.PyJWK(dict(jwk), algorithm=alg).key
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway_seconds,
                options={"require": ["exp", "iss", "aud", config.subject_claim]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("Token expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError("Token audience not accepted") from None
        except jwt.InvalidIssuerError:
            raise AuthError("Token issuer not accepted") from None
        except (jwt.InvalidTokenError, jwt.PyJWKError):
            raise AuthError("Invalid token") from None
        subject = claims.get(config.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise AuthError("Token subject missing")
        return Principal(subject=subject, allowed_runs=self._runs(claims), method="oidc")

    def _runs(self, claims: Mapping[str, Any]) -> frozenset[str] | None:
        runs = claims.get(self.config.runs_claim)
        if runs is None:
            return None if self.config.missing_runs_claim_means_all else frozenset()
        if isinstance(runs, str):  # some IdPs flatten single-valued list claims
            return frozenset({runs})
        if isinstance(runs, list) and all(isinstance(r, str) for r in runs):
            return frozenset(runs)
        raise AuthError(f"Token claim {self.config.runs_claim} must be a list of run ids")


# ---------------------------------------------------------------- authenticators


class Authenticator(Protocol):
    async def authenticate(self, headers: Mapping[str, str]) -> Principal: ...


class AnonymousAuthenticator:
    """Auth off: everyone is ANONYMOUS with every run; credentials are ignored."""

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        return ANONYMOUS


class BearerAuthenticator:
    def __init__(self, *, tokens: TokenStore | None = None, oidc: OIDCVerifier | None = None) -> None:
        if tokens is None and oidc is None:
            raise ValueError("BearerAuthenticator needs a tokens file, OIDC, or both")
        self.tokens, self.oidc = tokens, oidc

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        token = bearer_token(headers)
        if token is None:
            raise AuthError("Authentication required", error=None)
        # Tokens file first: it is cheap, and a self-chosen token may look like a JWT.
        if self.tokens is not None and (principal := self.tokens.verify(token)) is not None:
            return principal
        if self.oidc is not None and _JWT_SHAPE.fullmatch(token):
            return await self.oidc.verify(token)
        raise AuthError("Invalid token")


def build_authenticator(
    *, tokens_file: str | Path | None = None, oidc: OIDCConfig | None = None
) -> Authenticator:
    """The authenticator for the CLI's ``--auth-tokens`` / OIDC options."""
    if tokens_file is None and oidc is None:
        return AnonymousAuthenticator()
    return BearerAuthenticator(
        tokens=TokenStore.from_file(tokens_file) if tokens_file is not None else None,
        oidc=OIDCVerifier(oidc) if oidc is not None else None,
    )


# ---------------------------------------------------------------- binding


class InsecureBindError(ValueError):
    pass


def refuse_insecure_bind(host: str, auth_enabled: bool, insecure_no_auth: bool) -> None:
    """Refuse to serve the audit trail unauthenticated beyond this machine."""
    if auth_enabled or insecure_no_auth or is_loopback_host(host):
        return
    raise InsecureBindError(
        f"Refusing to listen on {host or 'all interfaces'} without authentication: "
        "configure --auth-tokens FILE or OIDC, bind to 127.0.0.1, "
        "or pass --insecure-no-auth to serve the audit data to anyone who can connect."
    )


if __name__ == "__main__":
    token, digest = new_token()
    print(f"token (give to the client, store nowhere else): {token}")
    print("tokens file entry:", json.dumps({"name": "CHANGE-ME", "sha256": digest, "runs": None}))
