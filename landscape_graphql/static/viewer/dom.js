// Small DOM helpers and the wording of statuses. Audit data (ids, branch names, prompts,
// answers, error messages) reaches the page only through textContent and setAttribute.
export const SVG_NS = 'http://www.w3.org/2000/svg';

function fill(node, attrs, children, svg) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class' && !svg) node.className = value;
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children, false);
}

export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children, true);
}

export function shortId(id, keep = 10) {
  return !id || id.length <= keep + 2 ? id || '' : id.slice(0, keep) + '…';
}

export function fmtDate(value) {
  if (!value) return '—';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function fmtCount(n) {
  return n === null || n === undefined ? '—' : Number(n).toLocaleString('en');
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// Status words come with an icon, so colour is never the only signal.
const TONE_ICON = { good: '✓', bad: '✕', wait: '…', pass: '→', none: '·' };

export function statusTone(value) {
  const v = String(value || '').toUpperCase();
  if (/FAIL|ERROR|QUARANTIN|INTERRUPTED|DISCARD/.test(v)) return 'bad';
  if (/RUNNING|OPEN|PENDING|BUFFERED|TRANSIENT/.test(v)) return 'wait';
  if (/FORK|EXPAND|CONSUMED|COALESCED/.test(v)) return 'pass';
  if (v) return 'good';
  return 'none';
}

export function badge(value, tone) {
  const t = tone || statusTone(value);
  return h('span', { class: `badge t-${t}` }, h('span', { 'aria-hidden': 'true' }, TONE_ICON[t] + ' '),
    value === null || value === undefined ? '—' : String(value));
}

export function outcomeText(o) {
  if (!o) return 'no outcome';
  const parts = [];
  if (o.result) parts.push(o.result);
  if (o.path) parts.push(o.path);
  if (!parts.length && o.rowOutcome) parts.push(o.rowOutcome);
  let text = parts.join(' · ') || 'outcome';
  if (o.sinkName) text += ' → ' + o.sinkName;
  return text;
}

export function outcomeTone(o) {
  if (!o) return 'none';
  if (o.terminal === false) return 'wait';
  return statusTone([o.result, o.path, o.rowOutcome].filter(Boolean).join(' '));
}

export function download(name, blob) {
  const a = h('a', { download: name, href: URL.createObjectURL(blob), hidden: true });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

export async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    if (button) button.textContent = 'Copied';
  } catch {
    if (button) button.textContent = 'Copy failed';
  }
}
