// The far level of detail of the lineage drawing (graph.js), below FAR scale.
// Far out, the boxes and edges are painted on a canvas, once per frame, only where they are
// in the panel, and at most once per pixel: an SVG of thousands of elements (or of one path
// holding them all) is re-rasterised whole, tile by tile, at every pan and zoom step, which is
// what held a 10,000-token frame at 40-110 ms. Built once per model: typed arrays by column.
import { h, outcomeTone } from './dom.js';

// Far-out box colours, by outcome tone (as the stripes of the boxes drawn near).
const TONES = ['none', 'good', 'bad', 'wait', 'pass', 'group', 'dim'];
const DIM = TONES.indexOf('dim');
const TONE_FILL = { none: '#8a94a6', good: '#1f7a45', bad: '#b42318', wait: '#b7791f', pass: '#2b6cb0', group: '#9fb3c8',
  dim: '#dfe3e9' };

export class FarCanvas {
  constructor() {
    this.canvas = h('canvas', { class: 'far-canvas', 'aria-hidden': 'true', hidden: true });
    this.ctx = null;
  }

  // The arrays are made on the first far frame, not with the model: most views are never zoomed out.
  build(model, itemsByLevel, lineage) {
    this.source = [model, itemsByLevel, lineage];
  }

  arrays(model, itemsByLevel, lineage) {
    this.source = null;
    const tones = new Map(TONES.map((t, i) => [t, i]));
    this.cols = [...itemsByLevel.values()].map((col) => {
      const n = col.length;
      const c = { n, ids: col.map((it) => it.id), x: new Float64Array(n), y: new Float64Array(n), w: new Float64Array(n),
        h: new Float64Array(n), tone: new Uint8Array(n), maxH: 0 };
      col.forEach((it, i) => {
        const t = lineage.tokens.get(it.id);
        c.x[i] = it.x; c.y[i] = it.y; c.w[i] = it.w; c.h[i] = it.h;
        c.tone[i] = tones.get(it.kind === 'group' ? 'group' : outcomeTone(t && t.outcome)) ?? 0;
        c.maxH = Math.max(c.maxH, it.h);
      });
      return c;
    });
    const pairs = [...model.edges.map((e) => [e.parentTokenId, e.childTokenId]), ...model.connectors]
      .map(([a, b]) => [model.byId.get(a), model.byId.get(b)]).filter(([p, q]) => p && q)
      .map(([p, q]) => [p.x + p.w, p.y + p.h / 2, q.x, q.y + q.h / 2, p.id, q.id])
      .sort((p, q) => p[0] - q[0] || p[1] - q[1] || p[3] - q[3]);
    this.lines = new Float64Array(pairs.length * 4);
    pairs.forEach((p, i) => this.lines.set(p.slice(0, 4), i * 4));
    this.lineIds = pairs.map((p) => [p[4], p[5]]);
  }

  // Paints `view` (its scale k, translation tx/ty, panel size, lit paths and selection).
  draw(view) {
    const w = view.width, h = view.height, dpr = window.devicePixelRatio || 1;
    const canvas = this.canvas;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    }
    if (this.source) this.arrays(...this.source);
    const ctx = this.ctx || (this.ctx = canvas.getContext('2d'));
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const { k, tx, ty, lit } = view;
    // Edges: straight lines in the panel; consecutive ones on the same pixels are drawn once.
    const L = this.lines;
    const plain = new Path2D(), bright = new Path2D();
    let a0 = NaN, b0 = NaN, c0 = NaN, d0 = NaN;
    for (let i = 0, j = 0; i < L.length; i += 4, j++) {
      const x1 = L[i] * k + tx, y1 = L[i + 1] * k + ty, x2 = L[i + 2] * k + tx, y2 = L[i + 3] * k + ty;
      if (x2 < 0 || x1 > w || (y1 < 0 && y2 < 0) || (y1 > h && y2 > h)) continue;
      const on = lit && lit.has(this.lineIds[j][0]) && lit.has(this.lineIds[j][1]);
      if (!on) {
        const a = Math.round(x1), b = Math.round(y1), c = Math.round(x2), d = Math.round(y2);
        if (a === a0 && b === b0 && c === c0 && d === d0) continue;
        a0 = a; b0 = b; c0 = c; d0 = d;
      }
      const path = on ? bright : plain;
      path.moveTo(x1, y1); path.lineTo(x2, y2);
    }
    ctx.lineWidth = 1; ctx.strokeStyle = lit ? '#e2e6ec' : '#c3cad6'; ctx.stroke(plain);
    if (lit) { ctx.lineWidth = 2; ctx.strokeStyle = '#1d4f91'; ctx.stroke(bright); }
    // Boxes, column by column (sorted by y, so the ones in the panel are a binary search away);
    // boxes of one tone that touch on screen are one bar, and a box within a pixel row already
    // painted is skipped: the work is bounded by the panel's pixels, not by the token count.
    const bars = TONES.map(() => []);
    const vy0 = -ty / k, vy1 = (h - ty) / k;
    let count = 0, selected = null;
    for (const col of this.cols) {
      let lo = 0, hi = col.n;
      while (lo < hi) { const m = (lo + hi) >> 1; if (col.y[m] + col.maxH < vy0) lo = m + 1; else hi = m; }
      let tone = -1, bx = 0, bw = 0, by0 = 0, by1 = -Infinity;
      const flush = () => { if (tone >= 0) bars[tone].push(bx, by0, bw, by1 - by0); };
      for (let i = lo; i < col.n && col.y[i] <= vy1; i++) {
        const x = col.x[i] * k + tx, bwi = Math.max(col.w[i] * k, 1);
        if (x + bwi < 0 || x > w) continue;
        const y = col.y[i] * k + ty, y2 = y + Math.max(col.h[i] * k, 1);
        if (y2 < 0) continue;
        count++;
        const id = col.ids[i];
        if (id === view.selected) selected = [x, y, bwi, y2 - y];
        const t = lit && !lit.has(id) ? DIM : col.tone[i];
        if (x === bx && Math.ceil(y2) <= Math.ceil(by1)) continue;
        if (t === tone && x === bx && y <= by1 + 0.5) { by1 = Math.max(by1, y2); continue; }
        flush();
        tone = t; bx = x; bw = bwi; by0 = y; by1 = y2;
      }
      flush();
    }
    let painted = 0;
    bars.forEach((list, t) => {
      if (!list.length) return;
      ctx.fillStyle = TONE_FILL[TONES[t]];
      // On whole pixels: crisp bars, no half-covered pixels at their edges.
      for (let i = 0; i < list.length; i += 4) {
        const x = Math.round(list[i]), y = Math.round(list[i + 1]);
        ctx.fillRect(x, y, Math.max(1, Math.round(list[i] + list[i + 2]) - x), Math.max(1, Math.round(list[i + 1] + list[i + 3]) - y));
      }
      painted += list.length / 4;
    });
    if (selected) { ctx.lineWidth = 3; ctx.strokeStyle = '#f5a623'; ctx.strokeRect(...selected); }
    // For tests and tools: how many boxes are in the panel, and how many bars painted them.
    canvas.setAttribute('data-far-drawn', count);
    canvas.setAttribute('data-far-painted', painted);
  }
}
