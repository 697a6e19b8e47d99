// From a lineage (tokens and edges, as the API answers) to what is drawn and where.
// Placement walks outwards from the focus token one level at a time, so a level wider than
// GROUP_LIMIT becomes a group node ("N of M shown") before anything beyond it is placed, and a
// collapsed token stops the walk on its far side. Coordinates come from dagre for small
// drawings and from an O(n) lanes layout (one column per level) above DAGRE_LIMIT.
import dagre from './vendor/dagre.esm.js';

export const GROUP_LIMIT = 20;
export const DAGRE_LIMIT = 300;
export const GUARD_LIMIT = 2000;
export const BOX = { w: 208, h: 46 };
export const GROUP_BOX = { w: 208, h: 58 };
const GAP = { x: 64, y: 14 };

// The lineage store: every token and edge seen so far (the walk, plus one-hop expansions).
export class Lineage {
  constructor() {
    this.tokens = new Map();
    this.edges = new Map();
    this.children = new Map();
    this.parents = new Map();
    this.truncated = [];
  }

  addToken(t) {
    const known = this.tokens.get(t.tokenId);
    this.tokens.set(t.tokenId, known ? { ...known, ...t } : t);
  }

  addEdge(e) {
    const key = e.parentTokenId + ' ' + e.childTokenId;
    if (this.edges.has(key)) return;
    this.edges.set(key, e);
    if (!this.children.has(e.parentTokenId)) this.children.set(e.parentTokenId, []);
    if (!this.parents.has(e.childTokenId)) this.parents.set(e.childTokenId, []);
    this.children.get(e.parentTokenId).push(e);
    this.parents.get(e.childTokenId).push(e);
  }

  addGraph(graph, side) {
    if (!graph) return;
    for (const t of graph.tokens || []) this.addToken(t);
    for (const e of graph.edges || []) this.addEdge(e);
    if (graph.truncated) this.truncated.push({ side, depth: graph.depthReached, reason: graph.truncationReason });
  }

  // Parents or children the API lists that this drawing has not loaded: the token gets a "+".
  unseen(tokenId) {
    const t = this.tokens.get(tokenId);
    if (!t) return 0;
    let n = 0;
    for (const p of t.parents || []) if (!this.tokens.has(p.tokenId)) n++;
    for (const c of t.children || []) if (!this.tokens.has(c.tokenId)) n++;
    return n;
  }
}

function matches(token, filter) {
  if (!filter) return true;
  const f = filter.toLowerCase();
  return token.tokenId.toLowerCase().includes(f) || String(token.branchName || '').toLowerCase().includes(f);
}

// What is drawn: placed tokens with their level, group nodes, and the edges between them.
// groups: Map level -> { page, filter } (paging state of wide levels).
export function place(lineage, focusId, { dir = 'both', collapsed = [], groups = new Map(), limit = GROUP_LIMIT } = {}) {
  const level = new Map([[focusId, 0]]);
  const items = [{ kind: 'token', id: focusId, level: 0 }];
  const groupNodes = [];
  const connectors = [];
  const collapsedSet = new Set(collapsed);
  const sides = [];
  if (dir !== 'up') sides.push([1, lineage.children, 'childTokenId']);
  if (dir !== 'down') sides.push([-1, lineage.parents, 'parentTokenId']);
  for (const [step, index, far] of sides) {
    let frontier = [focusId];
    let L = 0;
    while (frontier.length) {
      L += step;
      const cands = [];
      const via = new Map();
      for (const id of frontier) {
        const out = index.get(id) || [];
        if (collapsedSet.has(id) && out.length) {
          const hidden = out.filter((e) => !level.has(e[far])).length;
          if (hidden) {
            const g = { kind: 'group', id: `collapsed:${id}:${step}`, level: L, total: hidden, shown: 0,
              collapsedOf: id };
            groupNodes.push(g);
            connectors.push(step > 0 ? [id, g.id] : [g.id, id]);
          }
          continue;
        }
        const sorted = [...out].sort((a, b) => (a.ordinal ?? 0) - (b.ordinal ?? 0) || (a[far] < b[far] ? -1 : 1));
        for (const e of sorted) {
          const other = e[far];
          if (level.has(other) || via.has(other)) continue;
          via.set(other, id);
          cands.push(other);
        }
      }
      let shown = cands;
      if (cands.length > limit) {
        const state = groups.get(L) || { page: 0, filter: '' };
        const pool = cands.filter((id) => matches(lineage.tokens.get(id) || { tokenId: id }, state.filter));
        const pages = Math.max(1, Math.ceil(pool.length / limit));
        const page = Math.min(state.page, pages - 1);
        shown = pool.slice(page * limit, page * limit + limit);
        const g = { kind: 'group', id: `level:${L}`, level: L, total: cands.length, shown: shown.length,
          page, pages, filter: state.filter, matching: pool.length };
        groupNodes.push(g);
        const shownSet = new Set(shown);
        const from = new Set(cands.filter((id) => !shownSet.has(id)).map((id) => via.get(id)));
        for (const p of from) connectors.push(step > 0 ? [p, g.id] : [g.id, p]);
      }
      for (const id of shown) {
        level.set(id, L);
        items.push({ kind: 'token', id, level: L });
      }
      frontier = shown;
    }
  }
  const edges = [];
  for (const e of lineage.edges.values()) {
    if (level.has(e.parentTokenId) && level.has(e.childTokenId)) edges.push(e);
  }
  return { items: [...items, ...groupNodes], edges, connectors, level, focusId };
}

function sizeOf(item) {
  return item.kind === 'group' ? GROUP_BOX : BOX;
}

// Lanes: one column per level, tokens stacked in walk order. O(n), no rank computation.
export function layoutLanes(model) {
  const columns = new Map();
  for (const item of model.items) {
    if (!columns.has(item.level)) columns.set(item.level, []);
    columns.get(item.level).push(item);
  }
  const minLevel = Math.min(...columns.keys());
  for (const [L, col] of columns) {
    let height = 0;
    for (const item of col) height += sizeOf(item).h + GAP.y;
    let y = -height / 2;
    for (const item of col) {
      const size = sizeOf(item);
      item.x = (L - minLevel) * (BOX.w + GAP.x);
      item.y = y;
      item.w = size.w;
      item.h = size.h;
      y += size.h + GAP.y;
    }
  }
  return finish(model, 'lanes');
}

export function layoutDagre(model) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: GAP.y, ranksep: GAP.x, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const item of model.items) {
    const size = sizeOf(item);
    g.setNode(item.id, { width: size.w, height: size.h });
  }
  for (const e of model.edges) g.setEdge(e.parentTokenId, e.childTokenId);
  for (const [a, b] of model.connectors) g.setEdge(a, b);
  dagre.layout(g);
  for (const item of model.items) {
    const n = g.node(item.id);
    item.w = n.width;
    item.h = n.height;
    item.x = n.x - n.width / 2;
    item.y = n.y - n.height / 2;
  }
  return finish(model, 'dagre');
}

function finish(model, engine) {
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  const byId = new Map();
  for (const item of model.items) {
    byId.set(item.id, item);
    minX = Math.min(minX, item.x); minY = Math.min(minY, item.y);
    maxX = Math.max(maxX, item.x + item.w); maxY = Math.max(maxY, item.y + item.h);
  }
  return { ...model, byId, engine, bounds: { x: minX, y: minY, w: maxX - minX, h: maxY - minY } };
}

export function layout(model, { engine } = {}) {
  const use = engine || (model.items.length <= DAGRE_LIMIT ? 'dagre' : 'lanes');
  return use === 'dagre' ? layoutDagre(model) : layoutLanes(model);
}

// Every token on a path from `id` to a source (upwards) or to a sink (downwards), in the drawing.
export function pathsThrough(model, id) {
  const up = new Map(), down = new Map();
  for (const e of model.edges) {
    (down.get(e.parentTokenId) || down.set(e.parentTokenId, []).get(e.parentTokenId)).push(e.childTokenId);
    (up.get(e.childTokenId) || up.set(e.childTokenId, []).get(e.childTokenId)).push(e.parentTokenId);
  }
  const seen = new Set([id]);
  for (const index of [up, down]) {
    const stack = [id];
    const local = new Set([id]);
    while (stack.length) {
      const cur = stack.pop();
      for (const next of index.get(cur) || []) {
        if (!local.has(next)) { local.add(next); seen.add(next); stack.push(next); }
      }
    }
  }
  return seen;
}

// Mermaid flowchart text of a drawing.
export function mermaid(model, lineage) {
  const name = new Map();
  const lines = ['flowchart LR'];
  model.items.forEach((item, i) => {
    const key = 'n' + i;
    name.set(item.id, key);
    const t = lineage.tokens.get(item.id);
    const label = item.kind === 'group' ? `${item.shown} of ${item.total} shown`
      : `${item.id.slice(0, 12)}${t && t.branchName ? ' ' + t.branchName : ''}`;
    lines.push(`  ${key}["${label.replace(/["\\[\]]/g, '')}"]`);
  });
  for (const e of model.edges) {
    lines.push(`  ${name.get(e.parentTokenId)} -->${e.kind ? '|' + e.kind + '|' : ''} ${name.get(e.childTokenId)}`);
  }
  for (const [a, b] of model.connectors) lines.push(`  ${name.get(a)} -.-> ${name.get(b)}`);
  return lines.join('\n') + '\n';
}
