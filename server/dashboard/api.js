// api.js - the daemon's runs API as the page reads it: GETs with ETags (a 304 means nothing
// changed and costs nothing), paged history, and tolerant readers of the answers' shapes.
import { enc, parseTime } from './util.js';

export const PAGE_SIZE = 1000;
const MAX_PAGES = 500;

export class HttpError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

const etags = new Map(); // url -> {etag, data}

// GET url as JSON, revalidated with If-None-Match: {data, changed}.
export async function getJSON(url) {
  const cached = etags.get(url);
  const headers = { Accept: 'application/json' };
  if (cached && cached.etag) headers['If-None-Match'] = cached.etag;
  const r = await fetch(url, { headers, cache: 'no-store' });
  if (r.status === 304 && cached) return { data: cached.data, changed: false };
  if (!r.ok) {
    let detail = '';
    try {
      detail = (await r.json()).detail || '';
    } catch (_) {
      /* not JSON */
    }
    throw new HttpError(r.status, detail);
  }
  const data = await r.json();
  etags.set(url, { etag: r.headers.get('ETag'), data });
  return { data, changed: true };
}

export function forgetRun(run) {
  const prefix = `/v1/runs/${enc(run)}`;
  for (const url of [...etags.keys()]) if (url.startsWith(prefix)) etags.delete(url);
}

export async function loadRuns() {
  let url = '/v1/runs';
  let changed = false;
  const runs = [];
  for (let page = 0; page < MAX_PAGES; page++) {
    const r = await getJSON(url);
    changed = changed || r.changed;
    runs.push(...(r.data.runs || []));
    const tok = r.data.next_page_token;
    if (!tok) break;
    url = `/v1/runs?page_token=${enc(tok)}`;
  }
  return { runs, changed };
}

// Every page of the history of keys (one request names them all) from since_step on. Not
// conditional: it is asked for only when the run's own ETag changed.
export async function fetchHistory(run, split, keys, since) {
  const base =
    `/v1/runs/${enc(run)}/history?key=${keys.map(enc).join(',')}&split=${enc(split)}` +
    `&since_step=${since}&max_results=${PAGE_SIZE}`;
  let url = base;
  const points = [];
  for (let page = 0; page < MAX_PAGES; page++) {
    const r = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (!r.ok) throw new HttpError(r.status, '');
    const data = await r.json();
    points.push(...(data.metrics || []));
    const tok = data.next_page_token;
    if (!tok) break;
    url = `${base}&page_token=${enc(tok)}`;
  }
  return points;
}

// The split summaries of GET /v1/runs/{run} as an object split -> summary.
export function splitsOf(detail) {
  const sp = detail && detail.splits;
  if (Array.isArray(sp)) return Object.fromEntries(sp.map((x) => [x.split, x]));
  return sp || {};
}

// One split summary, with the fields this page uses under one set of names.
export function normSplit(sp, detail) {
  if (!sp) return null;
  const res = sp.result || sp;
  const latest = (sp.latest_evaluations || [])
    .map((e) => (typeof e === 'string' ? { id: e } : e))
    .filter((e) => e && e.id && e.has_overlay !== false);
  return {
    step: sp.step,
    ts: parseTime(sp.timestamp ?? sp.updated ?? sp.updated_ms),
    evaluations: sp.evaluations, // requests merged into this step
    batches: sp.batches, // images in them (seglossd) or batches
    class_names: sp.class_names || res.class_names || (detail && detail.class_names) || null,
    loss: res.loss || {},
    per_class: res.per_class || {},
    metrics: res.metrics || {},
    semantics: (res.params && res.params.semantics) || 'seed',
    confusion: res.confusion_matrix || null,
    latest,
  };
}
