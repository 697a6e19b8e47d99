// Landscape lineage viewer: plain JavaScript, no dependencies, no external URL.
// Every value from the audit database reaches the page through textContent or setAttribute,
// never through innerHTML: branch names, node ids and error messages are data, not markup.
(function () {
  'use strict';

  const config = JSON.parse(document.getElementById('viewer-config').textContent);
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // The queries come from landscape_graphql/web/viewer.py, where the tests check them
  // against the schema.
  const TOKEN_QUERY = config.queries.token;
  const EXPLAIN_QUERY = config.queries.explain;

  const EDGE_KINDS = ['FORK', 'COALESCE', 'EXPAND', 'BATCH'];
  const BOX = { w: 248, h: 60, gapX: 28, gapY: 78, pad: 24 };

  const el = {
    form: document.getElementById('lookup'),
    tokenId: document.getElementById('token-id'),
    runId: document.getElementById('run-id'),
    rowId: document.getElementById('row-id'),
    sink: document.getElementById('sink'),
    maxDepth: document.getElementById('max-depth'),
    auth: document.getElementById('authorization'),
    show: document.getElementById('show'),
    status: document.getElementById('status'),
    errors: document.getElementById('errors'),
    graph: document.getElementById('graph'),
    truncation: document.getElementById('truncation'),
    details: document.getElementById('details'),
  };

  let inFlight = null;

  // ---------------------------------------------------------------- small DOM helpers

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function s(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(key, String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function tokenLink(tokenId) {
    return h('a', { href: '#token=' + encodeURIComponent(tokenId), class: 'token-link mono' }, tokenId);
  }

  function setStatus(text, busy) {
    el.status.textContent = text || '';
    el.status.classList.toggle('busy', Boolean(busy));
    el.show.disabled = Boolean(busy);
  }

  // ---------------------------------------------------------------- talking to the API

  class ApiError extends Error {
    constructor(errors, data) {
      super(errors.map((e) => e.message).join('; '));
      this.errors = errors;
      this.data = data;
    }
  }

  async function graphql(query, variables) {
    if (inFlight) inFlight.abort();
    const controller = new AbortController();
    inFlight = controller;
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    const auth = el.auth.value.trim();
    if (auth) headers.Authorization = auth;
    let response;
    try {
      response = await fetch(config.graphqlPath, {
        method: 'POST',
        credentials: 'same-origin',
        headers,
        body: JSON.stringify({ query, variables }),
        signal: controller.signal,
      });
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new ApiError([{ message: 'The server could not be reached: ' + err.message, extensions: { code: 'NETWORK' } }]);
    } finally {
      if (inFlight === controller) inFlight = null;
    }
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ApiError([{
        message: `HTTP ${response.status} ${response.statusText}: the server did not answer with JSON`,
        extensions: { code: 'HTTP_' + response.status },
      }]);
    }
    if (!body || typeof body !== 'object') {
      throw new ApiError([{ message: 'The server answered something that is not a GraphQL response', extensions: { code: 'BAD_RESPONSE' } }]);
    }
    return { data: body.data || null, errors: Array.isArray(body.errors) ? body.errors : [] };
  }

  // ---------------------------------------------------------------- errors, shown readably

  function showErrors(errors) {
    el.errors.replaceChildren();
    if (!errors || errors.length === 0) {
      el.errors.hidden = true;
      return;
    }
    const list = h('ul');
    for (const error of errors) {
      const ext = (error && error.extensions) || {};
      const item = h('li', null,
        h('code', { class: 'code' }, ext.code || 'ERROR'), ' ',
        h('span', { class: 'message' }, error.message || 'Unknown error'));
      if (Array.isArray(error.path) && error.path.length) {
        item.append(' ', h('small', { class: 'where' }, 'at ' + error.path.join('.')));
      }
      if (Array.isArray(ext.candidateTokenIds) && ext.candidateTokenIds.length) {
        const more = typeof ext.candidateCount === 'number' && ext.candidateCount > ext.candidateTokenIds.length
          ? ` (first ${ext.candidateTokenIds.length} of ${ext.candidateCount})` : '';
        item.append(h('div', { class: 'candidates' }, 'Candidate tokens' + more + ': ',
          ext.candidateTokenIds.map((id, i) => [i ? ', ' : '', tokenLink(id)])));
      }
      const extra = Object.entries(ext).filter(([k]) => !['code', 'candidateTokenIds', 'candidateCount'].includes(k));
      if (extra.length) {
        item.append(h('div', { class: 'extra' },
          extra.map(([k, v]) => h('span', null, k + ': ', h('code', null, typeof v === 'string' ? v : JSON.stringify(v))))));
      }
      list.append(item);
    }
    el.errors.append(h('strong', null, errors.length === 1 ? 'The server reported an error' : `The server reported ${errors.length} errors`), list);
    el.errors.hidden = false;
  }

  // ---------------------------------------------------------------- outcome wording and colour

  function outcomeText(outcome) {
    if (!outcome) return 'no outcome recorded';
    const parts = [];
    const result = outcome.result || outcome.rowOutcome;
    if (result) parts.push(result.toLowerCase());
    if (outcome.path && outcome.path.toLowerCase() !== (result || '').toLowerCase()) parts.push(outcome.path.toLowerCase());
    let text = parts.join(' · ') || 'outcome';
    if (outcome.sinkName) text += ' → ' + outcome.sinkName;
    return text;
  }

  function outcomeClass(outcome) {
    if (!outcome) return 'o-none';
    const words = [outcome.result, outcome.rowOutcome, outcome.path].filter(Boolean).join(' ').toUpperCase();
    if (/FAIL|QUARANTIN|ERROR/.test(words)) return 'o-bad';
    if (/BUFFERED|TRANSIENT|PENDING/.test(words) || outcome.terminal === false) return 'o-wait';
    if (/FORKED|EXPANDED|CONSUMED|COALESCED/.test(words)) return 'o-pass';
    return 'o-good';
  }

  function resultClass(result) {
    const value = String(result || '').toUpperCase();
    if (value === 'SUCCESS') return 'st-good';
    if (value === 'FAILURE') return 'st-bad';
    return 'st-wait';
  }

  function statusClass(status) {
    const value = String(status || '').toUpperCase();
    if (value === 'COMPLETED' || value === 'SUCCESS') return 'st-good';
    if (value === 'FAILED' || value === 'ERROR') return 'st-bad';
    return 'st-wait';
  }

  // ---------------------------------------------------------------- the graph

  function collectGraph(token) {
    const nodes = new Map();
    const edges = new Map();
    const addNode = (t, role) => {
      const existing = nodes.get(t.tokenId);
      if (existing) {
        if (role === 'self') existing.role = 'self';
        if (!existing.outcome && t.outcome) existing.outcome = t.outcome;
        if (!existing.branchName && t.branchName) existing.branchName = t.branchName;
        return;
      }
      nodes.set(t.tokenId, { tokenId: t.tokenId, branchName: t.branchName || null, outcome: t.outcome || null, role });
    };
    const addEdge = (parent, child, kind, ordinal) => {
      const key = parent + '\u0000' + child;
      const known = edges.get(key);
      if (known) {
        if (!known.kind && kind) known.kind = kind;
        return;
      }
      edges.set(key, { parent, child, kind: kind || null, ordinal: ordinal === undefined ? null : ordinal });
    };
    addNode(token, 'self');
    for (const [side, role] of [['ancestors', 'ancestor'], ['descendants', 'descendant']]) {
      const lineage = token[side];
      if (!lineage) continue;
      for (const t of lineage.tokens || []) addNode(t, role);
      for (const e of lineage.edges || []) addEdge(e.parentTokenId, e.childTokenId, e.kind, e.ordinal);
    }
    // The direct parents and children are known even when a lineage field failed or was cut.
    for (const p of token.parents || []) { addNode(p, 'ancestor'); addEdge(p.tokenId, token.tokenId, null); }
    for (const c of token.children || []) { addNode(c, 'descendant'); addEdge(token.tokenId, c.tokenId, null); }
    for (const e of edges.values()) {
      if (!nodes.has(e.parent)) nodes.set(e.parent, { tokenId: e.parent, branchName: null, outcome: null, role: 'ancestor' });
      if (!nodes.has(e.child)) nodes.set(e.child, { tokenId: e.child, branchName: null, outcome: null, role: 'descendant' });
    }
    return { nodes, edges: [...edges.values()] };
  }

  // Layers by longest path from the roots, so every arrow points down and a token sits one
  // layer below its latest-made parent; then a few barycentre sweeps to uncross the arrows.
  function layout(graph, selfId) {
    const ids = [...graph.nodes.keys()];
    const parentsOf = new Map(ids.map((id) => [id, []]));
    const childrenOf = new Map(ids.map((id) => [id, []]));
    for (const e of graph.edges) {
      parentsOf.get(e.child).push(e.parent);
      childrenOf.get(e.parent).push(e.child);
    }
    const layer = new Map();
    const indegree = new Map(ids.map((id) => [id, parentsOf.get(id).length]));
    const queue = ids.filter((id) => indegree.get(id) === 0);
    for (const id of queue) layer.set(id, 0);
    for (let i = 0; i < queue.length; i++) {
      const id = queue[i];
      for (const child of childrenOf.get(id)) {
        layer.set(child, Math.max(layer.get(child) || 0, layer.get(id) + 1));
        indegree.set(child, indegree.get(child) - 1);
        if (indegree.get(child) === 0) queue.push(child);
      }
    }
    // Lineage has no cycles; if corrupt data ever made one, those tokens go below the rest
    // instead of hanging the page.
    const deepest = Math.max(0, ...layer.values());
    for (const id of ids) if (!layer.has(id)) layer.set(id, deepest + 1);
    // A root that joins late (another row's batch member) sits just above its child rather than
    // at the top, where its arrow would cross the whole drawing.
    for (const id of ids) {
      const kids = childrenOf.get(id);
      if (parentsOf.get(id).length === 0 && kids.length) {
        layer.set(id, Math.min(...kids.map((k) => layer.get(k))) - 1);
      }
    }

    const rows = [];
    for (const id of ids) {
      const l = layer.get(id);
      (rows[l] = rows[l] || []).push(id);
    }
    const position = new Map();
    const reindex = () => rows.forEach((row) => row.forEach((id, i) => position.set(id, i)));
    reindex();
    const sweep = (order, neighbours) => {
      for (const l of order) {
        const row = rows[l];
        if (!row) continue;
        const weight = new Map(row.map((id) => {
          const ns = neighbours.get(id).filter((n) => layer.get(n) !== l);
          const mean = ns.length ? ns.reduce((sum, n) => sum + position.get(n), 0) / ns.length : position.get(id);
          return [id, mean];
        }));
        row.sort((a, b) => weight.get(a) - weight.get(b) || position.get(a) - position.get(b));
        row.forEach((id, i) => position.set(id, i));
      }
    };
    const down = rows.map((_, i) => i);
    const up = [...down].reverse();
    for (let round = 0; round < 4; round++) {
      sweep(down, parentsOf);
      sweep(up, childrenOf);
    }

    const widest = Math.max(1, ...rows.map((r) => (r ? r.length : 0)));
    const width = BOX.pad * 2 + widest * BOX.w + (widest - 1) * BOX.gapX;
    const height = BOX.pad * 2 + rows.length * BOX.h + (rows.length - 1) * BOX.gapY;
    const xy = new Map();
    rows.forEach((row, l) => {
      if (!row) return;
      const rowWidth = row.length * BOX.w + (row.length - 1) * BOX.gapX;
      const left = (width - rowWidth) / 2;
      row.forEach((id, i) => xy.set(id, { x: left + i * (BOX.w + BOX.gapX), y: BOX.pad + l * (BOX.h + BOX.gapY) }));
    });
    return { xy, width, height, selfLayer: layer.get(selfId) };
  }

  function shortId(id) {
    return id.length <= 34 ? id : id.slice(0, 20) + '…' + id.slice(-8);
  }

  function drawGraph(graph, selfId) {
    const { xy, width, height, selfLayer } = layout(graph, selfId);
    const defs = s('defs', null, [...EDGE_KINDS, 'PARENT'].map((kind) => s('marker', {
      id: 'arrow-' + kind.toLowerCase(), viewBox: '0 0 10 10', refX: 9, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse', class: 'arrow k-' + kind.toLowerCase(),
    }, s('path', { d: 'M 0 0 L 10 5 L 0 10 z' }))));
    const svg = s('svg', {
      xmlns: SVG_NS, width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
      'aria-label': `Lineage of token ${selfId}: ${graph.nodes.size} tokens, ${graph.edges.length} edges`,
    }, defs);

    const edgeLayer = s('g', { class: 'edges' });
    for (const e of graph.edges) {
      const from = xy.get(e.parent);
      const to = xy.get(e.child);
      const kind = (e.kind || 'PARENT').toUpperCase();
      const x1 = from.x + BOX.w / 2;
      const y1 = from.y + BOX.h;
      const x2 = to.x + BOX.w / 2;
      const y2 = to.y - 2;
      const bend = Math.max(30, (y2 - y1) / 2);
      const path = s('path', {
        d: `M ${x1} ${y1} C ${x1} ${y1 + bend}, ${x2} ${y2 - bend}, ${x2} ${y2}`,
        class: 'edge k-' + kind.toLowerCase(), 'marker-end': `url(#arrow-${kind.toLowerCase()})`,
        'data-kind': kind, 'data-parent': e.parent, 'data-child': e.child,
      }, s('title', null, `${kind}${e.ordinal !== null && e.ordinal !== undefined ? ' #' + e.ordinal : ''}: ${e.parent} → ${e.child}`));
      edgeLayer.append(path);
    }
    svg.append(edgeLayer);

    const nodeLayer = s('g', { class: 'nodes' });
    for (const node of graph.nodes.values()) {
      const { x, y } = xy.get(node.tokenId);
      const selected = node.tokenId === selfId;
      const group = s('g', {
        class: `node ${outcomeClass(node.outcome)}${selected ? ' selected' : ''}`,
        transform: `translate(${x} ${y})`, tabindex: 0, role: 'button',
        'data-token-id': node.tokenId,
        'aria-label': `Token ${node.tokenId}${node.branchName ? ', branch ' + node.branchName : ''}, ${outcomeText(node.outcome)}`,
      },
      s('title', null, `${node.tokenId}\n${outcomeText(node.outcome)}${node.branchName ? '\nbranch ' + node.branchName : ''}`),
      s('rect', { width: BOX.w, height: BOX.h, rx: 8, ry: 8 }),
      s('rect', { class: 'stripe', width: 6, height: BOX.h, rx: 3, ry: 3 }),
      s('text', { x: 16, y: 22, class: 'tid' }, shortId(node.tokenId)),
      s('text', { x: 16, y: 44, class: 'sub' }, (node.branchName ? node.branchName + ' · ' : '') + outcomeText(node.outcome)));
      const open = () => navigateTo(node.tokenId);
      group.addEventListener('click', open);
      group.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); open(); }
      });
      nodeLayer.append(group);
    }
    svg.append(nodeLayer);
    el.graph.replaceChildren(svg);

    // Bring the selected token into view: a big batch can make the drawing far wider than the panel.
    const self = xy.get(selfId);
    if (self) {
      el.graph.scrollLeft = Math.max(0, self.x + BOX.w / 2 - el.graph.clientWidth / 2);
      el.graph.scrollTop = Math.max(0, self.y + BOX.h / 2 - el.graph.clientHeight / 2);
    }
    return selfLayer;
  }

  function describeTruncation(token) {
    const notes = [];
    for (const [side, label] of [['ancestors', 'Ancestors'], ['descendants', 'Descendants']]) {
      const lineage = token[side];
      if (!lineage) continue;
      if (lineage.truncated) {
        notes.push(`${label} cut at depth ${lineage.depthReached}` +
          (lineage.truncationReason ? ` (${String(lineage.truncationReason).toLowerCase().replace(/_/g, ' ')})` : '') +
          ': click the outermost token to go further.');
      }
    }
    el.truncation.textContent = notes.join(' ');
    el.truncation.hidden = notes.length === 0;
  }

  // ---------------------------------------------------------------- the details panel

  function table(caption, columns, rows, emptyText, id) {
    if (!rows.length) return [h('h3', null, caption), h('p', { class: 'empty', id }, emptyText)];
    return [
      h('h3', null, caption, ' ', h('span', { class: 'count' }, String(rows.length))),
      h('div', { class: 'table-wrap' }, h('table', { id },
        h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.cls }, c.label)))),
        h('tbody', null, rows.map((row) => h('tr', null, columns.map((c) => h('td', { class: c.cls }, c.cell(row)))))))),
    ];
  }

  function badge(value, cls) {
    return h('span', { class: 'badge ' + cls }, value === null || value === undefined ? '—' : String(value));
  }

  function fact(label, value) {
    return [h('dt', null, label), h('dd', null, value === null || value === undefined || value === '' ? h('span', { class: 'none' }, '—') : value)];
  }

  function drawDetails(token) {
    const o = token.outcome;
    const ids = (list) => (list && list.length ? list.map((t) => h('div', null, tokenLink(t.tokenId))) : null);
    el.details.replaceChildren(
      h('h2', { id: 'details-title' }, 'Token'),
      h('dl', { class: 'facts' },
        fact('Token id', h('span', { class: 'mono select' }, token.tokenId)),
        fact('Run id', token.runId && h('span', { class: 'mono select' }, token.runId)),
        fact('Row id', token.rowId && h('span', { class: 'mono select' }, token.rowId)),
        fact('Branch', token.branchName),
        fact('Parents', ids(token.parents)),
        fact('Children', ids(token.children))),
      h('h3', null, 'Outcome'),
      o ? h('dl', { class: 'facts outcome ' + outcomeClass(o) },
        fact('Terminal', o.terminal === null || o.terminal === undefined ? null : (o.terminal ? 'yes' : 'no (latest recorded)')),
        fact('Result', o.result && badge(o.result, resultClass(o.result))),
        fact('Path', o.path),
        fact('Row outcome', o.rowOutcome),
        fact('Sink', o.sinkName))
        : h('p', { class: 'empty' }, 'No outcome recorded for this token.'),
      ...table('Node states', [
        { label: 'Step', cls: 'num', cell: (r) => r.stepIndex },
        { label: 'Attempt', cls: 'num', cell: (r) => r.attempt },
        { label: 'Status', cell: (r) => badge(r.status, statusClass(r.status)) },
        { label: 'Node id', cls: 'mono node-id', cell: (r) => r.nodeId },
        { label: 'State id', cls: 'mono dim', cell: (r) => r.stateId },
      ], token.nodeStates || [], 'No node states recorded.', 'node-states'),
      ...table('Calls', [
        { label: 'Call id', cls: 'mono dim', cell: (r) => r.callId },
        { label: 'Type', cell: (r) => r.callType },
        { label: 'Status', cell: (r) => badge(r.status, statusClass(r.status)) },
      ], token.calls || [], 'No external calls.', 'calls'),
    );
  }

  // ---------------------------------------------------------------- loading a token

  function maxDepth() {
    const n = parseInt(el.maxDepth.value, 10);
    if (!Number.isFinite(n) || n < 1) return config.defaultMaxDepth;
    return Math.min(n, config.maxDepthLimit);
  }

  async function loadToken(tokenId) {
    setStatus('Loading lineage of ' + tokenId + '…', true);
    showErrors([]);
    let result;
    try {
      result = await graphql(TOKEN_QUERY, { tokenId, maxDepth: maxDepth() });
    } catch (err) {
      if (err.name === 'AbortError') return;
      setStatus('');
      showErrors(err.errors || [{ message: String(err) }]);
      return;
    }
    showErrors(result.errors);
    const token = result.data && result.data.token;
    if (!token) {
      setStatus(result.errors.length ? 'The token could not be loaded.' : `No token with id ${tokenId} in this Landscape.`);
      el.graph.replaceChildren(h('p', { class: 'empty' }, 'Nothing to draw.'));
      el.truncation.hidden = true;
      el.details.replaceChildren(h('h2', { id: 'details-title' }, 'Token'), h('p', { class: 'empty' }, 'No token selected.'));
      return;
    }
    el.tokenId.value = token.tokenId;
    const graph = collectGraph(token);
    drawGraph(graph, token.tokenId);
    describeTruncation(token);
    drawDetails(token);
    document.title = `Token ${token.tokenId.slice(0, 12)}… · Landscape lineage`;
    const a = graph.nodes.size - 1;
    setStatus(`Token ${token.tokenId}: ${a} related token${a === 1 ? '' : 's'}, ${graph.edges.length} edge${graph.edges.length === 1 ? '' : 's'}.`);
  }

  async function explainThenLoad(runId, rowId, tokenId, sink) {
    setStatus(rowId ? `Finding the token of row ${rowId}…` : `Checking token ${tokenId} in run ${runId}…`, true);
    showErrors([]);
    let result;
    try {
      result = await graphql(EXPLAIN_QUERY, { runId, rowId: rowId || null, tokenId: tokenId || null, sink: sink || null });
    } catch (err) {
      if (err.name === 'AbortError') return;
      setStatus('');
      showErrors(err.errors || [{ message: String(err) }]);
      return;
    }
    const found = result.data && result.data.explain && result.data.explain.token;
    if (!found) {
      setStatus('');
      showErrors(result.errors.length ? result.errors : [{ message: 'explain() found no token for that row', extensions: { code: 'NOT_FOUND' } }]);
      return;
    }
    navigateTo(found.tokenId);
  }

  function navigateTo(tokenId) {
    const hash = '#token=' + encodeURIComponent(tokenId);
    if (location.hash === hash) loadToken(tokenId);
    else location.hash = hash; // the hashchange handler loads it, and Back returns to the last token
  }

  function tokenFromHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    return params.get('token');
  }

  el.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const tokenId = el.tokenId.value.trim();
    const runId = el.runId.value.trim();
    const rowId = el.rowId.value.trim();
    const sink = el.sink.value.trim();
    if (runId && rowId) explainThenLoad(runId, rowId, null, sink);
    // With a run id too, explain() checks the token belongs to that run (RUN_MISMATCH if not).
    else if (runId && tokenId) explainThenLoad(runId, null, tokenId, sink);
    else if (tokenId) navigateTo(tokenId);
    else showErrors([{ message: 'Enter a token id, or a run id with a row id.', extensions: { code: 'MISSING_INPUT' } }]);
  });
  // The two ways of asking exclude each other: typing in one clears what would override it.
  el.tokenId.addEventListener('input', () => { el.rowId.value = ''; el.sink.value = ''; });
  el.rowId.addEventListener('input', () => { el.tokenId.value = ''; });

  window.addEventListener('hashchange', () => {
    const tokenId = tokenFromHash();
    if (tokenId) loadToken(tokenId);
  });
  const initial = tokenFromHash();
  if (initial) loadToken(initial);
})();
