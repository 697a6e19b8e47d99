"""The manifest (canonical JSON, written last) and its signatures: Ed25519 and/or HMAC-SHA256.

Signatures cover the manifest's canonical JSON without its `signatures` member, so a verifier
recomputes exactly the signed bytes from the file it reads. Ed25519 lets anyone check an
export with the public key alone; HMAC-SHA256 is there for parity with ELSPETH (whoever can
check it can also forge it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class ExportError(Exception):
    """A refusal or failure the command reports in one line (exit 1, or 2 for usage)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class VerificationFailed(Exception):
    """Verification found a difference (exit 3); the message names the chunk, record or file."""


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return rfc8785.dumps(manifest)


def signed_bytes(manifest: dict[str, Any]) -> bytes:
    return rfc8785.dumps({k: v for k, v in manifest.items() if k != "signatures"})


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ExportError(f"cannot read the signing key {path}: {exc}", 2) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ExportError(f"{path} is not an Ed25519 private key (PKCS#8 PEM)", 2)
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ExportError(f"cannot read the public key {path}: {exc}", 2) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ExportError(f"{path} is not an Ed25519 public key (PEM)", 2)
    return key


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def hmac_key(env: str) -> bytes:
    value = os.environ.get(env)
    if not value:
        raise ExportError(f"the environment variable {env} holding the HMAC key is not set", 2)
    return value.encode("utf-8")  # as ELSPETH reads ELSPETH_SIGNING_KEY


def sign(manifest: dict[str, Any], private: Ed25519PrivateKey | None, hmac_secret: bytes | None) -> None:
    body = signed_bytes(manifest)
    signatures: list[dict[str, str]] = []
    if private is not None:
        signatures.append({"algorithm": "ed25519", "key_id": key_id(private.public_key()),
                           "signature": base64.b64encode(private.sign(body)).decode()})
    if hmac_secret is not None:
        signatures.append({"algorithm": "hmac-sha256",
                           "signature": hmac.new(hmac_secret, body, hashlib.sha256).hexdigest()})
    manifest["signatures"] = signatures


def check_signatures(manifest: dict[str, Any], public: Ed25519PublicKey | None,
                     hmac_secret: bytes | None) -> list[str]:
    """Check the signatures a key was given for; return what was checked. Raise on a mismatch."""
    body = signed_bytes(manifest)
    signatures = manifest.get("signatures") or []
    checked: list[str] = []
    if public is not None:
        wanted = key_id(public)
        found = [s for s in signatures if s.get("algorithm") == "ed25519"]
        if not found:
            raise VerificationFailed("the manifest has no Ed25519 signature")
        match = [s for s in found if s.get("key_id") == wanted]
        if not match:
            raise VerificationFailed(f"the manifest is signed by {found[0].get('key_id')}, not by {wanted}")
        try:
            public.verify(base64.b64decode(match[0]["signature"]), body)
        except (InvalidSignature, ValueError, KeyError):
            raise VerificationFailed("the Ed25519 signature of the manifest does not match: "
                                     "the manifest was edited or signed by another key") from None
        checked.append(wanted)
    if hmac_secret is not None:
        found = [s for s in signatures if s.get("algorithm") == "hmac-sha256"]
        if not found:
            raise VerificationFailed("the manifest has no HMAC-SHA256 signature")
        expected = hmac.new(hmac_secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(found[0].get("signature"))):
            raise VerificationFailed("the HMAC-SHA256 of the manifest does not match: "
                                     "the manifest was edited or the key is wrong")
        checked.append("hmac-sha256")
    return checked


def file_digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size
