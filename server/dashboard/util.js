// util.js - what every part of the page shares: DOM builders (h for HTML, s for SVG), number
// and time formats, class and run colours, and the one tooltip.
export const NS = 'http://www.w3.org/2000/svg';
export const $ = (id) => document.getElementById(id);
export const enc = encodeURIComponent;
export const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

// An HTML element: attrs (text, on<event> handlers, attributes), then children.
export function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'style') e.style.cssText = v; // CSSOM: allowed by the page's CSP
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}
// An SVG element, appended to parent when given.
export function s(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'style') e.style.cssText = v; // CSSOM: allowed by the page's CSP
    else e.setAttribute(k, v);
  }
  if (parent) parent.append(e);
  return e;
}

export function fmtNum(v) {
  if (!isNum(v)) return '—';
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  if (a >= 10) return v.toFixed(2);
  if (a >= 0.001) return v.toFixed(3 + (a < 0.1 ? 1 : 0));
  return v.toExponential(1);
}
export function fmtPct(v, digits = 1) {
  if (!isNum(v)) return '—';
  return (v * 100).toFixed(digits) + '%';
}
export function fmtTick(v, pct) {
  if (pct) return Math.round(v * 1000) / 10 + '%';
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1000) return (v / 1000).toFixed(a >= 10000 ? 0 : 1) + 'k';
  if (a < 0.01) return v.toExponential(0);
  return String(+v.toPrecision(3));
}
export function fmtStep(v) {
  if (!isNum(v)) return '—';
  if (Math.abs(v) < 10000) return String(v);
  return (v / 1000).toFixed(Math.abs(v) >= 100000 ? 0 : 1).replace(/\.0$/, '') + 'k';
}
// 12,345: without Intl, whose first use costs a cold page tens of milliseconds.
export function fmtInt(n) {
  if (!isNum(n)) return '—';
  const t = String(Math.abs(Math.round(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return n < 0 ? '-' + t : t;
}
export function plural(n, word) {
  return `${isNum(n) ? fmtInt(n) : n} ${word}${n === 1 ? '' : 's'}`;
}
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
export function shortDate(ms) {
  const d = new Date(ms);
  return `${MONTHS[d.getMonth()]} ${d.getDate()}`;
}
export function ago(ms) {
  if (!isNum(ms)) return '';
  const sec = Math.round((Date.now() - ms) / 1000);
  if (sec < 5) return 'just now';
  if (sec < 60) return `${sec} s ago`;
  if (sec < 3600) return `${Math.round(sec / 60)} min ago`;
  if (sec < 86400) return `${Math.round(sec / 3600)} h ago`;
  return shortDate(ms);
}
export function clock(ms) {
  return new Date(ms).toLocaleTimeString(undefined, {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}
export function parseTime(v) {
  if (isNum(v)) return v;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : null;
}

// The VOC palette, as in the overlays: class i's colour.
export function vocColor(i) {
  let r = 0,
    g = 0,
    b = 0;
  for (let j = 0; j < 8; j++) {
    r |= ((i >> 0) & 1) << (7 - j);
    g |= ((i >> 1) & 1) << (7 - j);
    b |= ((i >> 2) & 1) << (7 - j);
    i >>= 3;
  }
  return `rgb(${r},${g},${b})`;
}

// Line colours for runs and chosen classes: distinct in light and dark mode (style.css).
export const PALETTE = 10;
export const paletteColor = (i) => `var(--p${((i % PALETTE) + PALETTE) % PALETTE})`;

// A run keeps its colour across reloads: the least used palette slot (the lowest first, and
// neighbouring slots differ most) when it is first seen, remembered in localStorage; a hash of
// the name when storage is unavailable.
const COLOR_STORE = 'segloss.run-colors';
let runColors = null;
export function runColorIndex(run) {
  if (!runColors) {
    try {
      runColors = JSON.parse(localStorage.getItem(COLOR_STORE) || '{}') || {};
    } catch (_) {
      runColors = {};
    }
  }
  if (Number.isInteger(runColors[run])) return runColors[run];
  const used = new Array(PALETTE).fill(0);
  for (const v of Object.values(runColors)) if (Number.isInteger(v)) used[v % PALETTE]++;
  let best = 0;
  for (let i = 1; i < PALETTE; i++) if (used[i] < used[best]) best = i;
  try {
    runColors[run] = best;
    localStorage.setItem(COLOR_STORE, JSON.stringify(runColors));
  } catch (_) {
    // no storage: a hash of the name gives the same colour on a reload
    let hash = 2166136261;
    for (const ch of run) hash = Math.imul(hash ^ ch.charCodeAt(0), 16777619) >>> 0;
    runColors[run] = best = hash % PALETTE;
  }
  return best;
}
export const runColor = (run) => paletteColor(runColorIndex(run));

// ---- the tooltip ---------------------------------------------------------------------------
export function showTip(ev, content) {
  const tip = $('tooltip');
  tip.textContent = '';
  tip.append(content);
  tip.hidden = false;
  const pad = 14;
  const r = tip.getBoundingClientRect();
  let x = ev.clientX + pad,
    y = ev.clientY + pad;
  if (x + r.width > window.innerWidth - 4) x = ev.clientX - pad - r.width;
  if (y + r.height > window.innerHeight - 4) y = ev.clientY - pad - r.height;
  tip.style.left = Math.max(4, x) + 'px';
  tip.style.top = Math.max(4, y) + 'px';
}
export function hideTip() {
  $('tooltip').hidden = true;
}
// A tooltip row: a colour mark, a label, a value.
export function tipRow(color, label, value, dashed) {
  return h(
    'div',
    { class: 'tt-row' },
    h('i', { style: color ? `background:${color}` : null, class: dashed ? 'dashed' : null }),
    h('span', { text: label }),
    h('b', { text: value }),
  );
}
