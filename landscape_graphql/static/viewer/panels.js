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

// A fork's expected branches beside the ones that arrived at the coalesce: a branch token arrived
// when it has a child with a join group (the merged token). Why a branch never arrived is the
// row's coalesceBranchLosses (epoch 29; null in epoch 2, which does not record it).
function branches(t) {
  const lostBy = new Map(((t.row && t.row.coalesceBranchLosses) || []).map((l) => [l.tokenId, l]));
  const expected = (t.outcomes || []).map((o) => o.expectedBranches).find((b) => Array.isArray(b));
  if (t.joinGroupId && (t.parents || []).length) {
    const arrived = t.parents.map((p) => p.branchName).filter(Boolean);
    return section('Coalesced branches', arrived.length, facts(['Arrived', arrived.join(', ') || null]),
      h('ul', { class: 'token-list' }, t.parents.map((p) => h('li', { 'data-branch': p.branchName || '', 'data-arrived': 'true' },
        `${p.branchName || '(no branch)'} `, h('a', { href: `#/run/${encodeURIComponent(t.runId)}/token/${encodeURIComponent(p.tokenId)}`,
          'data-pick-token-id': p.tokenId }, h('code', { class: 'id' }, p.tokenId))))));
  }
  if (!expected) return null;
  const byBranch = new Map((t.children || []).filter((c) => c.branchName).map((c) => [c.branchName, c]));
  const names = [...expected.map(String), ...[...byBranch.keys()].filter((b) => !expected.includes(b))];
  const arrivedCount = names.filter((b) => byBranch.has(b) && byBranch.get(b).children.some((g) => g.joinGroupId)).length;
  return section('Branches: expected against arrived', `${arrivedCount} of ${expected.length} arrived`,
    h('table', { class: 'compact', id: 'branches' },
      h('thead', null, h('tr', null, ['Branch', 'Arrived', 'Token', 'Outcome'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, names.map((b) => {
        const c = byBranch.get(b);
        const merged = c ? c.children.find((g) => g.joinGroupId) : null;
        return h('tr', { 'data-branch': b, 'data-arrived': String(Boolean(merged)) },
          h('td', null, b, expected.includes(b) ? '' : ' (not expected)'),
          h('td', null, merged ? badge('arrived', 'good') : badge(c ? 'did not arrive' : 'no token', 'bad'),
            c && lostBy.has(c.tokenId) ? [' ', h('span', { class: 'meta' }, lostBy.get(c.tokenId).reasonKind)] : null),
          h('td', { class: 'wrap' }, c ? h('a', { href: `#/run/${encodeURIComponent(t.runId)}/token/${encodeURIComponent(c.tokenId)}`,
            'data-pick-token-id': c.tokenId }, h('code', { class: 'id' }, c.tokenId)) : '—'),
          h('td', null, c ? outcomeText(c.outcome) : '—'));
      }))));
}

// The row's branch losses that concern this token: its own (it is the branch that never
// arrived), its fork siblings' (why its coalesce failed), or its children's (it forked them).
function losses(t) {
  const all = (t.row && t.row.coalesceBranchLosses) || [];
  const children = new Set((t.children || []).map((c) => c.tokenId));
  const mine = all.filter((l) => l.tokenId === t.tokenId || children.has(l.tokenId)
    || (t.forkGroupId && l.token && l.token.forkGroupId === t.forkGroupId));
  if (!mine.length) return null;
  return section('Branches lost before the coalesce', mine.length, h('table', { class: 'compact', id: 'branch-losses' },
    h('thead', null, h('tr', null, ['Branch', 'Coalesce', 'Why', 'Token'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, mine.map((l) => h('tr', { 'data-loss-id': l.lossId, 'data-branch': l.branchName },
      h('td', null, l.branchName, l.tokenId === t.tokenId ? ' (this token)' : ''),
      h('td', null, l.coalesceName),
      h('td', { class: 'wrap' }, badge(l.reasonKind, 'bad'), l.reasonDetail ? h('code', { class: 'id' }, ' ' + l.reasonDetail) : null),
      h('td', { class: 'wrap' }, h('a', { href: `#/run/${encodeURIComponent(t.runId)}/token/${encodeURIComponent(l.tokenId)}`,
        'data-pick-token-id': l.tokenId }, h('code', { class: 'id' }, l.tokenId))))))));
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
    branches(t),
    losses(t),
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
export function showTokensThrough(runId, what, baseFilter, onPick, extra = null) {
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
  panel.open(`Tokens through ${what}`, extra, form, summary, list, more);
  return load(true);
}
