// linechart.js - the hand-written SVG line chart of the loss, quality and per-class curves:
// several lines (keys of one run, or one key of several runs), a raw curve drawn faint behind
// its smoothed one, x by step or wall time, a log y axis, decimation to the pixel columns,
// zoom by dragging a range (double-click resets), a hover cursor shared by every chart of a
// cursor group, and a click that picks the step under the cursor.
import { s, h, isNum, fmtTick, fmtPct, fmtNum, showTip, hideTip, tipRow, clock } from './util.js';
import { decimate, pathD, within } from './series.js';

// A set of charts whose cursors move together: hovering one shows the same x on the others.
export function cursorGroup() {
  const members = [];
  return {
    add(m) {
      members.push(m);
    },
    clear() {
      members.length = 0;
    },
    show(x, from) {
      for (const m of members) if (m !== from) m.show(x);
    },
    hide(from) {
      for (const m of members) if (m !== from) m.hide();
    },
  };
}

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}
function ticks(lo, hi, count, integer, fixed) {
  let st = fixed || niceStep(hi - lo || 1, count);
  if (integer) st = Math.max(1, Math.round(st));
  const out = [];
  for (let v = Math.ceil(lo / st - 1e-9) * st; v <= hi + st * 1e-9 && out.length < 50; v += st)
    out.push(+v.toPrecision(12));
  return out;
}
function logTicks(lo, hi) {
  const out = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of Math.log10(hi / lo) < 2 ? [1, 2, 5] : [1]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(+v.toPrecision(6));
    }
  }
  return out;
}
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
  43200, 86400, 172800, 604800].map((x) => x * 1000);
function timeTicks(lo, hi, count) {
  const want = (hi - lo) / Math.max(1, count);
  const st = TIME_STEPS.find((t) => t >= want) || TIME_STEPS[TIME_STEPS.length - 1];
  const tz = new Date().getTimezoneOffset() * 60000;
  const out = [];
  for (let v = Math.ceil((lo - tz) / st) * st + tz; v <= hi && out.length < 50; v += st)
    out.push(v);
  return { ticks: out, step: st };
}

// How long a click waits for a second one before it picks a step (a double-click resets the
// zoom instead).
const PICK_DELAY_MS = 300;

// Finite values of a series, counted once per array (series arrays are replaced, not edited).
const counts = new WeakMap();
function finiteCount(points) {
  let n = counts.get(points);
  if (n === undefined) {
    n = 0;
    for (const p of points) if (isNum(p.value)) n++;
    counts.set(points, n);
  }
  return n;
}

export function lineChart(host, lines, opt) {
  host.textContent = '';
  const W = Math.max(280, opt.width || host.clientWidth || 600);
  const H = opt.height || (W < 520 ? 220 : 270);
  const m = { l: 50, r: 16, t: 12, b: 30 };
  const time = opt.xMode === 'time';
  const xOf = time ? (p) => p.timestamp : (p) => p.step;
  const svg = s('svg', {
    class: 'chart-svg',
    width: W,
    height: H,
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-label': `${opt.name} against ${time ? 'time' : 'step'}`,
    'data-chart': opt.name,
  });
  host.append(svg);

  // the x domain: everything, or the zoomed range (steps are in order: first and last suffice)
  let xmin = Infinity,
    xmax = -Infinity;
  for (const l of lines) {
    const pts = l.points;
    if (!pts.length) continue;
    if (!time) {
      xmin = Math.min(xmin, xOf(pts[0]));
      xmax = Math.max(xmax, xOf(pts[pts.length - 1]));
      continue;
    }
    for (const p of pts) {
      const x = xOf(p);
      if (!isNum(x)) continue;
      if (x < xmin) xmin = x;
      if (x > xmax) xmax = x;
    }
  }
  const pw = W - m.l - m.r,
    ph = H - m.t - m.b;
  const empty = (text) => {
    s('text', { x: W / 2, y: H / 2, class: 'nodata', 'text-anchor': 'middle', text }, svg);
  };
  if (!Number.isFinite(xmin)) return empty('no data yet');
  let x0 = xmin,
    x1 = xmax;
  const zoomed = !!(opt.zoom && opt.zoom[1] > opt.zoom[0]);
  if (zoomed) [x0, x1] = opt.zoom;
  if (x0 === x1) {
    x0 = time ? x0 - 60000 : x0 >= 0 ? Math.max(0, x0 - 1) : x0 - 1;
    x1 = time ? x1 + 60000 : x0 + 2;
  }
  const X = (x) => m.l + ((x - x0) / (x1 - x0)) * pw;
  // What is drawn: the visible part of every line, raw and smoothed, decimated to the pixel
  // columns first; decimation keeps each column's lowest and highest point, so the y range
  // read from the decimated points is the range of them all.
  const logWanted = opt.log;
  const shown = lines.map((l) => {
    const raw = zoomed ? within(l.points, xOf, x0, x1) : l.points;
    const smoothed = l.drawn && l.drawn !== l.points;
    const drawn = smoothed ? (zoomed ? within(l.drawn, xOf, x0, x1) : l.drawn) : raw;
    const rawD = decimate(raw, X, pw, xOf);
    return { ...l, raw, drawn, rawD, drawnD: smoothed ? decimate(drawn, X, pw, xOf) : rawD };
  });
  let lo = Infinity,
    hi = -Infinity,
    any = false,
    anyPos = false,
    loPos = Infinity;
  for (const l of shown)
    for (const set of l.drawnD === l.rawD ? [l.rawD] : [l.rawD, l.drawnD])
      for (const p of set) {
        const x = xOf(p);
        if (!isNum(p.value) || x < x0 || x > x1) continue;
        any = true;
        if (p.value < lo) lo = p.value;
        if (p.value > hi) hi = p.value;
        if (p.value > 0) {
          anyPos = true;
          if (p.value < loPos) loPos = p.value;
        }
      }
  if (!any) return empty(lines.some((l) => l.points.length) ? 'no values here (all null)' : 'no data yet');
  const log = logWanted && anyPos;
  let y0, y1, yStep;
  if (log) {
    y0 = loPos * 0.85;
    y1 = hi * 1.15;
  } else {
    y0 = Math.min(0, lo);
    y1 = hi;
    if (opt.pct) y1 = Math.min(1, y1 * 1.08 || 1);
    if (y1 <= y0) y1 = y0 + 1;
    yStep = niceStep(y1 - y0, 4);
    y1 = Math.ceil(y1 / yStep - 1e-9) * yStep;
    y0 = Math.floor(y0 / yStep + 1e-9) * yStep;
    if (opt.pct && y1 > 1) y1 = 1;
  }
  const Y = log
    ? (y) => m.t + ph - ((Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * ph
    : (y) => m.t + ph - ((y - y0) / (y1 - y0)) * ph;
  const ySafe = (y) => (log && y <= 0 ? Y(y0) : Y(y));
  const yClip = (pts) => (log ? pts.filter((p) => !isNum(p.value) || p.value > 0) : pts);

  const defs = s('defs', null, svg);
  const clipId = `clip-${opt.name}-${Math.random().toString(36).slice(2, 8)}`;
  s('rect', { x: m.l, y: m.t - 4, width: pw, height: ph + 8 }, s('clipPath', { id: clipId }, defs));

  const grid = s('g', { class: 'grid' }, svg);
  const yt = log ? logTicks(y0, y1) : ticks(y0, y1, 4, false, yStep);
  for (const v of yt) {
    const y = Y(v);
    s('line', { x1: m.l, x2: W - m.r, y1: y, y2: y }, grid);
    s('text', { x: m.l - 8, y: y + 4, 'text-anchor': 'end', class: 'tick', text: fmtTick(v, opt.pct) }, grid);
  }
  let xt, xLabel;
  if (time) {
    const t = timeTicks(x0, x1, Math.max(2, Math.floor(pw / 90)));
    xt = t.ticks;
    xLabel = (v) =>
      t.step >= 86400000
        ? new Date(v).toLocaleDateString(undefined, { month: 'short', day: 'numeric' })
        : new Date(v).toLocaleTimeString(undefined, {
            hour: '2-digit',
            minute: '2-digit',
            second: t.step < 60000 ? '2-digit' : undefined,
          });
  } else {
    xt = ticks(x0, x1, Math.max(2, Math.floor(pw / 80)), true).filter((v) => v >= x0 && v <= x1);
    // one unit along the axis: 2k 4k ... 10k rather than 2000 4000 ... 10k
    xLabel = (v) => (x1 >= 10000 && Math.abs(v) >= 1000 ? `${+(v / 1000).toFixed(1)}k` : String(v));
  }
  for (const v of xt) {
    const x = X(v);
    s('line', { x1: x, x2: x, y1: H - m.b, y2: H - m.b + 4, class: 'tickmark' }, grid);
    s('text', { x, y: H - m.b + 17, 'text-anchor': 'middle', class: 'tick', text: xLabel(v) }, grid);
  }
  s('line', { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: 'axis' }, grid);
  s('text', {
    x: W - m.r,
    y: H - 2,
    'text-anchor': 'end',
    class: 'axis-label',
    text: (time ? 'time' : 'step') + (zoomed ? ' · zoomed (double-click: all)' : ''),
  }, grid);

  const body = s('g', { class: 'lines', 'clip-path': `url(#${clipId})` }, svg);
  const smoothing = shown.some((l) => l.drawn !== l.raw);
  for (const l of [...shown].reverse()) {
    if (smoothing && l.drawn !== l.raw)
      s('path', {
        d: pathD(yClip(l.rawD), X, ySafe, xOf) || 'M0 0',
        class: 'raw',
        'data-key': l.key,
        'data-run': l.run,
        stroke: l.color,
        'stroke-width': 1.2,
        fill: 'none',
      }, body);
    const pts = yClip(l.drawnD);
    const total = zoomed ? finiteCount(l.points) : l.rawD.finite;
    s('path', {
      d: pathD(pts, X, ySafe, xOf) || 'M0 0',
      class: 'series',
      'data-key': l.key,
      'data-run': l.run,
      'data-points': total,
      'data-visible': l.rawD.finite,
      stroke: l.color,
      'stroke-width': l.width || 1.7,
      'stroke-dasharray': l.dash,
      fill: 'none',
      'stroke-linejoin': 'round',
      'stroke-linecap': 'round',
    }, body);
    // dots: every point of a short curve, lonely points (decimation keeps the columns that
    // hold a gap whole, so they are among its points), and the latest value
    const few = l.drawn.length <= 40;
    const dotted = few ? yClip(l.drawn) : pts;
    let lastIdx = -1;
    for (let i = dotted.length - 1; i >= 0 && lastIdx < 0; i--) if (isNum(dotted[i].value)) lastIdx = i;
    for (let i = 0; i < dotted.length; i++) {
      const p = dotted[i];
      if (!isNum(p.value)) continue;
      const lonely = !isNum(dotted[i - 1]?.value) && !isNum(dotted[i + 1]?.value);
      const last = i === lastIdx && p === l.drawn[l.drawn.length - 1];
      if (few || lonely || last)
        s('circle', {
          cx: X(xOf(p)),
          cy: ySafe(p.value),
          r: last ? 3.6 : lonely ? 3.2 : 2.3,
          fill: l.color,
          class: last ? 'pt last' : 'pt',
        }, body);
    }
  }

  // hover: a guide at the nearest x, a dot per line and (on the hovered chart) a tooltip
  const hover = s('g', { class: 'hover', display: 'none' }, svg);
  const guide = s('line', { y1: m.t, y2: H - m.b, class: 'guide' }, hover);
  const dots = shown.map((l) => s('circle', { r: 4.5, fill: l.color, class: 'hover-dot' }, hover));
  const brush = s('rect', { y: m.t, height: ph, class: 'brush', display: 'none' }, svg);
  const catcher = s('rect', { x: m.l, y: m.t, width: pw, height: ph, fill: 'transparent', class: 'catcher' }, svg);
  // the nearest point of a line to x: a binary search of its (x-ordered) points
  const nearestIn = (pts, x) => {
    if (!pts.length) return -1;
    let a = 0,
      b = pts.length - 1;
    while (b - a > 1) {
      const mid = (a + b) >> 1;
      if (xOf(pts[mid]) < x) a = mid;
      else b = mid;
    }
    return Math.abs(xOf(pts[a]) - x) <= Math.abs(xOf(pts[b]) - x) ? a : b;
  };
  const nearest = (target) => {
    let best = null;
    for (const l of shown) {
      const i = nearestIn(l.drawn, target);
      if (i < 0) continue;
      const x = xOf(l.drawn[i]);
      if (best === null || Math.abs(x - target) < Math.abs(best - target)) best = x;
    }
    return best;
  };
  const place = (x) => {
    const at = nearest(x);
    if (at === null || at < x0 || at > x1) {
      hover.setAttribute('display', 'none');
      return null;
    }
    const px = X(at);
    guide.setAttribute('x1', px);
    guide.setAttribute('x2', px);
    const rows = [];
    shown.forEach((l, i) => {
      const j = nearestIn(l.drawn, at);
      const hit = j >= 0 && xOf(l.drawn[j]) === at ? [l.drawn[j], l.raw === l.drawn ? null : l.raw[j]] : null;
      const p = hit && hit[0];
      const ok = p && isNum(p.value) && (!log || p.value > 0);
      dots[i].setAttribute('visibility', ok ? 'visible' : 'hidden');
      if (ok) {
        dots[i].setAttribute('cx', px);
        dots[i].setAttribute('cy', Y(p.value));
      }
      rows.push([l, p, hit && hit[1]]);
    });
    hover.removeAttribute('display');
    return { at, rows };
  };
  const member = {
    show: (x) => place(x),
    hide: () => hover.setAttribute('display', 'none'),
  };
  if (opt.cursor) opt.cursor.add(member);
  const fmt = (v) => (opt.pct ? fmtPct(v, 2) : fmtNum(v));
  const toX = (ev) => {
    const r = svg.getBoundingClientRect();
    const px = ((ev.clientX - r.left) / r.width) * W;
    return { px, x: x0 + ((px - m.l) / pw) * (x1 - x0) };
  };
  let drag = null,
    pickTimer = 0;
  const move = (ev) => {
    const { px, x } = toX(ev);
    if (drag) {
      const a = Math.max(m.l, Math.min(drag.px, px)),
        b = Math.min(W - m.r, Math.max(drag.px, px));
      brush.setAttribute('x', a);
      brush.setAttribute('width', Math.max(0, b - a));
      brush.removeAttribute('display');
    }
    const got = place(x);
    if (!got) return;
    if (opt.cursor) opt.cursor.show(got.at, member);
    const p0 = got.rows.find(([, p]) => p) || [];
    const head = time
      ? `${clock(got.at)}${p0[1] && isNum(p0[1].step) ? ` · step ${p0[1].step}` : ''}`
      : `step ${got.at}`;
    showTip(
      ev,
      h(
        'div',
        null,
        h('div', { class: 'tt-head', text: head }),
        ...got.rows.map(([l, p, raw]) =>
          tipRow(
            l.color,
            l.label,
            fmt(p ? p.value : null) + (raw && isNum(raw.value) ? ` (raw ${fmt(raw.value)})` : ''),
            !!l.dash,
          ),
        ),
        opt.onPick ? h('div', { class: 'tt-dim', text: 'click: inspect this step below' }) : null,
      ),
    );
  };
  catcher.addEventListener('pointermove', move);
  catcher.addEventListener('pointerdown', (ev) => {
    move(ev);
    if (ev.button !== 0) return;
    drag = { px: toX(ev).px, x: toX(ev).x };
    catcher.setPointerCapture?.(ev.pointerId);
  });
  catcher.addEventListener('pointerup', (ev) => {
    if (!drag) return;
    const { px, x } = toX(ev);
    const start = drag;
    drag = null;
    brush.setAttribute('display', 'none');
    if (Math.abs(px - start.px) >= 6 && opt.onZoom) {
      const a = Math.max(x0, Math.min(start.x, x)),
        b = Math.min(x1, Math.max(start.x, x));
      if (b > a) opt.onZoom([a, b]);
    } else if (opt.onPick) {
      // a click picks the step, unless it is the first of a double-click (reset the zoom)
      const got = place(x);
      const p = got && got.rows.find(([, q]) => q);
      clearTimeout(pickTimer);
      if (p && isNum(p[1].step)) pickTimer = setTimeout(() => opt.onPick(p[1].step), PICK_DELAY_MS);
    }
  });
  catcher.addEventListener('dblclick', () => {
    clearTimeout(pickTimer);
    if (opt.onZoom) opt.onZoom(null);
  });
  catcher.addEventListener('pointerleave', () => {
    if (drag) return;
    hover.setAttribute('display', 'none');
    if (opt.cursor) opt.cursor.hide(member);
    hideTip();
  });
}
