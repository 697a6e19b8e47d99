// The page's state lives in the URL hash, so a view can be linked, reloaded and walked with
// Back/Forward:  #/   #/run/<runId>   #/run/<runId>/token/<tokenId>?depth=&dir=&sel=&collapsed=
//                #/run/<runId>/row/<rowId>?…
export const DEFAULT_DEPTH = 2;

export function parse(hash) {
  const raw = (hash || '').replace(/^#/, '');
  const [path, query] = raw.split('?', 2);
  const parts = (path || '/').split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || '');
  const route = { page: 'runs' };
  if (parts[0] === 'run' && parts[1]) {
    route.runId = parts[1];
    route.page = 'run';
    if ((parts[2] === 'token' || parts[2] === 'row') && parts[3]) {
      route.page = 'lineage';
      route.kind = parts[2];
      route.id = parts[3];
      const depth = parseInt(params.get('depth') || '', 10);
      route.depth = Number.isFinite(depth) && depth >= 1 ? Math.min(depth, 50) : DEFAULT_DEPTH;
      route.dir = ['up', 'down', 'both'].includes(params.get('dir')) ? params.get('dir') : 'both';
      route.sel = params.get('sel') || null;
      route.collapsed = (params.get('collapsed') || '').split(',').filter(Boolean);
      route.view = params.get('view') === 'table' ? 'table' : 'graph';
    }
  }
  return route;
}

export function format(route) {
  if (route.page === 'runs' || !route.runId) return '#/';
  let hash = '#/run/' + encodeURIComponent(route.runId);
  if (route.page !== 'lineage') return hash;
  hash += `/${route.kind}/${encodeURIComponent(route.id)}`;
  const params = new URLSearchParams();
  if (route.depth && route.depth !== DEFAULT_DEPTH) params.set('depth', String(route.depth));
  if (route.dir && route.dir !== 'both') params.set('dir', route.dir);
  if (route.sel) params.set('sel', route.sel);
  if (route.collapsed && route.collapsed.length) params.set('collapsed', route.collapsed.join(','));
  if (route.view === 'table') params.set('view', 'table');
  const q = params.toString();
  return q ? hash + '?' + q : hash;
}

export function go(route, { replace = false } = {}) {
  const hash = format(route);
  if (location.hash === hash) return false;
  if (replace) history.replaceState(null, '', hash);
  else location.hash = hash;
  return true;
}

export function current() {
  return parse(location.hash);
}
