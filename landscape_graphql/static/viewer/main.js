// Landscape lineage viewer: a one-page app over the GraphQL API. Plain modules, no build step.
import { h } from './dom.js';
import { graphql, ApiError } from './api.js';
import * as router from './router.js';
import { runsPage, runPage } from './pages.js';
import { lineagePage } from './lineage.js';
import { initPanel, panel, errorList } from './panels.js';

const root = document.getElementById('page');
const statusEl = document.getElementById('status');
const errorsEl = document.getElementById('errors');
const announcer = document.getElementById('announce');
let timer = null;
let previousPage = null;

const ctx = {
  autoRefresh: false,
  stale: () => false,
  status(text) { statusEl.textContent = text || ''; },
  announce(text) { announcer.textContent = text; },
  errors(errors) {
    errorsEl.replaceChildren();
    errorsEl.hidden = !errors || !errors.length;
    if (errors && errors.length) errorsEl.append(h('strong', null, 'The server reported:'), errorList(errors));
  },
  reload() { show({ refresh: true }); },
  setAutoRefresh(on) {
    ctx.autoRefresh = on;
    clearInterval(timer);
    timer = on ? setInterval(() => show({ refresh: true }), 5000) : null;
  },
};

let generation = 0;

async function show({ refresh = false } = {}) {
  const route = router.current();
  // Only the latest navigation may draw: a slower answer to an earlier one (Back pressed while
  // loading) must not replace it.
  const mine = ++generation;
  const pageCtx = Object.create(ctx);
  pageCtx.stale = () => mine !== generation;
  ctx.errors([]);
  if (!refresh && previousPage !== route.page + (route.runId || '')) panel.close();
  previousPage = route.page + (route.runId || '');
  document.body.dataset.page = route.page;
  try {
    if (route.page === 'runs') await runsPage(root, pageCtx);
    else if (route.page === 'run') await runPage(root, pageCtx, route);
    else await lineagePage(root, pageCtx, route, { refresh });
    document.title = `${route.page === 'runs' ? 'Runs' : route.page === 'run' ? 'Run' : 'Lineage'} · Landscape viewer`;
  } catch (err) {
    if (err.name === 'AbortError') return;
    ctx.status('');
    ctx.errors(err instanceof ApiError ? err.errors : [{ message: String(err) }]);
  }
}

// One search box: a token id, a row id, a run id, or a row index within the run on screen.
async function search(text) {
  const q = text.trim();
  if (!q) return;
  const route = router.current();
  try {
    if (/^\d+$/.test(q) && route.runId) {
      const r = await graphql('rowIndex', { runId: route.runId, index: Number(q) });
      const row = r.data.run && r.data.run.rows.nodes[0];
      if (!row) { ctx.status(`No row with index ${q} in run ${route.runId}.`); return; }
      ctx.status(`Found row ${row.rowId} (index ${q}).`);
      router.go({ page: 'lineage', runId: route.runId, kind: 'row', id: row.rowId, depth: router.DEFAULT_DEPTH, dir: 'both' });
      return;
    }
    const r = await graphql('search', { id: q });
    const { token, row, run } = r.data;
    if (token) {
      ctx.status(`Found token ${token.tokenId} in run ${token.runId}.`);
      router.go({ page: 'lineage', runId: token.runId, kind: 'token', id: token.tokenId, depth: router.DEFAULT_DEPTH, dir: 'both' });
    } else if (row) {
      ctx.status(`Found row ${row.rowId} in run ${row.runId}.`);
      router.go({ page: 'lineage', runId: row.runId, kind: 'row', id: row.rowId, depth: router.DEFAULT_DEPTH, dir: 'both' });
    } else if (run) {
      ctx.status(`Found run ${run.runId}.`);
      router.go({ page: 'run', runId: run.runId });
    } else {
      ctx.status(/^\d+$/.test(q) ? 'Open a run first to find a row by its index.' : `Nothing found for “${q}”: no token, row or run has that id.`);
    }
  } catch (err) {
    ctx.errors(err instanceof ApiError ? err.errors : [{ message: String(err) }]);
  }
}

initPanel();
panel.onClose = () => {
  const graph = document.querySelector('.lineage-page [data-graph]');
  if (graph) graph.focus();
};
document.getElementById('search').addEventListener('submit', (ev) => {
  ev.preventDefault();
  search(document.getElementById('q').value);
});
document.addEventListener('keydown', (ev) => {
  const typing = ev.target instanceof HTMLElement && ev.target.closest('input, textarea, select');
  if (ev.key === '/' && !typing) { ev.preventDefault(); document.getElementById('q').focus(); }
  if (ev.key === 'Escape' && !panel.el.hidden && !(ev.target instanceof HTMLElement && ev.target.closest('[data-graph]'))) panel.close();
});
window.addEventListener('hashchange', () => show());
// Links of the first viewer (#token=<id>) still work: the search finds the token's run.
const legacy = /^#token=([0-9a-fA-F-]+)$/.exec(location.hash);
if (legacy) {
  history.replaceState(null, '', '#/');
  show();
  search(legacy[1]);
} else {
  show();
}
