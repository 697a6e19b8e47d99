// The drawing: an SVG in the [data-graph] panel with pan, zoom, fit, a minimap, viewport
// culling (only boxes wholly inside the panel are in the DOM) and level of detail: zoomed far
// out, boxes carry no text and are painted on a canvas under the SVG instead (far.js).
// One tab stop; arrow keys walk the edges, Enter opens, Escape closes.
import { h, s, SVG_NS, shortId, outcomeText, outcomeTone } from './dom.js';
import { pathsThrough } from './layout.js';
import { FarCanvas } from './far.js';

const FAR = 0.45;      // below this scale, boxes carry no text
const READABLE = 0.5;  // the first view fits the drawing only at this scale or more
const MIN_SCALE = 0.002;
const MAX_SCALE = 2.5;

export class GraphView {
  constructor(container, { lineage, onSelect, onOpen, onClose, onExpand, onGroup, describe }) {
    this.container = container;
    this.lineage = lineage;
    this.onSelect = onSelect;
    this.onOpen = onOpen;
    this.onClose = onClose;
    this.onExpand = onExpand;
    this.onGroup = onGroup;
    this.describe = describe || 'Lineage';
    this.k = 1; this.tx = 0; this.ty = 0;
    this.drawn = new Map();
    this.drawnEdges = new Map();
    this.lit = null;
    this.selected = null;
    this.frame = 0;
    this.svg = s('svg', { class: 'graph-svg', role: 'img', 'aria-label': this.describe });
    this.viewport = s('g', { class: 'viewport' });
    this.edgeLayer = s('g', { class: 'edges' });
    this.nodeLayer = s('g', { class: 'nodes' });
    this.viewport.append(this.edgeLayer, this.nodeLayer);
    this.svg.append(defs(), this.viewport);
    this.farCanvas = new FarCanvas();
    this.canvas = this.farCanvas.canvas;
    this.mini = s('svg', { class: 'minimap', 'aria-hidden': 'true' });
    // The viewport frame has a layer of its own: moving it must not repaint every minimap box.
    this.miniFrame = s('svg', { class: 'minimap mini-frame', 'aria-hidden': 'true' });
    this.miniView = s('rect', { class: 'mini-view' });
    this.miniFrame.append(this.miniView);
    this.controls = h('div', { class: 'zoom-controls' },
      h('button', { type: 'button', 'aria-label': 'Zoom in', onclick: () => this.zoomBy(1.25) }, '+'),
      h('button', { type: 'button', 'aria-label': 'Zoom out', onclick: () => this.zoomBy(0.8) }, '−'),
      h('button', { type: 'button', 'aria-label': 'Fit the drawing', onclick: () => this.fit(true) }, 'Fit'));
    container.replaceChildren(this.canvas, this.svg, this.mini, this.miniFrame, this.controls);
    container.tabIndex = 0;
    this.bindInput();
  }

  get width() { return this.container.clientWidth; }
  get height() { return this.container.clientHeight; }

  setModel(model, { first = false } = {}) {
    this.model = model;
    this.itemsByLevel = new Map();
    for (const item of model.items) {
      if (!this.itemsByLevel.has(item.level)) this.itemsByLevel.set(item.level, []);
      this.itemsByLevel.get(item.level).push(item);
    }
    for (const col of this.itemsByLevel.values()) col.sort((a, b) => a.y - b.y);
    this.edgeKeys = model.edges.map((e) => e.parentTokenId + ' ' + e.childTokenId);
    this.connectorKeys = model.connectors.map(([a, b]) => a + ' ' + b);
    this.farCanvas.build(model, this.itemsByLevel, this.lineage);
    this.adjacency();
    this.clear();
    this.drawMinimap();
    if (first) this.firstView();
    this.highlight(this.selected);
    this.render();
  }

  adjacency() {
    this.up = new Map(); this.down = new Map();
    const add = (m, a, b) => (m.get(a) || m.set(a, []).get(a)).push(b);
    for (const e of this.model.edges) { add(this.down, e.parentTokenId, e.childTokenId); add(this.up, e.childTokenId, e.parentTokenId); }
    for (const [a, b] of this.model.connectors) { add(this.down, a, b); add(this.up, b, a); }
  }

  clear() {
    this.nodeLayer.replaceChildren();
    this.edgeLayer.replaceChildren();
    this.drawn.clear();
    this.drawnEdges.clear();
  }

  // ------------------------------------------------------------------ view transform

  firstView() {
    const b = this.model.bounds;
    const pad = 24;
    const k = Math.min(1, (this.width - 2 * pad) / b.w, (this.height - 2 * pad) / b.h);
    this.fitted = k >= READABLE;
    if (k >= READABLE) {
      this.k = k;
      this.tx = (this.width - b.w * k) / 2 - b.x * k;
      this.ty = (this.height - b.h * k) / 2 - b.y * k;
    } else {
      this.k = 1;
      this.centreOn(this.model.focusId);
    }
  }

  fit(announce) {
    const b = this.model.bounds;
    const pad = 24;
    this.k = Math.max(MIN_SCALE, Math.min(1, (this.width - 2 * pad) / b.w, (this.height - 2 * pad) / b.h));
    this.tx = (this.width - b.w * this.k) / 2 - b.x * this.k;
    this.ty = (this.height - b.h * this.k) / 2 - b.y * this.k;
    this.schedule();
    if (announce) this.container.focus();
  }

  centreOn(id) {
    const item = this.model.byId.get(id);
    if (!item) return;
    this.fitted = false;
    this.tx = this.width / 2 - (item.x + item.w / 2) * this.k;
    this.ty = this.height / 2 - (item.y + item.h / 2) * this.k;
    this.schedule();
  }

  ensureVisible(id) {
    const item = this.model.byId.get(id);
    if (!item) return;
    const x = item.x * this.k + this.tx, y = item.y * this.k + this.ty;
    if (x < 0 || y < 0 || x + item.w * this.k > this.width || y + item.h * this.k > this.height) this.centreOn(id);
  }

  zoomBy(factor, cx = this.width / 2, cy = this.height / 2) {
    this.fitted = false;
    const k = Math.max(MIN_SCALE, Math.min(MAX_SCALE, this.k * factor));
    this.tx = cx - (cx - this.tx) * (k / this.k);
    this.ty = cy - (cy - this.ty) * (k / this.k);
    this.k = k;
    this.schedule();
  }

  panBy(dx, dy) {
    this.fitted = false;
    this.tx += dx; this.ty += dy;
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  // ------------------------------------------------------------------ drawing

  render() {
    if (!this.model) return;
    this.viewport.setAttribute('transform', `translate(${this.tx} ${this.ty}) scale(${this.k})`);
    const far = this.k < FAR;
    if (far !== this.far) {
      this.far = far;
      this.clear();
      this.container.classList.toggle('lod-far', far);
      this.canvas.hidden = !far;
    }
    const vx = -this.tx / this.k, vy = -this.ty / this.k;
    const vw = this.width / this.k, vh = this.height / this.k;
    if (this.far) {
      this.farCanvas.draw(this);
    } else {
      const inside = (it) => it.x >= vx && it.y >= vy && it.x + it.w <= vx + vw && it.y + it.h <= vy + vh;
      const keep = new Set();
      for (const item of this.model.items) {
        if (!inside(item)) continue;
        keep.add(item.id);
        if (!this.drawn.has(item.id)) {
          const el = item.kind === 'group' ? this.groupElement(item) : this.tokenElement(item);
          this.drawn.set(item.id, el);
          this.nodeLayer.append(el);
          this.paint(item.id, el);
        }
      }
      for (const [id, el] of this.drawn) if (!keep.has(id)) { el.remove(); this.drawn.delete(id); }
      this.drawNearEdges(keep);
    }
    this.miniView.setAttribute('x', vx); this.miniView.setAttribute('y', vy);
    this.miniView.setAttribute('width', vw); this.miniView.setAttribute('height', vh);
  }

  drawNearEdges(keep) {
    const keepEdges = new Set();
    const consider = (key, a, b, make) => {
      if (!keep.has(a) && !keep.has(b)) return;
      keepEdges.add(key);
      if (!this.drawnEdges.has(key)) {
        const el = make();
        this.drawnEdges.set(key, el);
        this.edgeLayer.append(el);
        this.paintEdge(el);
      }
    };
    this.model.edges.forEach((e, i) => {
      consider(this.edgeKeys[i], e.parentTokenId, e.childTokenId, () => this.edgeElement(e));
    });
    this.model.connectors.forEach(([a, b], i) => consider(this.connectorKeys[i], a, b, () => this.connectorElement(a, b)));
    for (const [key, el] of this.drawnEdges) if (!keepEdges.has(key)) { el.remove(); this.drawnEdges.delete(key); }
  }

  itemAt(clientX, clientY) {
    const rect = this.svg.getBoundingClientRect();
    const x = (clientX - rect.left - this.tx) / this.k, y = (clientY - rect.top - this.ty) / this.k;
    return this.model.items.find((it) => x >= it.x && x <= it.x + it.w && y >= it.y && y <= it.y + it.h) || null;
  }

  tokenElement(item) {
    const t = this.lineage.tokens.get(item.id) || { tokenId: item.id };
    const last = (t.nodeStates || [])[Math.max(0, (t.nodeStates || []).length - 1)];
    const tone = outcomeTone(t.outcome);
    const g = s('g', {
      class: `token t-${tone}${item.id === this.model.focusId ? ' focus' : ''}`,
      transform: `translate(${item.x} ${item.y})`, 'data-token-id': item.id,
    }, s('rect', { class: 'box', width: item.w, height: item.h, rx: this.far ? 0 : 6 }));
    if (!this.far) {
      g.append(s('rect', { class: 'stripe', width: 5, height: item.h, rx: 2 }),
        s('text', { x: 12, y: 18, class: 'tid' }, shortId(item.id, 20)),
        s('text', { x: 12, y: 36, class: 'sub' }, truncate((t.branchName ? t.branchName + ' · ' : '') +
          (last ? last.nodeId + ' ' : '') + outcomeText(t.outcome), 29)),
        s('title', null, `${item.id}\n${outcomeText(t.outcome)}${t.branchName ? '\nbranch ' + t.branchName : ''}`));
      const unseen = this.lineage.unseen(item.id);
      if (unseen) {
        const plus = s('g', { class: 'expand', transform: `translate(${item.w - 22} 4)`, 'data-expand': item.id },
          s('rect', { width: 18, height: 18, rx: 4 }), s('text', { x: 9, y: 14 }, '+'),
          s('title', null, `Show ${unseen} more related token${unseen === 1 ? '' : 's'}`));
        g.append(plus);
      }
    }
    return g;
  }

  groupElement(item) {
    const label = item.collapsedOf ? `${item.total} collapsed` : `${item.shown} of ${item.total} shown`;
    const g = s('g', { class: 'group', transform: `translate(${item.x} ${item.y})`, 'data-group-id': item.id,
      'data-group-total': item.total, 'data-group-shown': item.shown },
    s('rect', { class: 'box', width: item.w, height: item.h, rx: 10 }));
    if (!this.far) {
      g.append(s('text', { x: 12, y: 20, class: 'tid' }, label));
      if (item.collapsedOf) {
        g.append(s('text', { x: 12, y: 40, class: 'sub' }, 'select to expand'));
      } else {
        g.append(s('text', { x: 12, y: 40, class: 'sub' },
          `page ${item.page + 1} of ${item.pages}${item.filter ? ` · “${item.filter}”` : ''}`));
        g.append(s('g', { class: 'pager', 'data-page': -1, transform: `translate(${item.w - 50} 30)` },
          s('rect', { width: 20, height: 20, rx: 4 }), s('text', { x: 10, y: 15 }, '‹')));
        g.append(s('g', { class: 'pager', 'data-page': 1, transform: `translate(${item.w - 26} 30)` },
          s('rect', { width: 20, height: 20, rx: 4 }), s('text', { x: 10, y: 15 }, '›')));
      }
    }
    return g;
  }

  edgePath(a, b) {
    const x1 = a.x + a.w, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y + b.h / 2;
    const bend = Math.max(24, Math.abs(x2 - x1) / 2);
    return `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`;
  }

  edgeElement(e) {
    const a = this.model.byId.get(e.parentTokenId), b = this.model.byId.get(e.childTokenId);
    const kind = (e.kind || 'PARENT').toUpperCase();
    return s('path', { class: `edge k-${kind.toLowerCase()}`, d: this.edgePath(a, b),
      'marker-end': `url(#arrow-${kind.toLowerCase()})`, 'data-edge-kind': kind,
      'data-parent-token-id': e.parentTokenId, 'data-child-token-id': e.childTokenId });
  }

  connectorElement(a, b) {
    return s('path', { class: 'edge connector', d: this.edgePath(this.model.byId.get(a), this.model.byId.get(b)),
      'data-from': a, 'data-to': b });
  }

  drawMinimap() {
    const b = this.model.bounds;
    const big = b.w > this.width || b.h > this.height;
    this.mini.classList.toggle('off', !big);
    this.miniFrame.classList.toggle('off', !big);
    if (!big) return;
    const pad = 40;
    const box = `${b.x - pad} ${b.y - pad} ${b.w + 2 * pad} ${b.h + 2 * pad}`;
    this.mini.setAttribute('viewBox', box);
    this.miniFrame.setAttribute('viewBox', box);
    let d = '';
    for (const it of this.model.items) d += `M${it.x} ${it.y}h${it.w}v${it.h}h${-it.w}z`;
    this.mini.replaceChildren(s('path', { class: 'mini-boxes', d }));
  }

  // ------------------------------------------------------------------ selection and highlight

  select(id, { quiet = false } = {}) {
    this.selected = id;
    this.highlight(id);
    if (id) this.ensureVisible(id);
    if (!quiet && this.onSelect) this.onSelect(id);
  }

  highlight(id) {
    this.lit = id && this.model && this.model.byId.has(id) && !id.includes(':') ? pathsThrough(this.model, id) : null;
    this.container.classList.toggle('has-path', Boolean(this.lit));
    for (const [key, el] of this.drawn) this.paint(key, el);
    for (const el of this.drawnEdges.values()) this.paintEdge(el);
    if (this.far) this.schedule();
  }

  paint(id, el) {
    el.classList.toggle('selected', id === this.selected);
    el.classList.toggle('lit', Boolean(this.lit && this.lit.has(id)));
  }

  paintEdge(el) {
    const a = el.getAttribute('data-parent-token-id'), b = el.getAttribute('data-child-token-id');
    el.classList.toggle('lit', Boolean(this.lit && a && this.lit.has(a) && this.lit.has(b)));
  }

  neighbour(key) {
    const id = this.selected || this.model.focusId;
    const item = this.model.byId.get(id);
    if (!item) return null;
    const byY = (ids) => ids.map((x) => this.model.byId.get(x)).filter(Boolean).sort((p, q) => p.y - q.y);
    if (key === 'ArrowLeft') return (byY(this.up.get(id) || [])[0] || {}).id;
    if (key === 'ArrowRight') return (byY(this.down.get(id) || [])[0] || {}).id;
    const col = this.itemsByLevel.get(item.level) || [];
    const i = col.indexOf(item);
    const next = col[i + (key === 'ArrowDown' ? 1 : -1)];
    return next && next.id;
  }

  // ------------------------------------------------------------------ input

  bindInput() {
    let drag = null;
    const pointers = new Map();
    this.svg.addEventListener('pointerdown', (ev) => {
      pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
      drag = { x: ev.clientX, y: ev.clientY, moved: false };
    });
    this.svg.addEventListener('pointermove', (ev) => {
      if (!drag || !pointers.has(ev.pointerId)) return;
      if (pointers.size === 2) {
        const [a, b] = [...pointers.values()];
        const before = Math.hypot(a.x - b.x, a.y - b.y);
        pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
        const [c, d] = [...pointers.values()];
        const after = Math.hypot(c.x - d.x, c.y - d.y);
        if (before > 0) this.zoomBy(after / before);
        return;
      }
      pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      if (!drag.moved) this.svg.setPointerCapture(ev.pointerId);
      drag.moved = true;
      drag.x = ev.clientX; drag.y = ev.clientY;
      this.panBy(dx, dy);
    });
    const end = (ev) => { pointers.delete(ev.pointerId); };
    this.svg.addEventListener('pointerup', end);
    this.svg.addEventListener('pointercancel', end);
    this.svg.addEventListener('click', (ev) => {
      if (drag && drag.moved) { drag = null; return; }
      drag = null;
      const target = ev.target instanceof Element ? ev.target : null;
      if (!target) return;
      const expand = target.closest('[data-expand]');
      if (expand) { this.onExpand(expand.getAttribute('data-expand')); return; }
      const pager = target.closest('.pager');
      const group = target.closest('[data-group-id]');
      if (pager && group) { this.onGroup(group.getAttribute('data-group-id'), Number(pager.getAttribute('data-page'))); return; }
      if (group) { this.select(group.getAttribute('data-group-id')); this.onOpen(); return; }
      if (this.far) {
        const hit = this.itemAt(ev.clientX, ev.clientY);
        if (hit) { this.centreOn(hit.id); this.zoomBy(1 / this.k, this.width / 2, this.height / 2); this.select(hit.id); }
        return;
      }
      const token = target.closest('[data-token-id]');
      if (token) { this.select(token.getAttribute('data-token-id')); this.onOpen(); this.container.focus(); }
    });
    this.svg.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      const rect = this.svg.getBoundingClientRect();
      this.zoomBy(Math.exp(-ev.deltaY * (ev.ctrlKey ? 0.01 : 0.0015)), ev.clientX - rect.left, ev.clientY - rect.top);
    }, { passive: false });
    this.container.addEventListener('keydown', (ev) => {
      if (ev.target !== this.container) return;
      if (ev.key.startsWith('Arrow')) {
        ev.preventDefault();
        const next = this.neighbour(ev.key);
        if (next) this.select(next);
      } else if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        if (!this.selected) this.select(this.model.focusId);
        this.onOpen();
      } else if (ev.key === 'Escape') {
        this.onClose();
      } else if (ev.key === '+' || ev.key === '=') {
        this.zoomBy(1.25);
      } else if (ev.key === '-') {
        this.zoomBy(0.8);
      } else if (ev.key === '0') {
        this.fit();
      }
    });
    // When the panel opens or the window changes, keep what was in view: a fitted drawing is
    // fitted again, otherwise the point at the centre stays at the centre.
    let size = [this.width, this.height];
    new ResizeObserver(() => {
      const [w, h] = [this.width, this.height];
      if (!this.model || (w === size[0] && h === size[1])) return;
      if (this.fitted) {
        this.firstView();
      } else {
        this.tx += (w - size[0]) / 2;
        this.ty += (h - size[1]) / 2;
      }
      size = [w, h];
      this.schedule();
    }).observe(this.container);
  }

  // ------------------------------------------------------------------ export

  // The whole drawing (no culling), standalone, with a title and a description.
  exportSvg(title, description) {
    const b = this.model.bounds;
    const pad = 20;
    const svg = s('svg', { xmlns: SVG_NS, width: b.w + 2 * pad, height: b.h + 2 * pad,
      viewBox: `${b.x - pad} ${b.y - pad} ${b.w + 2 * pad} ${b.h + 2 * pad}`, role: 'img' },
    s('title', null, title), s('desc', null, description), s('style', null, EXPORT_STYLE), defs(),
    s('rect', { x: b.x - pad, y: b.y - pad, width: b.w + 2 * pad, height: b.h + 2 * pad, fill: '#fff' }));
    const far = this.far;
    this.far = false;
    const edges = s('g', { class: 'edges' });
    for (const e of this.model.edges) edges.append(this.edgeElement(e));
    for (const [a, c] of this.model.connectors) edges.append(this.connectorElement(a, c));
    const nodes = s('g', { class: 'nodes' });
    for (const item of this.model.items) nodes.append(item.kind === 'group' ? this.groupElement(item) : this.tokenElement(item));
    this.far = far;
    svg.append(edges, nodes);
    return new XMLSerializer().serializeToString(svg);
  }
}

function truncate(text, n) {
  return text.length > n ? text.slice(0, n - 1) + '…' : text;
}

function defs() {
  return s('defs', null, ['fork', 'coalesce', 'expand', 'batch', 'parent'].map((kind) => s('marker', {
    id: 'arrow-' + kind, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 6, markerHeight: 6,
    orient: 'auto-start-reverse', class: 'arrow k-' + kind,
  }, s('path', { d: 'M 0 0 L 10 5 L 0 10 z' }))));
}

const EXPORT_STYLE = `
.box{fill:#fff;stroke:#8a94a6;stroke-width:1}.group .box{fill:#eef2f8;stroke-dasharray:4 3}
.stripe{fill:#8a94a6}.t-good .stripe{fill:#1f8a4c}.t-bad .stripe{fill:#c0392b}.t-wait .stripe{fill:#b7791f}.t-pass .stripe{fill:#2b6cb0}
.focus .box{stroke:#1a365d;stroke-width:2.5}text{font:12px system-ui,sans-serif;fill:#1a202c}.sub{fill:#4a5568;font-size:11px}
.tid{font-family:ui-monospace,monospace}.edge{fill:none;stroke:#8a94a6;stroke-width:1.5}.k-fork{stroke:#2b6cb0}
.k-coalesce{stroke:#6b46c1}.k-expand{stroke:#b7791f}.k-batch{stroke:#2f855a;stroke-dasharray:6 3}.connector{stroke-dasharray:2 3}
.expand rect,.pager rect{fill:#edf2f7;stroke:#8a94a6}.expand text,.pager text{text-anchor:middle}marker path{fill:#8a94a6}`;
