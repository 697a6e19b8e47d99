// The details panel ([data-panel]): a token's facts, node states, routing events, errors,
// outcomes in both views, artifacts, calls with their payloads (loaded when opened), and the
// source row's and the token's data. Also the run page's "tokens through this node/edge" list.
import { h, badge, fmtDate, fmtBytes, outcomeText, copyText, statusTone } from './dom.js';
import { graphql, ApiError } from './api.js';

export const panel = {
  el: null,
  title: null,
  body: null,
  onClose: null,
  open(title, ...content) {
    this.el.hidden = false;
    this.title.textContent = title;
    this.body.replaceChildren(...content.flat().filter((x) => x !== null && x !== undefined));
  },
  close() {
    this.el.hidden = true;
    this.body.replaceChildren();
    if (this.onClose) this.onClose();
  },
};

export function initPanel() {
  panel.el = document.querySelector('[data-panel]');
  panel.title = panel.el.querySelector('#panel-title');
  panel.body = panel.el.querySelector('.panel-body');
  panel.el.querySelector('.close').addEventListener('click', () => panel.close());
}

function mono(value) {
  return value === null || value === undefined ? h('span', { class: 'none' }, '—') : h('code', { class: 'id' }, String(value));
}

function facts(...pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k),
    h('dd', null, v === null || v === undefined || v === '' ? h('span', { class: 'none' }, '—') : v)]));
}

function section(title, count, ...content) {
  return h('section', { class: 'pane' }, h('h3', null, title, count === null ? '' : h('span', { class: 'count' }, ` ${count}`)), ...content);
}

function json(value) {
  return h('pre', { class: 'json', tabindex: 0 }, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
}

export function errorList(errors) {
  return h('ul', { class: 'error-list' }, errors.map((e) => h('li', null,
    h('code', null, (e.extensions && e.extensions.code) || 'ERROR'), ' ', e.message || 'Unknown error')));
}

// A payload as the API serves it, with its state as a badge: AVAILABLE, PURGED, HASH_ONLY, ...
export function payloadBlock(label, p) {
  if (!p) return h('div', { class: 'payload' }, h('h4', null, label), h('p', { class: 'none' }, 'Not available.'));
  const text = p.json !== null && p.json !== undefined ? JSON.stringify(p.json, null, 2) : p.text;
  const copy = h('button', { type: 'button', class: 'small' }, 'Copy');
  copy.addEventListener('click', () => copyText(text || '', copy));
  return h('div', { class: 'payload', 'data-payload-state': p.state },
    h('h4', null, label, ' ', badge(p.state, p.state === 'AVAILABLE' ? 'good' : 'bad'),
      ' ', h('span', { class: 'meta' }, fmtBytes(p.sizeBytes)), text ? copy : null),
    p.hash ? h('p', { class: 'meta' }, 'sha256 ', h('code', { class: 'id' }, p.hash)) : null,
    p.truncated ? h('p', { class: 'note' }, 'Truncated: only the start of the payload is shown.') : null,
    p.problem ? h('p', { class: 'note' }, p.problem) : null,
    text !== null && text !== undefined ? h('pre', { class: 'json', tabindex: 0 }, text) : null);
}

function lazy(summary, attrs, load) {
  const body = h('div', { class: 'lazy-body' }, h('p', { class: 'none' }, 'Loading…'));
  const el = h('details', attrs, h('summary', null, summary), body);
  let loaded = false;
  el.addEventListener('toggle', async () => {
    if (!el.open || loaded) return;
    loaded = true;
    try {
      body.replaceChildren(...[await load()].flat().filter((x) => x !== null && x !== undefined));
    } catch (err) {
      loaded = false;
      body.replaceChildren(err instanceof ApiError ? errorList(err.errors) : h('p', null, String(err)));
    }
  });
  return el;
}

function outcomeFacts(o) {
  return h('div', { class: 'outcome' },
    facts(['Terminal', o.terminal ? 'yes' : 'no (latest recorded)'],
      ['Result · path', o.result || o.path ? badge(`${o.result || '—'} · ${o.path || '—'}`, statusTone(o.result || o.path)) : null],
      ['Row outcome', o.rowOutcome ? badge(o.rowOutcome) : null],
      ['Stored as', o.storedView === 'ROW_OUTCOME' ? 'row outcome (epoch 2); result · path derived'
        : 'result · path (epoch 29); row outcome derived'],
      ['Sink', o.sinkName], ['Batch', o.batchId && mono(o.batchId)], ['Recorded', fmtDate(o.recordedAt)],
      o.expectedBranches ? ['Expected branches', json(o.expectedBranches)] : null));
}

export async function showToken(tokenId, extra) {
  panel.open('Token', h('p', { class: 'none' }, 'Loading…'));
  let result;
  try {
    result = await graphql('tokenDetails', { tokenId });
  } catch (err) {
    panel.open('Token', err.errors ? errorList(err.errors) : h('p', null, String(err)));
    return;
  }
  const t = result.data.token;
  if (!t) { panel.open('Token', h('p', null, `No token ${tokenId}.`), result.errors.length ? errorList(result.errors) : null); return; }
  const states = t.nodeStates || [];
  const events = states.flatMap((st) => (st.routingEvents || []).map((e) => ({ ...e, state: st })));
  const row = t.row || {};
  const verrors = row.validationErrors || [];
  panel.open('Token',
    result.errors.length ? errorList(result.errors) : null,
    extra || null,
    facts(['Token id', mono(t.tokenId)], ['Run id', mono(t.runId)], ['Row id', mono(t.rowId)],
      ['Row index', row.rowIndex], ['Branch', t.branchName], ['Step', t.stepInPipeline], ['Created', fmtDate(t.createdAt)],
      t.forkGroupId ? ['Fork group', mono(t.forkGroupId)] : null,
      t.joinGroupId ? ['Join group', mono(t.joinGroupId)] : null,
      t.expandGroupId ? ['Expand group', mono(t.expandGroupId)] : null),
    section('Outcome', (t.outcomes || []).length, ...(t.outcomes || []).map(outcomeFacts),
      (t.outcomes || []).length ? null : h('p', { class: 'none' }, 'No outcome recorded.')),
    section('Node states', states.length, states.length ? h('table', { class: 'compact', id: 'node-states' },
      h('thead', null, h('tr', null, ['Step', 'Try', 'Status', 'Node', 'ms'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, states.map((st) => h('tr', null,
        h('td', { class: 'num' }, st.stepIndex), h('td', { class: 'num' }, st.attempt), h('td', null, badge(st.status)),
        h('td', { class: 'wrap' }, h('code', { class: 'id' }, st.nodeId)),
        h('td', { class: 'num' }, st.durationMs === null ? '—' : Math.round(st.durationMs)))))) : h('p', { class: 'none' }, 'None recorded.'),
    ...states.filter((st) => st.error).map((st) => h('details', { class: 'state-error' },
      h('summary', null, `Error at step ${st.stepIndex}, try ${st.attempt}`), json(st.error)))),
    section('Routing events', events.length, ...events.map((e) => h('div', { class: 'event' },
      badge(e.mode, 'pass'), ' ', e.edge ? `${e.edge.label}: ${e.edge.fromNodeId} → ${e.edge.toNodeId}` : e.eventId,
      e.reason && (e.reason.json || e.reason.text) ? json(e.reason.json || e.reason.text) : null))),
    section('Errors', (t.transformErrors || []).length + verrors.length,
      ...(t.transformErrors || []).map((e) => h('div', { class: 'error' }, h('strong', null, 'Transform error'),
        facts(['Transform', mono(e.transformId)], ['Destination', e.destination]), json(e.errorDetails))),
      ...verrors.map((e) => h('div', { class: 'error' }, h('strong', null, 'Validation error'),
        facts(['Node', e.nodeId && mono(e.nodeId)], ['Error', e.error], ['Violation', e.violationType],
          ['Field', e.originalFieldName], ['Expected · actual', e.expectedType ? `${e.expectedType} · ${e.actualType}` : null],
          ['Destination', e.destination], ['Matched by', e.matchedBy])))),
    section('Calls', (t.calls || []).length, ...(t.calls || []).map((c) => lazy(
      [badge(c.status), ` #${c.callIndex} ${c.callType}`, c.latencyMs !== null ? ` · ${Math.round(c.latencyMs)} ms` : ''],
      { class: 'call', 'data-call-id': c.callId },
      async () => {
        const r = await graphql('callPayloads', { callId: c.callId });
        const call = r.data.call || {};
        return [r.errors.length ? errorList(r.errors) : null, facts(['Call id', mono(c.callId)]),
          c.error ? json(c.error) : null, payloadBlock('Request', call.request), payloadBlock('Response', call.response)];
      }))),
    section('Artifacts', (t.artifacts || []).length, ...(t.artifacts || []).map((a) => facts(
      ['Type', a.artifactType], ['Path', mono(a.pathOrUri)], ['Size', fmtBytes(a.sizeBytes)], ['Sink', mono(a.sinkNodeId)]))),
    section('Data', null, lazy('Source row and token data', { class: 'data' }, async () => {
      const r = await graphql('tokenData', { tokenId });
      const tok = r.data.token || {};
      return [r.errors.length ? errorList(r.errors) : null, payloadBlock('Source row', tok.row && tok.row.sourceData),
        payloadBlock('Token data', tok.data)];
    })));
}

// Tokens through a DAG node or edge, paged and filterable by result, path and sink.
export function showTokensThrough(runId, what, baseFilter, onPick) {
  const result = h('select', { 'aria-label': 'Result' }, ['', 'SUCCESS', 'FAILURE', 'TRANSIENT'].map((v) => h('option', { value: v }, v || 'any result')));
  const path = h('input', { 'aria-label': 'Path', placeholder: 'path, e.g. GATE_ROUTED', spellcheck: 'false' });
  const sink = h('input', { 'aria-label': 'Sink', placeholder: 'sink name', spellcheck: 'false' });
  const list = h('ul', { class: 'token-list' });
  const summary = h('p', { class: 'meta', role: 'status' });
  const more = h('button', { type: 'button', hidden: true }, 'More');
  let after = null;
  const load = async (reset) => {
    if (reset) { after = null; list.replaceChildren(); }
    const filter = { ...baseFilter };
    if (result.value) filter.results = [result.value];
    if (path.value.trim()) filter.paths = [path.value.trim().toUpperCase()];
    if (sink.value.trim()) filter.sinkName = sink.value.trim();
    try {
      const r = await graphql('runTokens', { runId, filter, after });
      const conn = r.data.run && r.data.run.tokens;
      if (!conn) { summary.replaceChildren(errorList(r.errors)); return; }
      summary.textContent = `${conn.totalCount} token${conn.totalCount === 1 ? '' : 's'} through ${what}`;
      for (const t of conn.nodes) {
        list.append(h('li', null, h('a', { href: `#/run/${encodeURIComponent(runId)}/token/${encodeURIComponent(t.tokenId)}`,
          'data-pick-token-id': t.tokenId, onclick: () => onPick && onPick(t.tokenId) }, h('code', { class: 'id' }, t.tokenId)),
        ' ', h('span', { class: 'meta' }, (t.branchName ? t.branchName + ' · ' : '') + outcomeText(t.outcome))));
      }
      after = conn.pageInfo.endCursor;
      more.hidden = !conn.pageInfo.hasNextPage;
    } catch (err) {
      summary.replaceChildren(err.errors ? errorList(err.errors) : String(err));
    }
  };
  more.addEventListener('click', () => load(false));
  const form = h('form', { class: 'filters' }, result, path, sink, h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); load(true); });
  panel.open(`Tokens through ${what}`, form, summary, list, more);
  return load(true);
}
