"""Loaders of run analytics: each one aggregate statement for every run of a request.

Keyed by run id (the samples by (run id, how many, latest first)), so a list of 50 runs asking
for every analytics field costs what one run does.
"""

from __future__ import annotations

from functools import cached_property

from ..db import analytics as q
from ..db import analytics_records as A
from ..db import contracts as C
from ..db import records as R
from ..db.enums import CallType
from ..db.session import DbSession
from ._base import ManyByKey, OneByKey, fetcher

SampleKey = tuple[str, int, bool]  # (run id, how many, latest first)


class RunCountsByRunLoader(OneByKey[str, A.RunCounts]):
    fetch = fetcher(q.run_counts)
    key_of = staticmethod(lambda c: c.run_id)


class OutcomeRecordCountsByRunLoader(ManyByKey[str, A.OutcomeCount]):
    fetch = fetcher(q.outcome_record_counts)
    key_of = staticmethod(lambda c: c.run_id)


class SinkCountsByRunLoader(ManyByKey[str, tuple[str, str, int]]):
    fetch = fetcher(q.sink_counts)
    key_of = staticmethod(lambda t: t[0])


class NodeStatsByRunLoader(ManyByKey[str, A.NodeStats]):
    fetch = fetcher(q.node_stats)
    key_of = staticmethod(lambda n: n.run_id)


class NodePercentilesByRunLoader(ManyByKey[str, A.NodePercentiles]):
    fetch = fetcher(q.node_percentiles)
    key_of = staticmethod(lambda n: n.run_id)


class ErrorBucketsByRunLoader(ManyByKey[str, A.ErrorBucket]):
    fetch = fetcher(q.error_buckets)
    key_of = staticmethod(lambda b: b.run_id)


class CallTypeCountsByRunLoader(ManyByKey[str, tuple[str, CallType, int]]):
    fetch = fetcher(q.call_type_counts)
    key_of = staticmethod(lambda t: t[0])


class LlmCallsByRunLoader(ManyByKey[str, A.NodeCalls]):
    fetch = fetcher(q.llm_calls_by_node)
    key_of = staticmethod(lambda n: n.run_id)


class LlmResponsesByRunLoader(ManyByKey[str, tuple[str, str | None, str | None]]):
    fetch = fetcher(q.llm_responses)
    key_of = staticmethod(lambda t: t[0])


class SourceContractsByRunLoader(ManyByKey[str, C.SourceContract]):
    fetch = fetcher(C.contracts_of_runs)
    key_of = staticmethod(lambda c: c.run_id)


class ValidationErrorSamplesByRunLoader(ManyByKey[SampleKey, R.ValidationErrorRecord]):
    fetch = fetcher(q.validation_error_samples)


class TransformErrorSamplesByRunLoader(ManyByKey[SampleKey, R.TransformErrorRecord]):
    fetch = fetcher(q.transform_error_samples)


class FailedStatesByRunLoader(ManyByKey[SampleKey, R.NodeStateRecord]):
    fetch = fetcher(q.failed_state_samples)


class AnalyticsLoaders:
    """The analytics loaders of one request, each built on first use."""

    def __init__(self, db: DbSession) -> None:
        self.db = db

    @cached_property
    def run_counts(self) -> RunCountsByRunLoader:
        return RunCountsByRunLoader(self.db)

    @cached_property
    def outcome_record_counts(self) -> OutcomeRecordCountsByRunLoader:
        return OutcomeRecordCountsByRunLoader(self.db)

    @cached_property
    def sink_counts(self) -> SinkCountsByRunLoader:
        return SinkCountsByRunLoader(self.db)

    @cached_property
    def node_stats(self) -> NodeStatsByRunLoader:
        return NodeStatsByRunLoader(self.db)

    @cached_property
    def node_percentiles(self) -> NodePercentilesByRunLoader:
        return NodePercentilesByRunLoader(self.db)

    @cached_property
    def error_buckets(self) -> ErrorBucketsByRunLoader:
        return ErrorBucketsByRunLoader(self.db)

    @cached_property
    def call_type_counts(self) -> CallTypeCountsByRunLoader:
        return CallTypeCountsByRunLoader(self.db)

    @cached_property
    def llm_calls(self) -> LlmCallsByRunLoader:
        return LlmCallsByRunLoader(self.db)

    @cached_property
    def llm_responses(self) -> LlmResponsesByRunLoader:
        return LlmResponsesByRunLoader(self.db)

    @cached_property
    def source_contracts(self) -> SourceContractsByRunLoader:
        return SourceContractsByRunLoader(self.db)

    @cached_property
    def validation_error_samples(self) -> ValidationErrorSamplesByRunLoader:
        return ValidationErrorSamplesByRunLoader(self.db)

    @cached_property
    def transform_error_samples(self) -> TransformErrorSamplesByRunLoader:
        return TransformErrorSamplesByRunLoader(self.db)

    @cached_property
    def failed_states(self) -> FailedStatesByRunLoader:
        return FailedStatesByRunLoader(self.db)
