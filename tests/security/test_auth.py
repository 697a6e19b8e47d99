"""Authentication: one test per rule, OIDC against a JWKS served on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from landscape_graphql.auth import (
    ANONYMOUS,
    AnonymousAuthenticator,
    AuthError,
    BearerAuthenticator,
    InsecureBindError,
    JWKSCache,
    OIDCConfig,
    OIDCVerifier,
    Principal,
    TokenStore,
    bearer_token,
    build_authenticator,
    hash_token,
    new_token,
    refuse_insecure_bind,
)

ISSUER = "https://idp.example.test/realms/landscape"
AUDIENCE = "landscape-graphql"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def rsa_jwk(kid: str, key: rsa.RSAPrivateKey = RSA_KEY, **extra: str) -> dict[str, Any]:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, **extra}


def ec_jwk(kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True)
    return {**jwk, "kid": kid}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], kid: str = "k1", key: Any = RSA_KEY, alg: str = "RS256") -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# ---------------------------------------------------------------- JWKS server on loopback


class JWKSServer:
    """Serves the JWKS at /jwks.json, a discovery document, and whatever `routes` adds: a path
    mapped to a JSON document, or to ("redirect", location)."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": [rsa_jwk("k1"), ec_jwk("e1")]}
        self.hits = 0
        self.requested: list[str] = []
        self.routes: dict[str, Any] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                outer.requested.append(self.path)
                answer = outer.routes.get(self.path, outer.document)
                if isinstance(answer, tuple):
                    self.send_response(302)
                    self.send_header("Location", answer[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JWKSServer]:
    server = JWKSServer()
    yield server
    server.close()


@pytest.fixture
def verifier(jwks_server: JWKSServer) -> OIDCVerifier:
    return OIDCVerifier(OIDCConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_server.url))


async def refused(verifier: OIDCVerifier, token: str, description: str) -> None:
    with pytest.raises(AuthError) as caught:
        await verifier.verify(token)
    assert caught.value.description == description
    assert caught.value.status_code == 401
    assert caught.value.headers["WWW-Authenticate"].startswith(
        'Bearer realm="landscape-graphql", error="invalid_token"'
    )


# ---------------------------------------------------------------- OIDC rules


async def test_oidc_rs256_token_is_accepted_with_runs_claim(verifier: OIDCVerifier) -> None:
    principal = await verifier.verify(sign(claims(landscape_runs=["run-1", "run-2"])))
    assert principal == Principal("alice", frozenset({"run-1", "run-2"}), "oidc")


async def test_oidc_es256_token_is_accepted(verifier: OIDCVerifier) -> None:
    principal = await verifier.verify(sign(claims(), kid="e1", key=EC_KEY, alg="ES256"))
    assert principal.subject == "alice"


async def test_oidc_missing_runs_claim_means_all_runs_by_default(verifier: OIDCVerifier) -> None:
    assert (await verifier.verify(sign(claims()))).allowed_runs is None


async def test_oidc_missing_runs_claim_can_mean_no_runs(jwks_server: JWKSServer) -> None:
    config = OIDCConfig(ISSUER, AUDIENCE, jwks_server.url, missing_runs_claim_means_all=False)
    assert (await OIDCVerifier(config).verify(sign(claims()))).allowed_runs == frozenset()


async def test_oidc_runs_claim_name_is_configurable(jwks_server: JWKSServer) -> None:
    config = OIDCConfig(ISSUER, AUDIENCE, jwks_server.url, runs_claim="runs")
    principal = await OIDCVerifier(config).verify(sign(claims(runs="run-9")))
    assert principal.allowed_runs == frozenset({"run-9"})


async def test_oidc_malformed_runs_claim_is_refused(verifier: OIDCVerifier) -> None:
    await refused(
        verifier, sign(claims(landscape_runs=[1, 2])), "Token claim landscape_runs must be a list of run ids"
    )


async def test_oidc_expired_token_is_refused(verifier: OIDCVerifier) -> None:
    old = int(time.time()) - 3600
    await refused(verifier, sign(claims(iat=old, exp=old + 60)), "Token expired")


async def test_oidc_token_without_expiry_is_refused(verifier: OIDCVerifier) -> None:
    await refused(verifier, sign(claims(exp=None)), "Invalid token")


async def test_oidc_wrong_audience_is_refused(verifier: OIDCVerifier) -> None:
    await refused(verifier, sign(claims(aud="another-api")), "Token audience not accepted")


async def test_oidc_wrong_issuer_is_refused(verifier: OIDCVerifier) -> None:
    await refused(verifier, sign(claims(iss="https://evil.example.test")), "Token issuer not accepted")


async def test_oidc_tampered_payload_is_refused(verifier: OIDCVerifier) -> None:
    header, _, signature = sign(claims(landscape_runs=["run-1"])).split(".")
    forged = b64(json.dumps(claims(landscape_runs=["run-1", "secret-run"])).encode())
    await refused(verifier, f"{header}.{forged}.{signature}", "Invalid token")


async def test_oidc_token_signed_by_another_key_is_refused(verifier: OIDCVerifier) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await refused(verifier, sign(claims(), key=other), "Invalid token")


async def test_oidc_alg_none_is_refused(verifier: OIDCVerifier) -> None:
    header = b64(json.dumps({"alg": "none", "kid": "k1", "typ": "JWT"}).encode())
    await refused(verifier, f"{header}.{b64(json.dumps(claims()).encode())}.", "Token algorithm not allowed")


async def test_oidc_hs256_with_public_key_as_secret_is_refused(verifier: OIDCVerifier) -> None:
    # The classic algorithm-confusion forgery: HMAC keyed with the public PEM.
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = (
        f"{b64(json.dumps({'alg': 'HS256', 'kid': 'k1'}).encode())}.{b64(json.dumps(claims()).encode())}"
    )
    mac = b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())
    await refused(verifier, f"{signing_input}.{mac}", "Token algorithm not allowed")


async def test_oidc_key_of_wrong_family_is_refused(jwks_server: JWKSServer, verifier: OIDCVerifier) -> None:
    # An ES256 token pointing at the RSA key's kid.
    await refused(
        verifier,
        sign(claims(), kid="k1", key=EC_KEY, alg="ES256"),
        "Signing key does not match the token algorithm",
    )


async def test_oidc_encryption_key_is_not_used_for_signatures(
    jwks_server: JWKSServer, verifier: OIDCVerifier
) -> None:
    jwks_server.document = {"keys": [rsa_jwk("k1", use="enc")]}
    await refused(verifier, sign(claims()), "Signing key does not match the token algorithm")


async def test_oidc_token_without_kid_is_refused(verifier: OIDCVerifier) -> None:
    token = jwt.encode(claims(), RSA_KEY, algorithm="RS256")
    await refused(verifier, token, "Token has no key id")


def test_oidc_config_refuses_symmetric_or_none_algorithms() -> None:
    for algorithms in (("HS256",), ("RS256", "none"), ()):
        with pytest.raises(ValueError, match="algorithms"):
            OIDCConfig(ISSUER, AUDIENCE, "https://idp.example.test/jwks", algorithms=algorithms)


def test_oidc_config_requires_https_jwks_except_on_loopback() -> None:
    with pytest.raises(ValueError, match="https"):
        OIDCConfig(ISSUER, AUDIENCE, "http://idp.example.test/jwks")
    OIDCConfig(ISSUER, AUDIENCE, "http://127.0.0.1:8080/jwks")
    OIDCConfig(ISSUER, AUDIENCE, "http://[::1]:8080/jwks")


# ---------------------------------------------------------------- JWKS cache


async def test_jwks_is_fetched_once_and_cached(jwks_server: JWKSServer, verifier: OIDCVerifier) -> None:
    for _ in range(5):
        await verifier.verify(sign(claims()))
    assert jwks_server.hits == 1


async def test_unknown_kid_triggers_a_refetch_for_rotated_keys(jwks_server: JWKSServer) -> None:
    clock = [1000.0]
    cache = JWKSCache(jwks_server.url, min_refetch=30, clock=lambda: clock[0])
    verifier = OIDCVerifier(OIDCConfig(ISSUER, AUDIENCE, jwks_server.url), jwks=cache)
    await verifier.verify(sign(claims()))
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks_server.document = {"keys": [rsa_jwk("k1"), rsa_jwk("k2", rotated)]}
    clock[0] += 31
    assert (await verifier.verify(sign(claims(), kid="k2", key=rotated))).subject == "alice"
    assert jwks_server.hits == 2


async def test_unknown_kid_refetches_are_rate_limited(
    jwks_server: JWKSServer, verifier: OIDCVerifier
) -> None:
    await verifier.verify(sign(claims()))
    for i in range(20):
        await refused(verifier, sign(claims(), kid=f"forged-{i}"), "Unknown signing key")
    assert jwks_server.hits == 1


async def test_jwks_is_refetched_after_ttl() -> None:
    fetched: list[str] = []
    clock = [0.0]

    async def fetch(url: str) -> Mapping[str, Any]:
        fetched.append(url)
        return {"keys": [rsa_jwk("k1")]}

    cache = JWKSCache(
        "https://idp.example.test/jwks", fetch=fetch, ttl=300, min_refetch=30, clock=lambda: clock[0]
    )
    assert await cache.get("k1") is not None
    clock[0] = 299
    await cache.get("k1")
    assert len(fetched) == 1
    clock[0] = 301
    await cache.get("k1")
    assert len(fetched) == 2


async def test_unreachable_jwks_is_503_not_401() -> None:
    async def fetch(url: str) -> Mapping[str, Any]:
        raise OSError("connection refused")

    config = OIDCConfig(ISSUER, AUDIENCE, "https://idp.example.test/jwks")
    verifier = OIDCVerifier(config, jwks=JWKSCache(config.jwks_url, fetch=fetch))
    with pytest.raises(AuthError) as caught:
        await verifier.verify(sign(claims()))
    assert caught.value.status_code == 503
    assert caught.value.headers == {}


async def test_jwks_url_is_discovered_from_the_issuer_when_not_given(jwks_server: JWKSServer) -> None:
    issuer = f"{jwks_server.base}/realms/landscape"
    jwks_server.routes["/realms/landscape/.well-known/openid-configuration"] = {
        "issuer": issuer, "jwks_uri": f"{jwks_server.base}/keys"}
    verifier = OIDCVerifier(OIDCConfig(issuer=issuer, audience=AUDIENCE))
    for _ in range(3):
        assert (await verifier.verify(sign(claims(iss=issuer)))).subject == "alice"
    # discovered once, then the keys from the jwks_uri it named, cached
    assert jwks_server.requested == ["/realms/landscape/.well-known/openid-configuration", "/keys"]


@pytest.mark.parametrize(("document", "why"), [
    ({"issuer": "https://elsewhere.example.test", "jwks_uri": "JWKS"}, "names another issuer"),
    ({"issuer": "ISSUER"}, "no jwks_uri"),
    ({"issuer": "ISSUER", "jwks_uri": "http://keys.example.test/jwks"}, "must use https"),
])
async def test_a_discovery_document_that_breaks_a_rule_gives_no_keys(
        jwks_server: JWKSServer, caplog: pytest.LogCaptureFixture, document: dict[str, str], why: str) -> None:
    issuer = jwks_server.base
    document = {k: v.replace("ISSUER", issuer).replace("JWKS", jwks_server.url) for k, v in document.items()}
    jwks_server.routes["/.well-known/openid-configuration"] = document
    verifier = OIDCVerifier(OIDCConfig(issuer=issuer, audience=AUDIENCE))
    with pytest.raises(AuthError) as caught:
        await verifier.verify(sign(claims(iss=issuer)))
    assert caught.value.status_code == 503
    assert why in caplog.text
    assert "/jwks.json" not in jwks_server.requested


async def test_jwks_redirects_are_not_followed(jwks_server: JWKSServer, caplog: pytest.LogCaptureFixture) -> None:
    # The redirect's target serves valid keys: following it would accept the token.
    jwks_server.routes["/moved"] = ("redirect", jwks_server.url)
    verifier = OIDCVerifier(OIDCConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=f"{jwks_server.base}/moved"))
    with pytest.raises(AuthError) as caught:
        await verifier.verify(sign(claims()))
    assert caught.value.status_code == 503
    assert jwks_server.requested == ["/moved"]
    assert "302" in caplog.text


def test_discovery_needs_an_https_issuer() -> None:
    with pytest.raises(ValueError, match="issuer URL"):
        OIDCConfig(issuer="http://idp.example.test", audience=AUDIENCE)
    OIDCConfig(issuer="https://idp.example.test", audience=AUDIENCE)


# ---------------------------------------------------------------- tokens file


def write_tokens(tmp_path: Path, entries: list[dict[str, Any]]) -> Path:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tokens": entries}))
    return path


async def test_token_from_file_authenticates_with_its_scope(tmp_path: Path) -> None:
    token, digest = new_token()
    path = write_tokens(tmp_path, [{"name": "ci", "sha256": digest, "runs": ["run-1"]}])
    authenticator = build_authenticator(tokens_file=path)
    principal = await authenticator.authenticate({"Authorization": f"Bearer {token}"})
    assert principal == Principal("ci", frozenset({"run-1"}), "token")


async def test_token_without_runs_or_name_gets_all_runs_and_index_subject(tmp_path: Path) -> None:
    token, digest = new_token()
    store = TokenStore.from_file(write_tokens(tmp_path, [{"sha256": hash_token("x")}, {"sha256": digest}]))
    assert store.verify(token) == Principal("token#1", None, "token")


def test_wrong_token_does_not_verify() -> None:
    store = TokenStore.from_json(json.dumps({"tokens": [{"sha256": hash_token("right")}]}))
    assert store.verify("wrong") is None
    assert store.verify("right") is not None


def test_every_entry_is_compared_even_after_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return real(a, b)

    monkeypatch.setattr("landscape_graphql.auth.hmac.compare_digest", counting)
    store = TokenStore.from_json(json.dumps({"tokens": [{"sha256": hash_token(f"t{i}")} for i in range(5)]}))
    assert store.verify("t0") is not None
    assert len(calls) == 5


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("[]", "expected"),
        ('{"tokens": [{"sha256": "abc"}]}', "64 hex"),
        ('{"tokens": [{"sha256": "' + "a" * 64 + '", "runs": "run-1"}]}', "list of run ids"),
        ('{"tokens": [{"sha256": "' + "a" * 64 + '", "token": "plain"}]}', "expected an object"),
        ('{"tokens": [{"sha256": "' + "a" * 64 + '"}, {"sha256": "' + "A" * 64 + '"}]}', "duplicate"),
        ('{"tokens": []}', "no tokens"),
    ],
)
def test_bad_tokens_file_is_rejected_clearly(document: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TokenStore.from_json(document)


# ---------------------------------------------------------------- header handling


def test_bearer_token_is_read_from_the_authorization_header_only() -> None:
    assert bearer_token({"authorization": "Bearer abc.def-ghi"}) == "abc.def-ghi"
    assert bearer_token({"Authorization": "bearer   abc"}) == "abc"
    assert bearer_token({"Cookie": "token=abc"}) is None


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer two words", "Bearer <script>"])
def test_non_bearer_or_malformed_authorization_is_refused(value: str) -> None:
    with pytest.raises(AuthError) as caught:
        bearer_token({"Authorization": value})
    assert caught.value.error == "invalid_request"


async def test_missing_credentials_get_a_bare_challenge(tmp_path: Path) -> None:
    authenticator = build_authenticator(tokens_file=write_tokens(tmp_path, [{"sha256": hash_token("t")}]))
    with pytest.raises(AuthError) as caught:
        await authenticator.authenticate({})
    assert caught.value.headers == {"WWW-Authenticate": 'Bearer realm="landscape-graphql"'}


async def test_tokens_and_oidc_combine(tmp_path: Path, verifier: OIDCVerifier) -> None:
    token, digest = new_token()
    authenticator = BearerAuthenticator(
        tokens=TokenStore.from_file(write_tokens(tmp_path, [{"name": "ops", "sha256": digest}])),
        oidc=verifier,
    )
    assert (await authenticator.authenticate({"Authorization": f"Bearer {token}"})).method == "token"
    jwt_principal = await authenticator.authenticate({"Authorization": f"Bearer {sign(claims())}"})
    assert jwt_principal.method == "oidc"
    with pytest.raises(AuthError, match="Invalid token"):
        await authenticator.authenticate({"Authorization": "Bearer not-a-known-token"})


async def test_auth_off_is_anonymous_with_all_runs() -> None:
    authenticator = build_authenticator()
    assert isinstance(authenticator, AnonymousAuthenticator)
    assert await authenticator.authenticate({"Authorization": "Bearer whatever"}) == ANONYMOUS
    assert ANONYMOUS.allowed_runs is None


def test_bearer_authenticator_needs_a_source() -> None:
    with pytest.raises(ValueError, match="tokens file, OIDC"):
        BearerAuthenticator()


# ---------------------------------------------------------------- binding


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"])
def test_loopback_bind_without_auth_is_allowed(host: str) -> None:
    refuse_insecure_bind(host, auth_enabled=False, insecure_no_auth=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.10", "example.test"])
def test_public_bind_without_auth_is_refused(host: str) -> None:
    with pytest.raises(InsecureBindError, match="--insecure-no-auth"):
        refuse_insecure_bind(host, auth_enabled=False, insecure_no_auth=False)


def test_public_bind_with_auth_or_explicit_override_is_allowed() -> None:
    refuse_insecure_bind("0.0.0.0", auth_enabled=True, insecure_no_auth=False)
    refuse_insecure_bind("0.0.0.0", auth_enabled=False, insecure_no_auth=True)
