"""Runs with external calls: LLM sentiment classification with retries and malformed responses
(fixture llm-calls), and a gate routing to three sinks, one of them a database sink whose
sink_write operation records SQL calls (fixture examples-multirun)."""

from __future__ import annotations

from typing import Any

from ._core import compact, hash_obj, sha256
from ._recorder import Recorder
from ._run import Node, Run, SinkItem
from ._steps import transform_error

_URL = "http://127.0.0.1:8199/v1/chat/completions"
_MODEL = "chaosllm/fake-gpt-4"
_PROMPT = ("Analyze the sentiment of the following text and respond with ONLY a JSON object.\nText: {text}\n"
           'Respond with exactly this format (no other text): {{"sentiment": "positive" or "negative" or '
           '"neutral", "confidence": 0.0-1.0, "summary": "brief explanation"}} ')
_HEADERS = {"Authorization": "<fingerprint:" + sha256(b"demo-api-key") + ">", "Content-Type": "application/json",
            "HTTP-Referer": "https://github.com/johnm-dta/elspeth", "X-OpenRouter-Title": "Elspeth"}
_TEXTS = ("The delivery was late and the box was damaged.", "Broke after two days of use.",
          "Absolutely love it, would buy again.", "It works as described.", "Customer service was helpful.",
          "Not worth the price.", "Exceeded my expectations in every way.", "Average product, nothing special.")
_SENTIMENTS = ("positive", "negative", "neutral")
_PARITY = "row['id'] % 2 == 0"
_MALFORMED = ("Empty or missing choices in response: ['id', 'object']",
              "Response is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)")


def _llm_nodes() -> list[Node]:
    observed = {"schema": {"mode": "observed"}}
    return [
        Node("source", "source", "csv", {"on_validation_failure": "discard", "path": "reviews.csv",
                                         "schema": {"fields": ["id: int", "text: str"], "mode": "fixed"}}, 0),
        Node("sentiment_llm", "transform", "llm",
             {"base_url": "http://127.0.0.1:8199/v1", "model": _MODEL, "prompt_template": _PROMPT,
              "provider": "openrouter", "response_field": "sentiment_analysis", "temperature": 0, **observed},
             1, "non_deterministic"),
        Node("parity_gate", "gate", "config_gate",
             {"condition": _PARITY, "routes": {"false": "odd_out", "true": "even_out"}}, 2),
        Node("llm_failures", "sink", "json", {"format": "jsonl", "path": "out/llm_failures.jsonl", **observed}),
        Node("even_out", "sink", "json", {"format": "jsonl", "path": "out/even.jsonl", **observed}),
        Node("odd_out", "sink", "json", {"format": "jsonl", "path": "out/odd.jsonl", **observed}),
    ]


_LLM_EDGES = [
    ("source", "sentiment_llm", "continue", "move"),
    ("sentiment_llm", "parity_gate", "continue", "move"),
    ("sentiment_llm", "llm_failures", "__error_sentiment_llm__", "divert"),
    ("parity_gate", "even_out", "true", "move"),
    ("parity_gate", "odd_out", "false", "move"),
]


def _http_request(text: str, max_tokens: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"content": _PROMPT.format(text=text), "role": "user"}],
                            "model": _MODEL, "temperature": 0}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return {"headers": _HEADERS, "json": body, "method": "POST", "url": _URL}


def _completion(rec: Recorder, content: str) -> dict[str, Any]:
    prompt, completion = rec.rand.between(60, 80), rec.rand.between(20, 30)
    return {"choices": [{"finish_reason": "stop", "index": 0, "message": {"content": content, "role": "assistant"}}],
            "created": rec.clock.us // 1_000_000, "id": "fake-" + rec.rand.uuid(), "model": _MODEL,
            "object": "chat.completion",
            "usage": {"completion_tokens": completion, "prompt_tokens": prompt, "total_tokens": prompt + completion}}


def _http_response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    size = len(compact(body))
    return {"body": body, "body_size": size, "headers": {"content-length": str(size),
                                                          "content-type": "application/json", "server": "uvicorn"},
            "status_code": status}


def _attempt(run: Run, text: str, outcome: str) -> tuple[str, str, str | None]:
    """Calls of one LLM attempt (`ok`, `rate_limited` or `malformed`); returns the state id, its
    start time and, when the answer was good, the JSON content."""
    rec = run.rec
    state_id, started = rec.rand.uuid(), rec.clock.tick()
    request = _http_request(text)
    llm_request = {"messages": request["json"]["messages"], "model": _MODEL, "provider": "openrouter",
                   "temperature": 0}
    content = None
    if outcome == "rate_limited":
        body = {"error": {"code": "rate_limit", "message": "Rate limit exceeded. Please retry after the specified time.",
                          "param": None, "type": "rate_limit_error"}}
        rec.call(state_id=state_id, index=0, call_type="http", request=request, response=_http_response(429, body),
                 status="error", error={"message": "HTTP 429", "status_code": 429, "type": "HTTPError"})
        if rec.e29:
            rec.call(state_id=state_id, index=1, call_type="llm", request=llm_request, response=None, status="error",
                     error={"message": "Rate limited (HTTP 429)", "retryable": True, "type": "RateLimitError"})
        return state_id, started, None
    if outcome == "malformed":
        raw = {"id": "fake-" + rec.rand.uuid(), "object": "chat.completion"}
        rec.call(state_id=state_id, index=0, call_type="http", request=request, response=_http_response(200, raw))
        if rec.e29:
            rec.call(state_id=state_id, index=1, call_type="llm", request=llm_request, response=None, status="error",
                     error={"message": _MALFORMED[0], "retryable": False, "type": "LLMClientError"})
        return state_id, started, None
    content = compact({"confidence": rec.rand.ms(0.5, 0.99), "sentiment": rec.rand.pick(_SENTIMENTS),
                       "summary": "Model summary of the review."})
    completion = _completion(rec, content)
    rec.call(state_id=state_id, index=0, call_type="http", request=request, response=_http_response(200, completion))
    if rec.e29:
        rec.call(state_id=state_id, index=1, call_type="llm", request=llm_request,
                 response={"content": content, "model": _MODEL, "raw_response": completion,
                           "usage": completion["usage"]})
    return state_id, started, content


def run_llm(rec: Recorder, n_rows: int, label: str = "llm-calls") -> tuple[Run, dict[str, str]]:
    """LLM classification: most rows succeed first time, some are rate limited once and succeed on
    attempt 1, some get a malformed answer and go to the llm_failures sink."""
    run = Run(rec, label, _llm_nodes(), _LLM_EDGES, ["id: int", "text: str"], error_sinks=frozenset({"llm_failures"}))
    rid, rand, n = run.run_id, rec.rand, run.nid
    cases: dict[str, str] = {}
    llm_calls = 0
    if rec.e29:
        # 0.7.1 checks the provider answers before the run starts.
        op_id = "op_" + rand.uuid()
        started = rec.clock.tick()
        rec.call(operation_id=op_id, index=0, call_type="http", call_id=f"call_{op_id}_0",
                 request=_http_request("ping", max_tokens=32),
                 response=_http_response(200, _completion(rec, '{"sentiment": "positive"}')))
        rec.operation(rid, n("sentiment_llm"), "runtime_preflight", started=started,
                      input_obj={"transform_plugin": "llm"}, op_id=op_id,
                      output_obj={"attempt_count": 1, "retry_count": 0, "retry_errors": []})
    for i in range(n_rows):
        kind = ("ok", "retry", "malformed")[i] if i < 3 else (
            "retry" if rand.chance(0.08) else "malformed" if rand.chance(0.05) else "ok")
        row: dict[str, Any] = {"id": i + 1, "text": rand.pick(_TEXTS)}
        row_id, h0 = rec.row(rid, n("source"), i, row)
        token = rec.token(rid, row_id)
        rec.state(rid, token, n("source"), 0, h0, duration=0.0)
        work = rec.work(rid, token, n("source"), run.worker)
        attempts = ["rate_limited", "ok"] if kind == "retry" else ["malformed" if kind == "malformed" else "ok"]
        content = None
        for attempt, result in enumerate(attempts):
            state_id, started, content = _attempt(run, row["text"], result)
            llm_calls += 1
            if result == "malformed":
                transform_error(run, token, row_id, i, "sentiment_llm", 1, h0, row,
                                {"error": _MALFORMED[0], "reason": "llm_call_failed"}, "llm_failures", work,
                                state_id=state_id, started=started)
                cases.setdefault("llm_transform_error", token)
            elif result == "rate_limited":
                rec.state(rid, token, n("sentiment_llm"), 1, h0, status="failed", attempt=attempt,
                          state_id=state_id, started=started, duration=rand.ms(20.0, 60.0),
                          error=compact({"exception": "Rate limited (HTTP 429)", "type": "RateLimitError"}))
        if content is None:
            continue
        enriched = {**row, "sentiment_analysis": content}
        h1 = hash_obj(enriched)
        rec.state(rid, token, n("sentiment_llm"), 1, h0, output_hash=h1, attempt=len(attempts) - 1,
                  state_id=state_id, started=started, duration=rand.ms(5.0, 50.0),
                  reason=compact({"action": "enriched", "fields_added": ["sentiment_analysis"],
                                  "metadata": {"finish_reason": "stop", "model": _MODEL}}))
        even = row["id"] % 2 == 0
        label_ = "true" if even else "false"
        gate = rec.state(rid, token, n("parity_gate"), 2, h1,
                         after=compact({"condition": _PARITY, "result": str(even), "route_label": label_}))
        rec.route(rid, gate, [run.edge("parity_gate", label_)], "move", {"condition": _PARITY, "result": label_})
        rec.sched(work, "mark_pending_sink")
        run.to_sink("even_out" if even else "odd_out", SinkItem(token, row_id, i, h1, "routed", work=work))
        cases.setdefault("retried_state" if kind == "retry" else "with_calls", token)
    run.finish(llm_calls=0)
    return run, cases


_TIER = "'high' if row['amount'] >= 5000 else 'review' if row['amount'] >= 2000 else 'standard'"


def run_routing(rec: Recorder, n_rows: int, label: str = "gate-routing") -> tuple[Run, dict[str, str]]:
    """A gate with three routes: two named sinks (one a database) and `continue` to the default
    sink, giving gate_routed and default_flow outcomes side by side."""
    observed = {"schema": {"mode": "observed"}}
    fields = ["id: int", "customer: str", "amount: int", "region: str"]
    nodes = [
        Node("source", "source", "csv", {"on_validation_failure": "discard", "path": "deals.csv",
                                         "schema": {"fields": fields, "mode": "fixed"}}, 0),
        Node("enrich", "transform", "passthrough", observed, 1),
        Node("tier_gate", "gate", "config_gate",
             {"condition": _TIER, "routes": {"high": "high_value_db", "review": "manual_review",
                                             "standard": "continue"}, **observed}, 2),
        Node("high_value_db", "sink", "database",
             {"if_exists": "replace", "table": "high_value_deals", "url": "sqlite:///out/deals.db",
              "schema": {"fields": fields, "mode": "fixed"}}),
        Node("manual_review", "sink", "csv", {"path": "out/manual_review.csv", **observed}),
        Node("standard", "sink", "csv", {"path": "out/standard.csv", **observed}),
    ]
    edges = [("source", "enrich", "continue", "move"), ("enrich", "tier_gate", "continue", "move"),
             ("tier_gate", "high_value_db", "high", "move"), ("tier_gate", "manual_review", "review", "move"),
             ("tier_gate", "standard", "continue", "move")]
    run = Run(rec, label, nodes, edges, fields)
    rid, rand, n = run.run_id, rec.rand, run.nid
    cases: dict[str, str] = {}
    for i in range(n_rows):
        amount = (6000, 3000, 500)[i] if i < 3 else rand.between(100, 8000)
        row = {"amount": amount, "customer": f"Customer {i + 1:05d}", "id": i + 1, "region": rand.pick(("eu", "us"))}
        row_id, h0 = rec.row(rid, n("source"), i, row)
        token = rec.token(rid, row_id)
        rec.state(rid, token, n("source"), 0, h0, duration=0.0)
        work = rec.work(rid, token, n("source"), run.worker)
        rec.state(rid, token, n("enrich"), 1, h0, reason='{"action":"passthrough"}')
        tier = "high" if amount >= 5000 else "review" if amount >= 2000 else "standard"
        label_ = "continue" if tier == "standard" else tier
        gate = rec.state(rid, token, n("tier_gate"), 2, h0,
                         after=compact({"condition": _TIER, "result": tier, "route_label": label_}))
        rec.route(rid, gate, [run.edge("tier_gate", label_)], "move", {"condition": _TIER, "result": tier})
        rec.sched(work, "mark_pending_sink")
        sink = {"high": "high_value_db", "review": "manual_review", "standard": "standard"}[tier]
        run.to_sink(sink, SinkItem(token, row_id, i, h0, "completed" if tier == "standard" else "routed", work=work))
        cases.setdefault({"high": "database_sink", "review": "gate_routed_other", "standard": "default_flow"}[tier],
                         token)
    run.finish()
    return run, cases
