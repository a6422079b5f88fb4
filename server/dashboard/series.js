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

// For drawing only: at most the first, lowest, highest and last point of each pixel column,
// so a run of 100k steps draws as fast as one of 500 and looks the same. A column that holds
// a missing value keeps all its points, so gaps stay gaps. One pass, no allocation per column:
// it runs cold (before the JIT warms up) on a page's first render.
export function decimate(points, X, width, xOf) {
  const n = points.length;
  if (n <= 2 * width) return points;
  const out = [];
  let i = 0;
  while (i < n) {
    const col = Math.floor(X(xOf(points[i])));
    let j = i,
      lo = -1,
      hi = -1,
      gap = false;
    for (; j < n; j++) {
      const p = points[j];
      if (j > i && Math.floor(X(xOf(p))) !== col) break;
      const v = p.value;
      if (typeof v !== 'number' || v !== v || v === Infinity || v === -Infinity) {
        gap = true;
        continue;
      }
      if (lo < 0 || v < points[lo].value) lo = j;
      if (hi < 0 || v > points[hi].value) hi = j;
    }
    if (gap || j - i <= 4) {
      for (let k = i; k < j; k++) out.push(points[k]);
    } else {
      // first, lowest, highest, last, in x order, each once
      const a = lo < hi ? lo : hi,
        b = lo < hi ? hi : lo;
      out.push(points[i]);
      if (a !== i) out.push(points[a]);
      if (b !== a && b !== j - 1) out.push(points[b]);
      if (j - 1 !== i) out.push(points[j - 1]);
    }
    i = j;
  }
  return out;
}

// An SVG path through points, broken where a value is missing.
export function pathD(points, X, Y, xOf) {
  let d = '';
  let pen = false;
  for (const p of points) {
    if (!isNum(p.value)) {
      pen = false;
      continue;
    }
    d += (pen ? 'L' : 'M') + X(xOf(p)).toFixed(1) + ' ' + Y(p.value).toFixed(1);
    pen = true;
  }
  return d;
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
