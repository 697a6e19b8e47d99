"""Loaders of what went wrong and what was written: validation and transform error records, artifacts."""

from __future__ import annotations

from ..db import queries as q
from ..db import records as R
from ._base import ManyByKey, fetcher


class ValidationErrorsByRowIdLoader(ManyByKey[str, tuple[str, str, R.ValidationErrorRecord]]):
    """row -> (row id, matched by, error): epoch 2 can only match by content hash."""

    fetch = fetcher(q.validation_errors_of_rows)
    key_of = staticmethod(lambda item: item[0])


class TransformErrorsByTokenIdLoader(ManyByKey[str, R.TransformErrorRecord]):
    fetch = fetcher(q.transform_errors_of_tokens)
    key_of = staticmethod(lambda e: e.token_id)


class ArtifactsByTokenIdLoader(ManyByKey[str, R.ArtifactRecord]):
    fetch = fetcher(q.artifacts_of_tokens)
