"""Loaders of rows, tokens and the relations between tokens (parents, children, batches)."""

from __future__ import annotations

from ..db import queries as q
from ..db import records as R
from ..db.lineage import LevelHit, child_level, parent_level
from ._base import ManyByKey, OneByKey, fetcher


class RowByIdLoader(OneByKey[str, R.RowRecord]):
    fetch = fetcher(q.rows_by_id)
    key_of = staticmethod(lambda r: r.row_id)


class TokensByRowIdLoader(ManyByKey[str, R.TokenRecord]):
    fetch = fetcher(q.tokens_of_rows)
    key_of = staticmethod(lambda t: t.row_id)


class TokenByIdLoader(OneByKey[str, R.TokenRecord]):
    fetch = fetcher(q.tokens_by_id)
    key_of = staticmethod(lambda t: t.token_id)


class ParentLinksByTokenIdLoader(ManyByKey[str, R.ParentLink]):
    """token -> its token_parents rows in ordinal order (with each parent's run)."""

    fetch = fetcher(q.parents_of_tokens)
    key_of = staticmethod(lambda link: link.token_id)


class ChildrenByTokenIdLoader(ManyByKey[str, tuple[str, int, R.TokenRecord]]):
    """token -> (parent id, ordinal, child) for each of its children."""

    fetch = fetcher(q.children_of_tokens)
    key_of = staticmethod(lambda item: item[0])


class OutcomesByTokenIdLoader(ManyByKey[str, R.OutcomeRecord]):
    fetch = fetcher(q.outcomes_of_tokens)
    key_of = staticmethod(lambda o: o.token_id)


class BatchByIdLoader(OneByKey[str, R.BatchRecord]):
    fetch = fetcher(q.batches_by_id)
    key_of = staticmethod(lambda b: b.batch_id)


class MembersByBatchIdLoader(ManyByKey[str, R.BatchMemberRecord]):
    fetch = fetcher(q.batch_members_of_batches)
    key_of = staticmethod(lambda m: m.batch_id)


class BatchesByMemberTokenIdLoader(ManyByKey[str, tuple[str, int, R.BatchRecord]]):
    fetch = fetcher(q.batches_of_member_tokens)
    key_of = staticmethod(lambda item: item[0])


class OutputsByBatchIdLoader(ManyByKey[str, R.TokenRecord]):
    fetch = fetcher(q.outputs_of_batches)


class ProducingBatchesByTokenIdLoader(ManyByKey[str, R.BatchRecord]):
    fetch = fetcher(q.producing_batches_of_tokens)


class TerminalOutcomesByRowIdLoader(ManyByKey[str, tuple[str, str, str | None]]):
    """row -> (row id, token id, sink) of each terminal outcome of its tokens."""

    fetch = fetcher(q.terminal_outcomes_of_rows)
    key_of = staticmethod(lambda item: item[0])


class ParentEdgesByTokenIdLoader(ManyByKey[str, LevelHit]):
    """token -> the lineage edges into it (token_parents plus batch co-members)."""

    fetch = fetcher(parent_level)
    key_of = staticmethod(lambda hit: hit.key)


class ChildEdgesByTokenIdLoader(ManyByKey[str, LevelHit]):
    """token -> the lineage edges out of it (children plus outputs of its batches)."""

    fetch = fetcher(child_level)
    key_of = staticmethod(lambda hit: hit.key)
