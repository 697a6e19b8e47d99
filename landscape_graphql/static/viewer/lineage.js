// The lineage page: #/run/<runId>/token/<tokenId> or /row/<rowId>, with depth, direction,
// selection and collapsed groups in the URL. The focus token sits in the middle, ancestors to
// its left, descendants to its right.
import { h, badge, outcomeText, download } from './dom.js';
import { graphql, lastResponses } from './api.js';
import { Lineage, place, layout, mermaid, GUARD_LIMIT } from './layout.js';
import { GraphView } from './graph.js';
import { panel, showToken, errorList } from './panels.js';
import * as router from './router.js';

let state = null;  // survives re-renders of the same lineage (paging, expansion, selection)

function key(route) {
  return [route.runId, route.kind, route.id, route.depth, route.dir].join('|');
}

async function fetchLineage(route) {
  const lineage = new Lineage();
  if (route.kind === 'row') {
    const r = await graphql('rowLineage', { rowId: route.id, depth: route.depth });
    const row = r.data.row;
    if (!row) return { errors: r.errors, missing: `No row ${route.id} here.` };
    lineage.addGraph(row.lineage, 'descendants');
    const focus = (row.lineage && row.lineage.rootTokenIds && row.lineage.rootTokenIds[0]) || null;
    if (!focus) return { errors: r.errors, missing: `Row ${route.id} has no tokens.` };
    return { lineage, focus, errors: r.errors, runId: row.runId, raw: lastResponses.get('rowLineage') };
  }
  const r = await graphql('tokenLineage', { tokenId: route.id, depth: route.depth,
    up: route.dir !== 'down', down: route.dir !== 'up' });
  const t = r.data.token;
  if (!t) return { errors: r.errors, missing: `No token ${route.id} here.` };
  lineage.addToken(t);
  lineage.addGraph(t.ancestors, 'ancestors');
  lineage.addGraph(t.descendants, 'descendants');
  return { lineage, focus: t.tokenId, errors: r.errors, runId: t.runId, raw: lastResponses.get('tokenLineage') };
}

export async function lineagePage(root, ctx, route, { refresh = false } = {}) {
  if (!state || state.key !== key(route) || refresh) {
    const got = await fetchLineage(route);
    if (ctx.stale()) return;
    if (!got.lineage) {
      root.replaceChildren(h('section', { class: 'page' }, h('h2', { id: 'page-title' }, 'Lineage'),
        h('p', null, got.missing), got.errors.length ? errorList(got.errors) : null));
      return;
    }
    if (got.runId && got.runId !== route.runId) {
      ctx.errors([{ message: `That ${route.kind} belongs to run ${got.runId}, not ${route.runId}.`, extensions: { code: 'RUN_MISMATCH' } }]);
    }
    const old = state && state.key === key(route) ? state : null;
    state = { key: key(route), ...got, groups: old ? old.groups : new Map(), guardLifted: old ? old.guardLifted : false };
    if (got.errors.length) ctx.errors(got.errors);
  }
  draw(root, ctx, route);
}

function draw(root, ctx, route) {
  const model = place(state.lineage, state.focus, { dir: route.dir, collapsed: route.collapsed, groups: state.groups });
  const tokens = model.items.filter((i) => i.kind === 'token').length;
  const depth = h('input', { type: 'number', min: 1, max: 50, value: route.depth, id: 'depth', class: 'narrow' });
  depth.addEventListener('change', () => router.go({ ...route, depth: Number(depth.value) || router.DEFAULT_DEPTH }));
  const dirs = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Direction' },
    [['up', 'Ancestors'], ['both', 'Both'], ['down', 'Descendants']].map(([d, label]) => h('button', {
      type: 'button', 'aria-pressed': String(route.dir === d), 'data-dir': d,
      onclick: () => router.go({ ...route, dir: d }) }, label)));
  const tableToggle = h('button', { type: 'button', 'aria-pressed': String(route.view === 'table'), id: 'table-toggle',
    onclick: () => router.go({ ...route, view: route.view === 'table' ? 'graph' : 'table' }) }, 'Table view');
  const auto = h('input', { type: 'checkbox', id: 'auto-refresh' });
  auto.checked = ctx.autoRefresh;
  auto.addEventListener('change', () => ctx.setAutoRefresh(auto.checked));
  const graphBox = h('div', { class: 'graph', 'data-graph': '', role: 'group',
    'aria-label': 'Lineage drawing: arrow keys move along edges and between siblings, Enter opens details, + and - zoom, 0 fits' });
  const notes = state.lineage.truncated.map((t) => `${t.side} cut at depth ${t.depth}${t.reason ? ` (${t.reason.toLowerCase().replace(/_/g, ' ')})` : ''}`);
  const head = h('div', { class: 'page-head' },
    h('h2', { id: 'page-title' }, route.kind === 'row' ? 'Row ' : 'Token ', h('code', { class: 'id' }, route.id)),
    h('a', { href: router.format({ page: 'run', runId: route.runId }) }, '← run'),
    h('label', { class: 'inline', for: 'depth' }, 'Depth'), depth, dirs, tableToggle,
    h('button', { type: 'button', onclick: () => lineagePage(root, ctx, router.current(), { refresh: true }) }, 'Refresh'),
    h('label', { class: 'inline' }, auto, ' auto'),
    h('span', { class: 'exports' }, 'Export:',
      ['SVG', 'PNG', 'JSON', 'Mermaid'].map((f) => h('button', { type: 'button', 'data-export': f.toLowerCase(),
        onclick: () => exportView(f, route, view) }, f))));
  const summary = h('p', { class: 'meta', id: 'lineage-summary' },
    `${tokens} token${tokens === 1 ? '' : 's'} drawn, ${model.edges.length} edges, depth ${route.depth}, ${route.dir}.`,
    notes.length ? ' ' + notes.join('; ') + ': use + on a token, or raise the depth.' : '');
  let view = null;
  if (tokens > GUARD_LIMIT && !state.guardLifted) {
    root.replaceChildren(h('section', { class: 'page lineage-page', 'aria-labelledby': 'page-title' }, head, summary,
      h('div', { class: 'guard', role: 'alert' },
        h('p', null, `This view would draw ${tokens} tokens (more than ${GUARD_LIMIT}). Narrow it: lower the depth, pick one direction, or collapse a group.`),
        h('button', { type: 'button', onclick: () => { state.guardLifted = true; draw(root, ctx, route); } }, 'Draw anyway'))));
    return;
  }
  const laid = layout(model);
  const section = h('section', { class: 'page lineage-page', 'aria-labelledby': 'page-title' }, head, summary);
  if (route.view === 'table') {
    section.append(lineageTable(laid, route));
    root.replaceChildren(section);
  } else {
    section.append(graphBox, legend());
    root.replaceChildren(section);
    view = new GraphView(graphBox, {
      lineage: state.lineage,
      describe: `Lineage of ${route.kind} ${route.id}: ${tokens} tokens`,
      onSelect: (id) => {
        router.go({ ...router.current(), sel: id }, { replace: true });
        const t = state.lineage.tokens.get(id);
        ctx.announce(t ? `Selected token ${id}, ${outcomeText(t.outcome)}` : `Selected ${id}`);
      },
      onOpen: () => openSelected(view, route, root, ctx),
      onClose: () => panel.close(),
      onExpand: (id) => expand(id, root, ctx),
      onGroup: (groupId, delta) => page(groupId, delta, laid, root, ctx),
    });
    view.selected = route.sel && laid.byId.has(route.sel) ? route.sel : null;
    view.setModel(laid, { first: true });
    state.view = view;
  }
  state.model = laid;
  ctx.status(`${route.kind === 'row' ? 'Row' : 'Token'} ${route.id}: ${tokens} tokens drawn (${laid.engine} layout).`);
  if (route.sel && laid.byId.has(route.sel) && !panel.el.hidden) openSelectedId(route.sel, laid, root, ctx);
}

function legend() {
  return h('ul', { class: 'legend', 'aria-label': 'Edge kinds' },
    ['FORK', 'COALESCE', 'EXPAND', 'BATCH'].map((k) => h('li', { class: 'k-' + k.toLowerCase() }, k)));
}

function openSelected(view, route, root, ctx) {
  const id = view.selected || state.focus;
  openSelectedId(id, state.model, root, ctx);
}

function openSelectedId(id, model, root, ctx) {
  const item = model.byId.get(id);
  if (item && item.kind === 'group') { showGroup(item, root, ctx); return; }
  const route = router.current();
  const focusLink = id !== state.focus ? h('p', null, h('a', {
    href: router.format({ ...route, kind: 'token', id, sel: null, collapsed: [] }) }, 'Make this token the focus')) : null;
  const collapsed = new Set(route.collapsed);
  const toggle = h('button', { type: 'button', id: 'collapse-toggle',
    onclick: () => {
      if (collapsed.has(id)) collapsed.delete(id); else collapsed.add(id);
      router.go({ ...route, collapsed: [...collapsed] });
    } }, collapsed.has(id) ? 'Expand its group' : 'Collapse its group');
  const pathTo = h('form', { class: 'path-to' }, h('label', null, 'Path to token ', h('input', { name: 'to', spellcheck: 'false', size: 20 })),
    h('button', { type: 'submit' }, 'Show path'));
  pathTo.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const to = pathTo.elements.to.value.trim();
    if (!to) return;
    let r = await graphql('path', { from: id, to });
    if (!r.data.lineagePath) r = await graphql('path', { from: to, to: id });
    const p = r.data.lineagePath;
    if (!p) { ctx.status(`No lineage path links ${id} and ${to}.`); return; }
    ctx.status(`Path of ${p.tokens.length} tokens.`);
    if (state.view) {
      for (const t of p.tokens) state.lineage.addToken({ tokenId: t.tokenId, ...(state.lineage.tokens.get(t.tokenId) || {}) });
      for (const e of p.edges) state.lineage.addEdge(e);
      state.view.lit = new Set(p.tokens.map((t) => t.tokenId));
      for (const [k, el] of state.view.drawn) state.view.paint(k, el);
      for (const el of state.view.drawnEdges.values()) state.view.paintEdge(el);
    }
  });
  showToken(id, h('div', { class: 'token-actions' }, focusLink, toggle, pathTo));
}

function showGroup(item, root, ctx) {
  const route = router.current();
  if (item.collapsedOf) {
    panel.open('Collapsed group', h('p', null, `${item.total} tokens hidden.`), h('button', { type: 'button', onclick: () =>
      router.go({ ...route, collapsed: route.collapsed.filter((c) => c !== item.collapsedOf) }) }, 'Expand'));
    return;
  }
  const search = h('input', { type: 'search', 'aria-label': 'Search in this group', value: item.filter || '', id: 'group-search' });
  const form = h('form', null, search, h('button', { type: 'submit' }, 'Search'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.groups.set(item.level, { page: 0, filter: search.value.trim() });
    draw(root, ctx, router.current());
  });
  panel.open('Group', h('p', null, `${item.shown} of ${item.total} shown (${item.matching} matching), page ${item.page + 1} of ${item.pages}.`),
    h('button', { type: 'button', onclick: () => page(item.id, -1, state.model, root, ctx) }, 'Previous'),
    h('button', { type: 'button', onclick: () => page(item.id, 1, state.model, root, ctx) }, 'Next'), form);
}

function page(groupId, delta, model, root, ctx) {
  const item = model.byId.get(groupId);
  if (!item || item.collapsedOf) return;
  const cur = state.groups.get(item.level) || { page: 0, filter: '' };
  state.groups.set(item.level, { ...cur, page: Math.max(0, Math.min(item.pages - 1, cur.page + delta)) });
  draw(root, ctx, router.current());
  const next = state.model.byId.get(groupId);
  if (next) ctx.announce(`Group page ${next.page + 1} of ${next.pages}`);
}

async function expand(id, root, ctx) {
  const r = await graphql('tokenLineage', { tokenId: id, depth: 1, up: true, down: true });
  const t = r.data.token;
  if (!t) { ctx.errors(r.errors); return; }
  state.lineage.addToken(t);
  for (const side of ['ancestors', 'descendants']) {
    for (const x of (t[side] && t[side].tokens) || []) state.lineage.addToken(x);
    for (const e of (t[side] && t[side].edges) || []) state.lineage.addEdge(e);
  }
  draw(root, ctx, router.current());
  ctx.announce(`Expanded token ${id}`);
}

function lineageTable(model, route) {
  const via = new Map();
  for (const e of model.edges) {
    const a = model.level.get(e.parentTokenId), b = model.level.get(e.childTokenId);
    if (b > 0 && !via.has(e.childTokenId)) via.set(e.childTokenId, e.kind);
    if (a < 0 && !via.has(e.parentTokenId)) via.set(e.parentTokenId, e.kind);
  }
  const rows = model.items.filter((i) => i.kind === 'token').sort((a, b) => a.level - b.level);
  return h('table', { class: 'lineage-table', id: 'lineage-table' },
    h('caption', null, `Tokens of this lineage (depth: negative = ancestors, positive = descendants)`),
    h('thead', null, h('tr', null, ['Token', 'Depth', 'Edge kind', 'Node', 'Status', 'Outcome'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, rows.map((item) => {
      const t = state.lineage.tokens.get(item.id) || {};
      const states = t.nodeStates || [];
      const last = states[states.length - 1];
      return h('tr', { 'data-row-token-id': item.id },
        h('td', null, h('a', { href: router.format({ ...route, sel: item.id, view: 'graph' }) }, h('code', { class: 'id' }, item.id))),
        h('td', { class: 'num' }, item.level), h('td', null, via.get(item.id) || (item.level === 0 ? 'focus' : '—')),
        h('td', null, last ? h('code', { class: 'id' }, last.nodeId) : '—'), h('td', null, last ? badge(last.status) : '—'),
        h('td', null, outcomeText(t.outcome)));
    })));
}

function exportView(format, route, view) {
  const name = `lineage-${route.kind}-${route.id.slice(0, 12)}`;
  const title = `Lineage of ${route.kind} ${route.id}`;
  const desc = `Run ${route.runId}, ${route.kind} ${route.id}, depth ${route.depth}, direction ${route.dir}`;
  if (format === 'JSON') {
    download(name + '.json', new Blob([JSON.stringify(state.raw, null, 2)], { type: 'application/json' }));
  } else if (format === 'Mermaid') {
    download(name + '.mmd', new Blob([mermaid(state.model, state.lineage)], { type: 'text/plain' }));
  } else if (view) {
    const svg = view.exportSvg(title, desc);
    if (format === 'SVG') { download(name + '.svg', new Blob([svg], { type: 'image/svg+xml' })); return; }
    const img = new Image();
    img.onload = () => {
      const canvas = document.createElement('canvas');
      canvas.width = img.width; canvas.height = img.height;
      canvas.getContext('2d').drawImage(img, 0, 0);
      canvas.toBlob((blob) => blob && download(name + '.png', blob), 'image/png');
    };
    img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(svg);
  }
}

export function resetLineage() {
  state = null;
}
