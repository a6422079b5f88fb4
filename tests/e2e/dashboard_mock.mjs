// dashboard_mock.mjs - a stand-in for seglossd's runs API, to develop and test the dashboard
// (server/dashboard/) without the store: serves the dashboard's files like the daemon does and
// canned, in-memory runs in the shapes of docs/ARCHITECTURE.md §6, with an ETag on every GET and 304 on
// If-None-Match.
//
//   node dashboard_mock.mjs [--port N] [--seed] [--dashboard DIR]
//
// --port 0 (default) picks a free port; the first line printed is "listening PORT".
// --seed preloads two runs with a few dozen steps (for screenshots).
// --page N caps history pages at N points (default 1000), to exercise next_page_token.
// --long N preloads a run "long" with N steps (drawing and paging at scale); --long-runs K
// preloads K such runs (long, long-2, ... long-K).
// POST /v1/evaluate?run=R&step=S[&split=X] adds a synthetic batch (the body is read and ignored).
// DELETE /v1/runs/R removes a run. GET /v1/evaluations/{id}/overlay.png draws a small PNG.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const PORT = Number(opt('--port', '0'));
const DASH = path.resolve(opt('--dashboard', path.join(here, '..', '..', 'server', 'dashboard')));
const SEED = args.includes('--seed');
const PAGE = Number(opt('--page', '1000'));
const LONG = Number(opt('--long', '0')); // a run "long" with this many steps
const LONG_RUNS = Number(opt('--long-runs', '1'));

const VOC = [
  'background',
  'aeroplane',
  'bicycle',
  'bird',
  'boat',
  'bottle',
  'bus',
  'car',
  'cat',
  'chair',
  'cow',
  'diningtable',
  'dog',
  'horse',
  'motorbike',
  'person',
  'pottedplant',
  'sheep',
  'sofa',
  'train',
  'tvmonitor',
];
const KEYS = [
  'loss.ce',
  'loss.focal',
  'loss.dice',
  'loss.total',
  'metrics.miou',
  'metrics.mean_dice',
  'metrics.f_score',
  'metrics.mpa',
  'metrics.accuracy',
];

// run -> { created, updated, splits: Map split -> Map step -> aggregate }
const runs = new Map();
const evaluations = new Map(); // id -> { run, split, step }
let clock = Date.UTC(2026, 10, 29, 11, 0, 0);

function rand(seed) {
  // deterministic noise in [-1, 1]
  const x = Math.sin(seed * 12.9898) * 43758.5453;
  return 2 * (x - Math.floor(x)) - 1;
}

function synth(run, split, step, classes, names, seedBase, scale = 1) {
  const t = step / scale;
  const noise = (k) => rand(seedBase + t * 31 + k) * 0.04;
  const ce = 2.4 * Math.exp(-t / 14) + 0.32 + noise(1) + (split === 'train' ? -0.05 : 0);
  const focal = 0.45 * ce + noise(2) * 0.5;
  const dice = 0.85 * Math.exp(-t / 20) + 0.12 + noise(3);
  const total = ce + 0.5 * dice;
  const perDice = [],
    perIou = [],
    support = [],
    precision = [],
    recall = [];
  for (let c = 0; c < classes; c++) {
    const hard = 0.35 + 0.6 * (0.5 + 0.5 * rand(seedBase + c * 7));
    let d = Math.max(0, Math.min(0.99, hard * (1 - Math.exp(-t / 9)) + noise(10 + c)));
    if (c === 0) d = Math.min(0.98, d + 0.25);
    const absent = c === 16 && step % 5 === 3; // a class absent from this step's masks
    perDice.push(absent ? null : d);
    perIou.push(absent ? null : d / (2 - d));
    support.push(absent ? 0 : Math.round(4000 * (1 + rand(seedBase + c))));
    precision.push(absent ? null : Math.min(1, d + 0.05));
    recall.push(absent ? null : Math.max(0, d - 0.04));
  }
  const finite = (a) => a.filter((v) => v !== null);
  const mean = (a) => finite(a).reduce((s, v) => s + v, 0) / Math.max(1, finite(a).length);
  const miou = mean(perIou);
  return {
    step,
    timestamp: clock,
    batches: 8,
    num_classes: classes,
    class_names: names,
    loss: { ce, focal, dice, total },
    per_class: { dice: perDice, iou: perIou, f_score: perDice, precision, recall, support },
    metrics: {
      miou: (step === 7 || step === 2500) && run !== 'demo' ? null : miou, // a gap in the curve
      mean_dice: mean(perDice),
      f_score: mean(perDice),
      mpa: mean(recall),
      accuracy: Math.min(0.99, 0.55 + 0.4 * (1 - Math.exp(-t / 10)) + noise(4)),
    },
    latest_evaluations: [],
  };
}

function newId() {
  return crypto.randomBytes(8).toString('hex');
}

function addBatch(run, split, step, names, classes, scale = 1) {
  clock += 37000;
  let r = runs.get(run);
  if (!r) {
    r = { created: clock, updated: clock, splits: new Map(), seed: runs.size * 1000 + 5 };
    runs.set(run, r);
  }
  r.updated = clock;
  let s = r.splits.get(split);
  if (!s) {
    s = new Map();
    r.splits.set(split, s);
  }
  const prev = s.get(step);
  const agg = synth(
    run,
    split,
    step,
    classes,
    names,
    r.seed + (split === 'train' ? 500 : 0),
    scale,
  );
  agg.evaluations = prev ? prev.evaluations + 1 : 1;
  agg.batches = 2 * agg.evaluations; // images
  const id = newId();
  evaluations.set(id, { run, split, step });
  agg.evaluation_ids = [...(prev ? prev.evaluation_ids : []), id];
  agg.latest_evaluations = agg.evaluation_ids
    .slice(-4)
    .reverse()
    .map((e) => ({
      id: e,
      step,
      timestamp: clock,
      n: 2,
      has_overlay: true,
      overlay: `/v1/evaluations/${e}/overlay.png?item=0`,
    }));
  s.set(step, agg);
  return id;
}

if (LONG) {
  for (let k = 1; k <= LONG_RUNS; k++)
    for (let st = 1; st <= LONG; st++)
      addBatch(k === 1 ? 'long' : `long-${k}`, 'val', st, VOC, 21, LONG / 40);
}
if (SEED) {
  for (let st = 1; st <= 48; st++) {
    addBatch('deeplabv3-r50', 'val', st * 250, VOC, 21, 250);
    addBatch('deeplabv3-r50', 'train', st * 250, VOC, 21, 250);
  }
  for (let st = 1; st <= 12; st++) addBatch('unet-small', 'val', st, null, 6);
}

function latest(splitMap) {
  let best = null;
  for (const a of splitMap.values()) if (!best || a.step > best.step) best = a;
  return best;
}

function latestNames(r) {
  for (const s of r.splits.values()) {
    const a = latest(s);
    if (a && a.class_names) return a.class_names;
  }
  return null;
}

function get(obj, dotted) {
  return dotted.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function send(req, res, status, type, body, extra = {}) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const etag = '"' + crypto.createHash('sha1').update(buf).digest('hex').slice(0, 20) + '"';
  const headers = { 'Content-Type': type, ETag: etag, 'Cache-Control': 'no-cache', ...extra };
  if (req.method === 'GET' && status === 200 && req.headers['if-none-match'] === etag) {
    res.writeHead(304, { ETag: etag, 'Cache-Control': 'no-cache' });
    return res.end();
  }
  res.writeHead(status, { ...headers, 'Content-Length': buf.length });
  res.end(req.method === 'HEAD' ? undefined : buf);
}
const json = (req, res, status, obj) =>
  send(req, res, status, 'application/json', JSON.stringify(obj));
const problem = (req, res, status, detail) =>
  send(
    req,
    res,
    status,
    'application/problem+json',
    JSON.stringify({ type: 'about:blank', title: http.STATUS_CODES[status], status, detail }),
  );

// A small RGB PNG: "ground truth" blobs in the VOC palette, wrong pixels in red.
const CRC = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function vocColor(i) {
  let r = 0,
    g = 0,
    b = 0;
  for (let j = 0; j < 8; j++) {
    r |= ((i >> 0) & 1) << (7 - j);
    g |= ((i >> 1) & 1) << (7 - j);
    b |= ((i >> 2) & 1) << (7 - j);
    i >>= 3;
  }
  return [r, g, b];
}
function overlayPng(seed) {
  // three panels like seglossd's overlay: ground truth, prediction, errors (red)
  const side = 128,
    gap = 4,
    w = 3 * side + 2 * gap,
    h = side;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  const cls = 1 + (seed % 20);
  const blob = (x, y, dx) => (x - side * 0.5 - dx) ** 2 / 1600 + (y - side * 0.5) ** 2 / 900 < 1;
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const panel = Math.floor(x / (side + gap)),
        px = x % (side + gap);
      let rgb = [255, 255, 255];
      if (px < side) {
        const gt = blob(px, y, 0),
          pr = blob(px, y, 9);
        if (panel === 0) rgb = vocColor(gt ? cls : 0);
        else if (panel === 1) rgb = vocColor(pr ? cls : 0);
        else rgb = gt !== pr ? [230, 30, 30] : gt ? vocColor(cls).map((v) => v >> 1) : [40, 40, 40];
      }
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = rgb[0];
      raw[o + 1] = rgb[1];
      raw[o + 2] = rgb[2];
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  ihdr[10] = 0;
  ihdr[11] = 0;
  ihdr[12] = 0;
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const historyMemo = { key: null, all: null }; // the last history query's points (paging)

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

function route(req, res, body) {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  const q = url.searchParams;
  let m;
  if (req.method === 'POST' && p === '/v1/evaluate') {
    const run = q.get('run');
    if (!run) return json(req, res, 200, { id: newId(), loss: {} });
    const step = Number(q.get('step') || 0);
    const split = q.get('split') || 'val';
    const names = /class_names/.test(body.toString('latin1')) ? VOC : run === 'demo' ? VOC : null;
    const id = addBatch(run, split, step, names, 21);
    return json(req, res, 200, { id, run, step, split });
  }
  if (req.method === 'DELETE' && (m = p.match(/^\/v1\/runs\/([^/]+)$/))) {
    const run = decodeURIComponent(m[1]);
    if (!runs.delete(run)) return problem(req, res, 404, `no run ${run}`);
    res.writeHead(204);
    return res.end();
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return problem(req, res, 405, 'method');
  if (p === '/v1/runs') {
    const list = [...runs.entries()].map(([name, r]) => {
      let last = 0,
        evals = 0;
      for (const s of r.splits.values())
        for (const a of s.values()) {
          last = Math.max(last, a.step);
          evals += a.evaluation_ids.length;
        }
      return {
        run: name,
        created_ms: r.created,
        updated_ms: r.updated,
        splits: [...r.splits.keys()],
        last_step: last,
        evaluations: evals,
      };
    });
    return json(req, res, 200, { runs: list, next_page_token: null });
  }
  if ((m = p.match(/^\/v1\/runs\/([^/]+)$/))) {
    const run = decodeURIComponent(m[1]);
    const r = runs.get(run);
    if (!r) return problem(req, res, 404, `no run ${run}`);
    const splits = {};
    for (const [name, s] of r.splits) {
      const a = { split: name, ...latest(s) };
      delete a.evaluation_ids;
      delete a.class_names;
      splits[name] = a;
    }
    return json(req, res, 200, {
      run,
      created_ms: r.created,
      updated_ms: r.updated,
      class_names: latestNames(r),
      splits,
    });
  }
  if ((m = p.match(/^\/v1\/runs\/([^/]+)\/history$/))) {
    const run = decodeURIComponent(m[1]);
    const r = runs.get(run);
    if (!r) return problem(req, res, 404, `no run ${run}`);
    const keys = (q.get('key') || KEYS.join(',')).split(',');
    const perClass = (k) => /^per_class\.(dice|iou|f_score|precision|recall|support)\.\d+$/.test(k);
    const bad = keys.find((k) => !KEYS.includes(k) && !perClass(k));
    if (bad) return problem(req, res, 400, `unknown key ${bad}`);
    const s = r.splits.get(q.get('split') || 'val');
    const since = Number(q.get('since_step') || 0);
    const max = Math.min(PAGE, Number(q.get('max_results') || 1000));
    const offset = q.has('page_token') ? Number(q.get('page_token')) : 0;
    const memoKey = [run, q.get('split') || 'val', keys.join(','), since, r.updated].join('|');
    if (historyMemo.key !== memoKey) {
      const rows = s
        ? [...s.values()].filter((a) => a.step >= since).sort((a, b) => a.step - b.step)
        : [];
      historyMemo.key = memoKey;
      historyMemo.all = rows.flatMap((a) =>
        keys.map((key) => {
          const v = get(a, key);
          return { key, value: v === undefined ? null : v, step: a.step, timestamp: a.timestamp };
        }),
      );
    }
    const all = historyMemo.all;
    const metrics = all.slice(offset, offset + max);
    const next = all.length > offset + max ? String(offset + max) : null;
    return json(req, res, 200, { metrics, next_page_token: next });
  }
  if ((m = p.match(/^\/v1\/runs\/([^/]+)\/items$/))) {
    // the items of the latest step: two per evaluation, figures made up from the id
    const run = decodeURIComponent(m[1]);
    const r = runs.get(run);
    if (!r) return problem(req, res, 404, `no run ${run}`);
    const s = r.splits.get(q.get('split') || 'val');
    const a = s ? latest(s) : null;
    const sort = q.get('sort') || 'miou';
    const dir = q.get('order') === 'desc' ? -1 : 1;
    const items = (a ? a.evaluation_ids : []).flatMap((id) =>
      [0, 1].map((item) => {
        const v = 0.5 + 0.45 * rand(parseInt(id.slice(0, 6), 16) + item);
        return {
          evaluation: id,
          item,
          accuracy: Math.min(1, v + 0.1),
          miou: v,
          mean_dice: (2 * v) / (1 + v),
          present: 3,
          iou: [v, null, v],
          overlay: `/v1/evaluations/${id}/overlay.png?item=${item}`,
        };
      }),
    );
    items.sort((x, y) => dir * (x[sort] - y[sort]));
    const limit = Number(q.get('limit') || 20);
    return json(req, res, 200, {
      run,
      split: q.get('split') || 'val',
      step: a ? a.step : null,
      sort,
      order: dir < 0 ? 'desc' : 'asc',
      total: items.length,
      items: items.slice(0, limit),
    });
  }
  if ((m = p.match(/^\/v1\/evaluations\/([^/]+)\/overlay\.png$/))) {
    const id = decodeURIComponent(m[1]);
    if (!evaluations.has(id)) return problem(req, res, 404, `no evaluation ${id}`);
    return send(
      req,
      res,
      200,
      'image/png',
      overlayPng(parseInt(id.slice(0, 6), 16) + Number(q.get('item') || 0)),
    );
  }
  if ((m = p.match(/^\/v1\/evaluations\/([^/]+)$/))) {
    const id = decodeURIComponent(m[1]);
    const e = evaluations.get(id);
    return e ? json(req, res, 200, { id, ...e }) : problem(req, res, 404, `no evaluation ${id}`);
  }
  const name = p === '/' ? 'index.html' : p.slice(1);
  if (/^[\w.-]+$/.test(name)) {
    const file = path.join(DASH, name);
    if (fs.existsSync(file)) {
      return send(
        req,
        res,
        200,
        TYPES[path.extname(name)] || 'application/octet-stream',
        fs.readFileSync(file),
      );
    }
  }
  return problem(req, res, 404, `no route ${p}`);
}

const server = http.createServer((req, res) => {
  const parts = [];
  req.on('data', (d) => parts.push(d));
  req.on('end', () => {
    try {
      route(req, res, Buffer.concat(parts));
    } catch (e) {
      problem(req, res, 500, String(e));
    }
  });
});
server.listen(PORT, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
