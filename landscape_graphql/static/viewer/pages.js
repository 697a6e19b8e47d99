// The runs page (#/) and the run page (#/run/<runId>): the run list and a run's pipeline DAG.
import { h, s, badge, fmtDate, fmtDuration, fmtCount, download } from './dom.js';
import { graphql, lastResponses } from './api.js';
import { panel, showTokensThrough, errorList } from './panels.js';
import dagre from './vendor/dagre.esm.js';

// The one place the run figures are read from a response (counts from connections; switch to
// Run.summary here once it exists).
export function runFigures(run) {
  const started = run.startedAt ? new Date(run.startedAt).getTime() : null;
  const ended = run.completedAt ? new Date(run.completedAt).getTime() : null;
  return {
    duration: started !== null && ended !== null ? (ended - started) / 1000 : null,
    rows: run.rows ? run.rows.totalCount : null,
    tokens: run.tokens ? run.tokens.totalCount : null,
    failures: run.failures ? run.failures.totalCount : null,
  };
}

export async function runsPage(root, ctx) {
  const tbody = h('tbody');
  const more = h('button', { type: 'button', hidden: true }, 'More runs');
  const total = h('p', { class: 'meta' });
  root.replaceChildren(h('section', { class: 'page runs-page', 'aria-labelledby': 'page-title' },
    h('h2', { id: 'page-title' }, 'Runs'), total,
    h('table', { class: 'runs' }, h('caption', { class: 'sr-only' }, 'Runs, newest first'),
      h('thead', null, h('tr', null, ['Run', 'Status', 'Started', 'Duration', 'Rows', 'Tokens', 'Failures']
        .map((c) => h('th', { scope: 'col' }, c)))), tbody), more));
  let after = null;
  const load = async () => {
    const r = await graphql('runs', { first: 50, after });
    if (ctx.stale()) return;
    const conn = r.data.runs;
    if (!conn) { ctx.errors(r.errors); return; }
    total.textContent = `${conn.totalCount} run${conn.totalCount === 1 ? '' : 's'}, newest first.`;
    for (const run of conn.nodes) {
      const f = runFigures(run);
      tbody.append(h('tr', { 'data-run-id': run.runId },
        h('td', null, h('a', { href: `#/run/${encodeURIComponent(run.runId)}` }, h('code', { class: 'id' }, run.runId))),
        h('td', null, badge(run.status)), h('td', null, fmtDate(run.startedAt)),
        h('td', { class: 'num' }, run.status === 'RUNNING' ? 'running' : fmtDuration(f.duration)),
        h('td', { class: 'num' }, fmtCount(f.rows)), h('td', { class: 'num' }, fmtCount(f.tokens)),
        h('td', { class: 'num' }, fmtCount(f.failures))));
    }
    after = conn.pageInfo.endCursor;
    more.hidden = !conn.pageInfo.hasNextPage;
    ctx.status(`${conn.totalCount} runs.`);
  };
  more.addEventListener('click', load);
  await load();
}

const NODE = { w: 190, h: 52 };

export async function runPage(root, ctx, route) {
  const r = await graphql('run', { runId: route.runId });
  if (ctx.stale()) return;
  const run = r.data.run;
  if (!run) {
    root.replaceChildren(h('section', { class: 'page' }, h('h2', { id: 'page-title' }, 'Run not found'),
      h('p', null, `No run ${route.runId} here.`), r.errors.length ? errorList(r.errors) : null));
    return;
  }
  const f = runFigures(run);
  const failed = new Map();
  const retried = new Map();
  for (const st of (run.failedStates && run.failedStates.nodes) || []) failed.set(st.nodeId, (failed.get(st.nodeId) || 0) + 1);
  for (const st of (run.retriedStates && run.retriedStates.nodes) || []) retried.set(st.nodeId, (retried.get(st.nodeId) || 0) + 1);
  const graphBox = h('div', { class: 'graph dag', 'data-graph': '', tabindex: 0, 'aria-label': 'Pipeline DAG; Tab to its nodes' });
  const auto = h('input', { type: 'checkbox', id: 'auto-refresh' });
  const refresh = h('button', { type: 'button' }, 'Refresh');
  refresh.addEventListener('click', () => ctx.reload());
  auto.checked = ctx.autoRefresh;
  auto.addEventListener('change', () => ctx.setAutoRefresh(auto.checked));
  root.replaceChildren(h('section', { class: 'page run-page', 'aria-labelledby': 'page-title' },
    h('div', { class: 'page-head' },
      h('h2', { id: 'page-title' }, 'Run ', h('code', { class: 'id' }, run.runId)),
      badge(run.status), refresh, h('label', { class: 'inline' }, auto, ' refresh every 5 s'),
      h('button', { type: 'button', onclick: () => exportDag(run, svg) }, 'Export SVG'),
      h('button', { type: 'button', onclick: () => download(`run-${run.runId}.json`,
        new Blob([JSON.stringify(lastResponses.get('run'), null, 2)], { type: 'application/json' })) }, 'Export JSON')),
    h('div', { class: 'run-body' },
      h('dl', { class: 'facts summary' },
        [['Started', fmtDate(run.startedAt)], ['Completed', fmtDate(run.completedAt)],
          ['Duration', fmtDuration(f.duration)], ['Rows', fmtCount(f.rows)], ['Tokens', fmtCount(f.tokens)],
          ['Failed tokens', fmtCount(f.failures)],
          ['Failed node states', fmtCount(run.failedStates ? run.failedStates.totalCount : null)],
          ['Retries', fmtCount(run.retriedStates ? run.retriedStates.totalCount : null)]]
          .map(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
      graphBox),
    h('p', { class: 'meta' }, 'Click a node or an edge to list the tokens that went through it. Edge width grows with its token count; dashed edges divert (quarantine, errors).')));
  const svg = drawDag(graphBox, run, failed, retried, (kind, id, label) => {
    showTokensThrough(run.runId, label, kind === 'node' ? { nodeId: id } : { edgeId: id });
  });
  ctx.status(`Run ${run.runId}: ${run.dag ? run.dag.nodes.length : 0} nodes.`);
}

function drawDag(box, run, failed, retried, onPick) {
  const dag = run.dag || { nodes: [], edges: [] };
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: 28, ranksep: 70, marginx: 20, marginy: 20 });
  for (const n of dag.nodes) g.setNode(n.nodeId, { width: NODE.w, height: NODE.h });
  for (const e of dag.edges) {
    if (g.hasNode(e.edge.fromNodeId) && g.hasNode(e.edge.toNodeId)) g.setEdge(e.edge.fromNodeId, e.edge.toNodeId, {}, e.edge.edgeId);
  }
  dagre.layout(g);
  const info = g.graph();
  const width = Math.max(info.width || 0, 200), height = Math.max(info.height || 0, 100);
  const svg = s('svg', { class: 'dag-svg', viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'group',
    'aria-label': `Pipeline of run ${run.runId}` });
  const max = Math.max(1, ...dag.edges.map((e) => e.tokenCount));
  for (const e of dag.edges) {
    const pts = g.edge({ v: e.edge.fromNodeId, w: e.edge.toNodeId, name: e.edge.edgeId });
    if (!pts) continue;
    const d = 'M ' + pts.points.map((p) => `${p.x} ${p.y}`).join(' L ');
    const divert = e.edge.defaultMode === 'DIVERT' || /quarantin|divert|error|discard/i.test(e.edge.label);
    const label = `edge ${e.edge.label} (${e.edge.fromNodeId} → ${e.edge.toNodeId}), ${e.tokenCount} tokens`;
    const el = s('g', { class: `dag-edge${divert ? ' divert' : ''}`, 'data-edge-id': e.edge.edgeId, tabindex: 0,
      role: 'button', 'aria-label': label },
    s('path', { class: 'hit', d }),
    s('path', { class: 'line', d, 'stroke-width': 1 + 5 * Math.log10(1 + e.tokenCount) / Math.log10(1 + max) }),
    s('text', { x: pts.points[Math.floor(pts.points.length / 2)].x, y: pts.points[Math.floor(pts.points.length / 2)].y - 6,
      class: 'edge-label' }, `${e.edge.label} · ${e.tokenCount}`));
    const pick = () => onPick('edge', e.edge.edgeId, `edge ${e.edge.label}`);
    el.addEventListener('click', pick);
    el.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); pick(); } });
    svg.append(el);
  }
  for (const n of dag.nodes) {
    const p = g.node(n.nodeId);
    const fails = failed.get(n.nodeId) || 0;
    const retries = retried.get(n.nodeId) || 0;
    const el = s('g', { class: `dag-node type-${n.nodeType.toLowerCase()}${fails ? ' has-failed' : ''}`,
      transform: `translate(${p.x - NODE.w / 2} ${p.y - NODE.h / 2})`, 'data-node-id': n.nodeId, tabindex: 0,
      role: 'button', 'aria-label': `${n.nodeType} ${n.pluginName} (${n.nodeId})${fails ? `, ${fails} failed states` : ''}${
        retries ? `, ${retries} retries` : ''}`, 'data-failed': fails, 'data-retried': retries },
    s('rect', { width: NODE.w, height: NODE.h, rx: 8 }),
    s('text', { x: 10, y: 20, class: 'name' }, `${n.pluginName}`),
    s('text', { x: 10, y: 38, class: 'sub' }, `${n.nodeType.toLowerCase()} · ${n.nodeId.slice(0, 18)}`));
    if (fails) {
      el.append(s('g', { class: 'fail-badge', transform: `translate(${NODE.w - 44} -8)` },
        s('rect', { width: 52, height: 18, rx: 9 }), s('text', { x: 26, y: 13 }, `✕ ${fails}`),
        s('title', null, `${fails} failed states`)));
    }
    if (retries) {
      el.append(s('g', { class: 'retry-badge', transform: `translate(${NODE.w - (fails ? 100 : 44)} -8)` },
        s('rect', { width: 52, height: 18, rx: 9 }), s('text', { x: 26, y: 13 }, `↻ ${retries}`),
        s('title', null, `${retries} retries`)));
    }
    const pick = () => onPick('node', n.nodeId, `node ${n.pluginName}`);
    el.addEventListener('click', pick);
    el.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); pick(); } });
    svg.append(el);
  }
  box.replaceChildren(svg);
  return svg;
}

function exportDag(run, svg) {
  const copy = svg.cloneNode(true);
  copy.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  copy.prepend(s('title', null, `Pipeline of run ${run.runId}`), s('desc', null, `Run ${run.runId}, status ${run.status}`));
  download(`run-${run.runId}.svg`, new Blob([new XMLSerializer().serializeToString(copy)], { type: 'image/svg+xml' }));
}

export { panel };
