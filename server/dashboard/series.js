// series.js - what is done to a curve before it is drawn: smoothing, decimation to the pixel
// columns, and the SVG path. A point is {step, value, timestamp}; a null value is a gap.
import { isNum } from './util.js';

// TensorBoard's smoothing: an exponential moving average debiased by the weight of its start
// (1 - w^n), so the first points are not pulled towards 0. Gaps stay gaps and do not count.
export function smooth(points, weight) {
  if (!(weight > 0)) return points;
  let last = 0,
    n = 0;
  return points.map((p) => {
    if (!isNum(p.value)) return p;
    last = last * weight + (1 - weight) * p.value;
    n++;
    return { step: p.step, timestamp: p.timestamp, value: last / (1 - weight ** n) };
  });
}

// For drawing only: at most the lowest and the highest point of each pixel column (min/max
// decimation), so a run of 100k steps draws as fast as one of 500 and looks the same. A column that holds
// a missing value keeps all its points, so gaps stay gaps. One pass, no allocation per column:
// it runs cold (before the JIT warms up) on a page's first render. X must be affine and xOf
// read `step` or `timestamp`. The result's `finite` is the number of points with a value among
// the input's.
export function decimate(points, X, width, xOf) {
  // the column of a point: X and xOf are affine and a field read, inlined here as arithmetic
  // (two calls a point are most of the cost of a cold first render)
  const field = xOf({ step: 's', timestamp: 't' }) === 's' ? 'step' : 'timestamp';
  const a0 = X(0),
    a1 = X(1) - a0;
  const n = points.length;
  let finite = 0;
  if (n <= 2 * width) {
    for (let i = 0; i < n; i++) if (isNum(points[i].value)) finite++;
    const all = points.slice();
    all.finite = finite;
    return all;
  }
  const out = [];
  let i = 0;
  while (i < n) {
    const col = Math.floor(a0 + a1 * points[i][field]);
    let j = i,
      lo = -1,
      hi = -1,
      gap = false;
    for (; j < n; j++) {
      const p = points[j];
      if (j > i && Math.floor(a0 + a1 * p[field]) !== col) break;
      const v = p.value;
      if (typeof v !== 'number' || v !== v || v === Infinity || v === -Infinity) {
        gap = true;
        continue;
      }
      finite++;
      if (lo < 0 || v < points[lo].value) lo = j;
      if (hi < 0 || v > points[hi].value) hi = j;
    }
    if (gap || j - i <= 2) {
      for (let k = i; k < j; k++) out.push(points[k]);
    } else {
      // the lowest and the highest, in x order: the column's vertical stroke
      out.push(points[lo < hi ? lo : hi]);
      if (lo !== hi) out.push(points[lo < hi ? hi : lo]);
    }
    i = j;
  }
  out.finite = finite;
  return out;
}

// An SVG path through points, broken where a value is missing. Coordinates to 0.1 px, or to
// whole pixels for a dense curve (a stroke per pixel column: turning numbers into text is most
// of the cost of a long path).
export function pathD(points, X, Y, xOf) {
  const parts = [];
  const q = points.length > 800 ? 1 : 10;
  let pen = false;
  for (const p of points) {
    const v = p.value;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      pen = false;
      continue;
    }
    parts.push((pen ? 'L' : 'M') + Math.round(X(xOf(p)) * q) / q + ' ' + Math.round(Y(v) * q) / q);
    pen = true;
  }
  return parts.join('');
}

// The points whose x lies in [lo, hi], with one neighbour on each side so the curve runs on to
// the edge. points are in x order.
export function within(points, xOf, lo, hi) {
  let a = 0,
    b = points.length;
  while (a < b) {
    const mid = (a + b) >> 1;
    if (xOf(points[mid]) < lo) a = mid + 1;
    else b = mid;
  }
  let c = a,
    d = points.length;
  while (c < d) {
    const mid = (c + d) >> 1;
    if (xOf(points[mid]) <= hi) c = mid + 1;
    else d = mid;
  }
  return points.slice(Math.max(0, a - 1), Math.min(points.length, c + 1));
}
