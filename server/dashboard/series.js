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
// a missing value keeps all its points, so gaps stay gaps.
export function decimate(points, X, width, xOf) {
  if (points.length <= 2 * width) return points;
  const out = [];
  let bucket = [];
  let col = null;
  const flush = () => {
    if (bucket.length <= 4 || bucket.some((p) => !isNum(p.value))) {
      for (const p of bucket) out.push(p);
      return;
    }
    let lo = bucket[0],
      hi = bucket[0];
    for (const p of bucket) {
      if (p.value < lo.value) lo = p;
      if (p.value > hi.value) hi = p;
    }
    const keep = [bucket[0], lo, hi, bucket[bucket.length - 1]];
    keep.sort((a, b) => xOf(a) - xOf(b));
    for (const p of keep) if (out[out.length - 1] !== p) out.push(p);
  };
  for (const p of points) {
    const c = Math.floor(X(xOf(p)));
    if (c !== col) {
      flush();
      bucket = [];
      col = c;
    }
    bucket.push(p);
  }
  flush();
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
