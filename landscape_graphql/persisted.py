"""Persisted queries: Apollo's automatic persisted queries (APQ) and an operator's trusted documents.

A request names its document either by text or by ``extensions.persistedQuery {version: 1,
sha256Hash}``. A hash alone is looked up among the trusted documents (``--persisted-queries
FILE``) and then the documents clients registered; a miss answers ``PERSISTED_QUERY_NOT_FOUND``
so an APQ client resends the hash with the text, which registers it once the hash is checked.
With ``--only-persisted`` nothing but the trusted documents runs (an allow-list: no client can
register or send another document). The registered store is bounded by count and bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import (
    BAD_REQUEST_CODE,
    METHOD_NOT_ALLOWED_CODE,
    PERSISTED_QUERY_NOT_FOUND_CODE,
    PERSISTED_QUERY_REQUIRED_CODE,
)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
APQ_MAX_DOCUMENTS = 1000
APQ_MAX_BYTES = 8 * 1024 * 1024


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Document:
    text: str
    sha256: str


class PersistedQueryError(Exception):
    """The request's document cannot be resolved: a GraphQL error with this code and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def load_trusted(path: Path) -> dict[str, str]:
    """A JSON object mapping each document's sha256 (hex) to its text; every hash is checked."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the persisted queries file {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must hold a JSON object mapping sha256 hashes to documents")
    documents: dict[str, str] = {}
    for digest, text in raw.items():
        if not isinstance(text, str) or not _SHA256.match(str(digest).lower()):
            raise ValueError(f"{path}: {str(digest)[:70]!r} is not a sha256 hash mapped to a document")
        if sha256_hex(text) != digest.lower():
            raise ValueError(f"{path}: the document under {digest} does not have that sha256")
        documents[digest.lower()] = text
    return documents


class PersistedQueries:
    def __init__(self, trusted: Mapping[str, str] | None = None, *, only_persisted: bool = False,
                 max_documents: int = APQ_MAX_DOCUMENTS, max_bytes: int = APQ_MAX_BYTES) -> None:
        self.trusted = dict(trusted or {})
        self.only_persisted = only_persisted
        self.max_documents = max_documents
        self.max_bytes = max_bytes
        self._registered: OrderedDict[str, str] = OrderedDict()
        self._bytes = 0

    def resolve(self, query: Any, extensions: Any, *, text_allowed: bool = True) -> Document:
        """The document a request names; raises PersistedQueryError."""
        if extensions is not None and not isinstance(extensions, dict):
            raise PersistedQueryError(BAD_REQUEST_CODE, "extensions must be a JSON object", 400)
        persisted = (extensions or {}).get("persistedQuery")
        if query is not None and (not isinstance(query, str) or not query.strip()):
            raise PersistedQueryError(BAD_REQUEST_CODE, "The request has no query string", 400)
        if query is not None and not text_allowed:
            raise PersistedQueryError(
                METHOD_NOT_ALLOWED_CODE,
                "GET runs persisted queries only (extensions.persistedQuery); send query text with POST", 405)
        if persisted is None:
            if query is None:
                raise PersistedQueryError(BAD_REQUEST_CODE, "The request has no query string", 400)
            digest = sha256_hex(query)
            if self.only_persisted and digest not in self.trusted:
                raise PersistedQueryError(
                    PERSISTED_QUERY_REQUIRED_CODE, "This server runs only its persisted queries", 400)
            return Document(query, digest)
        digest = self._hash(persisted)
        if query is not None:
            if sha256_hex(query) != digest:
                raise PersistedQueryError(BAD_REQUEST_CODE, "provided sha does not match query", 400)
            if digest not in self.trusted:
                if self.only_persisted:
                    raise PersistedQueryError(
                        PERSISTED_QUERY_REQUIRED_CODE, "This server runs only its persisted queries", 400)
                self._register(digest, query)
            return Document(query, digest)
        text = self.trusted.get(digest)
        if text is None and not self.only_persisted:
            text = self._registered.get(digest)
            if text is not None:
                self._registered.move_to_end(digest)
        if text is None:
            raise PersistedQueryError(PERSISTED_QUERY_NOT_FOUND_CODE, "PersistedQueryNotFound")
        return Document(text, digest)

    @staticmethod
    def _hash(persisted: Any) -> str:
        if (not isinstance(persisted, dict) or persisted.get("version") != 1
                or not isinstance(persisted.get("sha256Hash"), str) or not _SHA256.match(persisted["sha256Hash"])):
            raise PersistedQueryError(
                BAD_REQUEST_CODE, "extensions.persistedQuery needs version 1 and a lower-case hex sha256Hash", 400)
        return str(persisted["sha256Hash"])

    def _register(self, digest: str, text: str) -> None:
        size = len(text.encode())
        if digest in self._registered or size > self.max_bytes:
            return
        self._registered[digest] = text
        self._bytes += size
        while len(self._registered) > self.max_documents or self._bytes > self.max_bytes:
            _, dropped = self._registered.popitem(last=False)
            self._bytes -= len(dropped.encode())

    def __len__(self) -> int:
        return len(self._registered)
