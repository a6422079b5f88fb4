// segloss dashboard: lists runs, draws the chosen run's loss and quality curves, its per-class
// Dice and IoU and its latest overlays. Plain SVG, no library, nothing loaded from elsewhere.
// Polls the daemon every few seconds with If-None-Match: a 304 means nothing to redraw.
'use strict';
(() => {
  const POLL_MS = 3000;
  const PAGE_SIZE = 1000;
  const MAX_PAGES = 500;
  const MAX_OVERLAYS = 4;
  const FULL_EVERY = 20; // polls between full re-reads of the history (catches older steps)
  const NS = 'http://www.w3.org/2000/svg';

  const LOSS = [
    { key: 'loss.total', label: 'total', color: 'var(--c-total)', width: 2.6 },
    { key: 'loss.ce', label: 'cross-entropy', color: 'var(--c-ce)' },
    { key: 'loss.focal', label: 'focal', color: 'var(--c-focal)' },
    { key: 'loss.dice', label: 'Dice loss', color: 'var(--c-dice)' },
  ];
  const QUALITY = [
    { key: 'metrics.miou', label: 'mIoU', color: 'var(--c-iou)', width: 2.6 },
    { key: 'metrics.mean_dice', label: 'mean Dice', color: 'var(--c-dice)' },
    { key: 'metrics.accuracy', label: 'pixel accuracy', color: 'var(--c-acc)', dash: '5 4' },
  ];
  const KEYS = [...LOSS, ...QUALITY].map((s) => s.key);

  const state = {
    runs: [],
    run: null,
    split: null,
    detail: null,
    series: {}, // key -> [{step, value, timestamp}] sorted by step
    hist: null, // what syncHistory knows: {id, created, last, fullAt, detail, maps}
    ticks: 0,
    hidden: new Set(), // series toggled off in a legend
    logLoss: false,
    sort: 'index',
    gen: 0, // bumped when the selection changes; stale answers are dropped
    lastChange: 0,
    lastOk: 0,
    loaded: false,
    overlayIds: '',
  };

  // ---- small helpers ----------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

  function h(tag, attrs, ...kids) {
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
  function s(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    if (parent) parent.append(e);
    return e;
  }

  function fmtNum(v) {
    if (!isNum(v)) return '—';
    const a = Math.abs(v);
    if (a === 0) return '0';
    if (a >= 1000) return v.toFixed(0);
    if (a >= 100) return v.toFixed(1);
    if (a >= 10) return v.toFixed(2);
    if (a >= 0.001) return v.toFixed(3 + (a < 0.1 ? 1 : 0));
    return v.toExponential(1);
  }
  function fmtPct(v, digits = 1) {
    if (!isNum(v)) return '—';
    return (v * 100).toFixed(digits) + '%';
  }
  function fmtTick(v, pct) {
    if (pct) return Math.round(v * 1000) / 10 + '%';
    const a = Math.abs(v);
    if (a === 0) return '0';
    if (a >= 1000) return (v / 1000).toFixed(a >= 10000 ? 0 : 1) + 'k';
    if (a < 0.01) return v.toExponential(0);
    return String(+v.toPrecision(3));
  }
  function fmtStep(v) {
    if (!isNum(v)) return '—';
    if (Math.abs(v) < 10000) return String(v);
    return (v / 1000).toFixed(Math.abs(v) >= 100000 ? 0 : 1).replace(/\.0$/, '') + 'k';
  }
  function plural(n, word) {
    return `${isNum(n) ? n.toLocaleString('en-US') : n} ${word}${n === 1 ? '' : 's'}`;
  }
  function ago(ms) {
    if (!isNum(ms)) return '';
    const sec = Math.round((Date.now() - ms) / 1000);
    if (sec < 5) return 'just now';
    if (sec < 60) return `${sec} s ago`;
    if (sec < 3600) return `${Math.round(sec / 60)} min ago`;
    if (sec < 86400) return `${Math.round(sec / 3600)} h ago`;
    return new Date(ms).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  }
  function clock(ms) {
    return new Date(ms).toLocaleTimeString(undefined, {
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
  }
  function parseTime(v) {
    if (isNum(v)) return v;
    const t = Date.parse(v);
    return Number.isFinite(t) ? t : null;
  }
  // The VOC palette, as in the overlays: class i's colour.
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
    return `rgb(${r},${g},${b})`;
  }

  // ---- tolerant readers of the API's answers ----------------------------------------------
  // The split summaries of GET /v1/runs/{run} as an object split -> summary.
  function splitsOf(detail) {
    const sp = detail && detail.splits;
    if (Array.isArray(sp)) return Object.fromEntries(sp.map((x) => [x.split, x]));
    return sp || {};
  }
  // One split summary, with the fields this page uses under one set of names.
  function normSplit(sp, detail) {
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
      latest,
    };
  }

  // ---- HTTP with ETags ----------------------------------------------------------------------
  const etags = new Map(); // url -> {etag, data}
  class HttpError extends Error {
    constructor(status, detail) {
      super(detail || `HTTP ${status}`);
      this.status = status;
    }
  }
  async function getJSON(url) {
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
  function forgetRun(run) {
    const prefix = `/v1/runs/${enc(run)}`;
    for (const url of [...etags.keys()]) if (url.startsWith(prefix)) etags.delete(url);
  }

  async function loadRuns() {
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

  // The history of all KEYS (one request: key=a,b,c) from since_step on, every page. Not
  // conditional: it is asked for only when the run's own ETag changed.
  async function fetchHistory(run, split, since) {
    const base =
      `/v1/runs/${enc(run)}/history?key=${KEYS.map(enc).join(',')}&split=${enc(split)}` +
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

  // ---- selection (remembered in the URL hash: #run=…&split=…) -------------------------------
  function readHash() {
    const p = new URLSearchParams(location.hash.replace(/^#/, ''));
    return { run: p.get('run'), split: p.get('split') };
  }
  function writeHash(run, split, replace) {
    const p = new URLSearchParams();
    if (run) p.set('run', run);
    if (split) p.set('split', split);
    const hash = '#' + p.toString();
    if (hash === location.hash) return;
    if (replace) history.replaceState(null, '', hash);
    else history.pushState(null, '', hash);
  }
  function select(run, split, replace) {
    if (run !== state.run || split !== state.split) {
      state.gen++;
      if (run !== state.run) {
        state.detail = null;
        state.overlayIds = '';
      }
      state.series = {};
      state.hist = null;
      state.run = run;
      state.split = split;
    }
    writeHash(run, split, replace);
  }

  // ---- polling ------------------------------------------------------------------------------
  let timer = null;
  let busy = false;
  let again = false;

  function pollSoon(delay = 0) {
    clearTimeout(timer);
    timer = setTimeout(tick, delay);
  }

  async function tick() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    let redraw = false;
    try {
      const runs = await loadRuns();
      setReachable(true);
      if (runs.changed || !state.loaded) {
        state.runs = runs.runs;
        redraw = true;
      }
      state.loaded = true;
      redraw = (await loadSelected()) || redraw;
      if (redraw) {
        state.lastChange = Date.now();
        render();
      }
    } catch (e) {
      if (e instanceof HttpError) {
        setReachable(true);
        showBanner(
          `seglossd answered ${e.status}${e.message ? ': ' + e.message : ''} — retrying.`,
          'warn',
        );
      } else {
        setReachable(false);
      }
    } finally {
      busy = false;
      refreshTimes();
      if (again) {
        again = false;
        pollSoon(0);
      } else pollSoon(document.hidden ? POLL_MS * 4 : POLL_MS);
    }
  }

  // Fetches the chosen run and split; true when something to draw changed.
  async function loadSelected() {
    const names = state.runs.map((r) => r.run);
    if (!names.length) {
      if (state.run) select(null, null, true);
      return false;
    }
    const want = readHash();
    let run = state.run || want.run;
    if (!run || !names.includes(run)) {
      if (run) noticeGone(run);
      const newest = [...state.runs].sort(
        (a, b) =>
          (parseTime(b.updated ?? b.updated_ms) || 0) - (parseTime(a.updated ?? a.updated_ms) || 0),
      )[0];
      run = newest.run;
      select(run, null, true);
    }
    const gen = state.gen;
    let det;
    try {
      det = await getJSON(`/v1/runs/${enc(run)}`);
    } catch (e) {
      if (e instanceof HttpError && e.status === 404) {
        noticeGone(run);
        forgetRun(run);
        select(null, null, true);
        return true;
      }
      throw e;
    }
    if (gen !== state.gen) return false;
    const splits = Object.keys(splitsOf(det.data));
    let split = state.split || want.split;
    if (!split || !splits.includes(split))
      split = splits.includes('val') ? 'val' : splits[0] || null;
    if (split !== state.split) select(run, split, true);
    else writeHash(run, split, true);
    const genAfter = state.gen;
    let changed = det.changed || state.detail === null;
    state.detail = det.data;
    if (!split) return changed;
    state.ticks++;
    try {
      changed = (await syncHistory(run, split, det, genAfter)) || changed;
    } catch (e) {
      if (e instanceof HttpError && e.status === 404) return false; // deleted meanwhile: next poll
      throw e;
    }
    return changed;
  }

  // Brings state.series up to date: everything on a new selection (or a re-created run, or
  // now and then), otherwise only the steps from the last one seen on, and nothing at all
  // while the run's ETag says it did not change.
  async function syncHistory(run, split, det, gen) {
    const id = `${run}\u0000${split}`;
    const created = det.data.created_ms ?? null;
    const sp = splitsOf(det.data)[split];
    const latest = sp && isNum(sp.step) ? sp.step : null;
    let hs = state.hist;
    const fresh =
      !hs ||
      hs.id !== id ||
      hs.created !== created ||
      (latest !== null && hs.last !== null && latest < hs.last);
    if (!fresh && hs.detail === det.data) return false; // the run's ETag did not change
    const full = fresh || state.ticks - hs.fullAt >= FULL_EVERY;
    const since = full || hs.last === null ? 0 : hs.last;
    const points = await fetchHistory(run, split, since);
    if (gen !== state.gen) return false;
    if (full) {
      hs = { id, created, last: null, fullAt: state.ticks, detail: null, maps: {} };
      for (const k of KEYS) hs.maps[k] = new Map();
    } else {
      for (const k of KEYS)
        for (const step of hs.maps[k].keys()) if (step >= since) hs.maps[k].delete(step);
    }
    for (const p of points) {
      if (!hs.maps[p.key] || !isNum(p.step)) continue;
      hs.maps[p.key].set(p.step, p);
      if (hs.last === null || p.step > hs.last) hs.last = p.step;
    }
    hs.detail = det.data; // what this history goes with (a failed fetch is retried)
    state.hist = hs;
    for (const k of KEYS)
      state.series[k] = [...hs.maps[k].values()].sort((a, b) => a.step - b.step);
    return true;
  }

  // ---- status, banner, notice ---------------------------------------------------------------
  let downSince = 0;
  function setReachable(ok) {
    const st = $('status');
    if (ok) {
      state.lastOk = Date.now();
      downSince = 0;
      st.className = 'status live';
      hideBanner();
      document.body.classList.remove('stale');
    } else {
      if (!downSince) downSince = Date.now();
      st.className = 'status down';
      const since = state.lastOk ? ` Showing what it said at ${clock(state.lastOk)}.` : '';
      showBanner(
        `Can't reach seglossd at ${location.host} — retrying every ${POLL_MS / 1000} s.${since}`,
        'error',
      );
      document.body.classList.add('stale');
    }
  }
  function refreshTimes() {
    const txt = $('status-text');
    if (downSince) txt.textContent = 'offline';
    else if (state.lastChange) txt.textContent = `live · changed ${ago(state.lastChange)}`;
    else if (state.lastOk) txt.textContent = 'live';
    for (const e of document.querySelectorAll('[data-ago]'))
      e.textContent = ago(Number(e.dataset.ago));
  }
  function showBanner(text, kind) {
    const b = $('banner');
    b.textContent = text;
    b.className = `banner ${kind}`;
    b.hidden = false;
  }
  function hideBanner() {
    $('banner').hidden = true;
  }
  function noticeGone(run) {
    $('notice-text').textContent =
      `Run “${run}” no longer exists (deleted?) — showing another run.`;
    $('notice').hidden = false;
  }

  // ---- rendering ----------------------------------------------------------------------------
  function render() {
    renderRuns();
    const empty = state.runs.length === 0;
    $('empty').hidden = !empty;
    $('run-view').hidden = empty || !state.detail;
    $('run-head').hidden = empty || !state.run;
    if (empty) {
      document.title = 'segloss';
      $('curl-example').textContent =
        'curl -F logits=@logits.npy -F mask=@mask_0.png \\\n' +
        `  "${location.origin}/v1/evaluate?run=demo&step=1"`;
      return;
    }
    if (!state.detail) return;
    renderHead();
    const sp = currentSplit();
    renderKpis(sp);
    renderCharts();
    renderClasses(sp);
    renderOverlays(sp);
  }

  function currentSplit() {
    const d = state.detail;
    return (d && state.split && normSplit(splitsOf(d)[state.split], d)) || null;
  }

  function renderRuns() {
    const ul = $('runs');
    ul.textContent = '';
    $('run-count').textContent = state.runs.length ? String(state.runs.length) : '';
    // newest run first (by creation, so the order does not jump while runs train)
    const runs = state.runs.every((r) => isNum(r.created_ms))
      ? [...state.runs].sort((a, b) => b.created_ms - a.created_ms || (a.run < b.run ? -1 : 1))
      : state.runs;
    for (const r of runs) {
      const t = parseTime(r.updated ?? r.updated_ms);
      const li = h(
        'li',
        { class: r.run === state.run ? 'on' : null },
        h(
          'a',
          { href: '#run=' + enc(r.run), 'data-run': r.run, title: r.run },
          h(
            'span',
            { class: 'top' },
            h('span', { class: 'name', text: r.run }),
            t ? h('span', { class: 'when', 'data-ago': t, text: ago(t) }) : null,
          ),
          h(
            'span',
            { class: 'meta' },
            h('span', { text: `step ${fmtStep(r.last_step ?? 0)}` }),
            h('span', { text: plural(r.evaluations ?? 0, 'eval') }),
          ),
          h(
            'span',
            { class: 'chips' },
            ...(r.splits || []).map((sp) => h('span', { class: 'chip', text: sp })),
          ),
        ),
      );
      ul.append(li);
    }
    if (!state.runs.length) ul.append(h('li', { class: 'none', text: 'none yet' }));
  }

  function renderHead() {
    document.title = `${state.run} · segloss`;
    $('run-title').textContent = state.run;
    const seg = $('splits');
    seg.textContent = '';
    const splits = Object.keys(splitsOf(state.detail));
    for (const sp of splits) {
      seg.append(
        h('button', {
          type: 'button',
          role: 'tab',
          class: sp === state.split ? 'on' : null,
          'aria-selected': sp === state.split ? 'true' : 'false',
          'data-split': sp,
          text: sp,
          onclick: () => {
            select(state.run, sp, false);
            pollSoon(0);
          },
        }),
      );
    }
  }

  function lastTwo(key) {
    const pts = (state.series[key] || []).filter((p) => isNum(p.value));
    return [pts[pts.length - 1], pts[pts.length - 2]];
  }

  function sparkline(key, color) {
    const pts = state.series[key] || [];
    const W = 120,
      H = 30;
    const svg = s('svg', {
      class: 'spark',
      viewBox: `0 0 ${W} ${H}`,
      preserveAspectRatio: 'none',
      'aria-hidden': 'true',
    });
    const vals = pts.filter((p) => isNum(p.value));
    if (vals.length < 2) return svg;
    const x0 = vals[0].step,
      x1 = vals[vals.length - 1].step;
    let lo = Math.min(...vals.map((p) => p.value)),
      hi = Math.max(...vals.map((p) => p.value));
    if (hi === lo) {
      hi += 1;
      lo -= 1;
    }
    const X = (x) => ((x - x0) / (x1 - x0 || 1)) * (W - 4) + 2;
    const Y = (y) => H - 3 - ((y - lo) / (hi - lo)) * (H - 6);
    s(
      'path',
      {
        d: pathD(decimate(pts, X, W), X, Y),
        stroke: color,
        fill: 'none',
        'stroke-width': 1.6,
        'vector-effect': 'non-scaling-stroke',
      },
      svg,
    );
    return svg;
  }

  function stepMeta(sp) {
    if (isNum(sp.evaluations) && isNum(sp.batches))
      return `${plural(sp.evaluations, 'eval')} · ${plural(sp.batches, 'image')} · `;
    if (isNum(sp.batches)) return `${sp.batches} batch${sp.batches === 1 ? '' : 'es'} · `;
    return '';
  }

  function renderKpis(sp) {
    const box = $('kpis');
    box.textContent = '';
    if (!sp) return;
    const ts = sp.ts;
    box.append(
      h(
        'div',
        { class: 'kpi step' },
        h('div', { class: 'k', text: 'step' }),
        h('div', {
          class: 'v',
          id: 'kpi-step',
          text: isNum(sp.step) ? sp.step.toLocaleString('en-US') : '—',
        }),
        h(
          'div',
          { class: 'd' },
          h('span', { text: stepMeta(sp) }),
          h('span', { 'data-ago': ts, text: ago(ts) }),
        ),
      ),
    );
    const card = (label, key, value, pct, better, color) => {
      const [last, prev] = lastTwo(key);
      let delta = null;
      if (last && prev && isNum(value) && last.step === sp.step) {
        const dv = last.value - prev.value;
        const good = better === 'up' ? dv > 0 : dv < 0;
        const size = pct ? `${Math.abs(dv * 100).toFixed(1)} pt` : fmtNum(Math.abs(dv));
        const flat = pct ? size === '0.0 pt' : Math.abs(dv) <= 1e-12 * Math.abs(last.value);
        delta = h('span', {
          class: 'delta ' + (flat ? 'flat' : good ? 'good' : 'bad'),
          title: `change since step ${prev.step}`,
          text: flat ? '■ no change' : `${dv > 0 ? '▲ +' : '▼ −'}${size}`,
        });
      }
      box.append(
        h(
          'div',
          { class: 'kpi', 'data-key': key },
          h('div', { class: 'k', text: label }),
          h('div', {
            class: 'v',
            style: `color:${color}`,
            text: pct ? fmtPct(value) : fmtNum(value),
          }),
          h('div', { class: 'd' }, delta || h('span', { class: 'delta flat', text: ' ' })),
          sparkline(key, color),
        ),
      );
    };
    const m = sp.metrics || {},
      l = sp.loss || {};
    card('mIoU', 'metrics.miou', m.miou, true, 'up', 'var(--c-iou)');
    card('mean Dice', 'metrics.mean_dice', m.mean_dice, true, 'up', 'var(--c-dice)');
    card('total loss', 'loss.total', l.total, false, 'down', 'var(--c-total)');
    card('pixel accuracy', 'metrics.accuracy', m.accuracy, true, 'up', 'var(--c-acc-strong)');
  }

  function renderLegend(boxId, defs, redraw) {
    const box = $(boxId);
    box.textContent = '';
    for (const d of defs) {
      const off = state.hidden.has(d.key);
      box.append(
        h(
          'button',
          {
            type: 'button',
            class: 'lg' + (off ? ' off' : ''),
            'data-key': d.key,
            title: off ? `show ${d.label}` : `hide ${d.label}`,
            onclick: () => {
              if (off) state.hidden.delete(d.key);
              else state.hidden.add(d.key);
              redraw();
            },
          },
          h('i', {
            style:
              `background:${d.color}` +
              (d.dash ? ';height:2px;border-top:2px dashed ' + d.color + ';background:none' : ''),
          }),
          d.label,
        ),
      );
    }
  }

  function renderCharts() {
    const drawLoss = () => {
      renderLegend('loss-legend', LOSS, drawLoss);
      lineChart($('loss-plot'), LOSS, { log: state.logLoss, pct: false, name: 'loss' });
    };
    const drawQual = () => {
      renderLegend('metric-legend', QUALITY, drawQual);
      lineChart($('metric-plot'), QUALITY, { log: false, pct: true, name: 'quality' });
    };
    drawLoss();
    drawQual();
  }

  // ---- line chart ---------------------------------------------------------------------------
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
  // An SVG path through points, broken where a value is missing (null: a gap).
  // For drawing only: at most the first, lowest, highest and last point of each pixel column,
  // so a run of 100k steps draws as fast as one of 500 and looks the same. A column that holds
  // a missing value keeps all its points, so gaps stay gaps.
  function decimate(points, X, width) {
    if (points.length <= 2 * width) return points;
    const out = [];
    let bucket = [];
    let col = null;
    const flush = () => {
      if (bucket.some((p) => !isNum(p.value)) || bucket.length <= 4) {
        out.push(...bucket);
        return;
      }
      let lo = bucket[0],
        hi = bucket[0];
      for (const p of bucket) {
        if (p.value < lo.value) lo = p;
        if (p.value > hi.value) hi = p;
      }
      const keep = [bucket[0], lo, hi, bucket[bucket.length - 1]];
      keep.sort((a, b) => a.step - b.step);
      for (const p of keep) if (out[out.length - 1] !== p) out.push(p);
    };
    for (const p of points) {
      const c = Math.floor(X(p.step));
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
  function pathD(points, X, Y) {
    let d = '';
    let pen = false;
    for (const p of points) {
      if (!isNum(p.value)) {
        pen = false;
        continue;
      }
      d += (pen ? 'L' : 'M') + X(p.step).toFixed(1) + ' ' + Y(p.value).toFixed(1);
      pen = true;
    }
    return d;
  }

  function lineChart(host, defs, opt) {
    host.textContent = '';
    const W = Math.max(280, host.clientWidth || 600);
    const H = W < 520 ? 220 : 270;
    const m = { l: 50, r: 16, t: 12, b: 30 };
    const shown = defs
      .filter((d) => !state.hidden.has(d.key))
      .map((d) => ({ ...d, points: state.series[d.key] || [] }));
    const steps = [...new Set(shown.flatMap((d) => d.points.map((p) => p.step)))].sort(
      (a, b) => a - b,
    );
    let vals = shown.flatMap((d) => d.points.map((p) => p.value)).filter(isNum);
    const log = opt.log && vals.some((v) => v > 0);
    if (log) vals = vals.filter((v) => v > 0);
    const svg = s('svg', {
      class: 'chart-svg',
      width: W,
      height: H,
      viewBox: `0 0 ${W} ${H}`,
      role: 'img',
      'aria-label': `${opt.name} against step`,
      'data-chart': opt.name,
    });
    host.append(svg);
    if (!steps.length || !vals.length) {
      s(
        'text',
        {
          x: W / 2,
          y: H / 2,
          class: 'nodata',
          'text-anchor': 'middle',
          text: steps.length ? 'no values yet (all null)' : 'no data yet',
        },
        svg,
      );
      return;
    }
    let x0 = steps[0],
      x1 = steps[steps.length - 1];
    if (x0 === x1) {
      x0 = steps[0] >= 0 ? Math.max(0, x0 - 1) : x0 - 1;
      x1 = x0 + 2;
    }
    let y0, y1, yStep;
    if (log) {
      y0 = Math.min(...vals) * 0.85;
      y1 = Math.max(...vals) * 1.15;
    } else {
      y0 = Math.min(0, ...vals);
      y1 = Math.max(...vals);
      if (opt.pct) y1 = Math.min(1, y1 * 1.08 || 1);
      if (y1 <= y0) y1 = y0 + 1;
      yStep = niceStep(y1 - y0, 4); // the domain ends on ticks
      y1 = Math.ceil(y1 / yStep - 1e-9) * yStep;
      y0 = Math.floor(y0 / yStep + 1e-9) * yStep;
      if (opt.pct && y1 > 1) y1 = 1;
    }
    const pw = W - m.l - m.r,
      ph = H - m.t - m.b;
    const X = (x) => m.l + ((x - x0) / (x1 - x0)) * pw;
    const Y = log
      ? (y) =>
          m.t + ph - ((Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * ph
      : (y) => m.t + ph - ((y - y0) / (y1 - y0)) * ph;
    const ySafe = (y) => (log && y <= 0 ? Y(y0) : Y(y));

    const grid = s('g', { class: 'grid' }, svg);
    const yt = log ? logTicks(y0, y1) : ticks(y0, y1, 4, false, yStep);
    for (const v of yt) {
      const y = Y(v);
      s('line', { x1: m.l, x2: W - m.r, y1: y, y2: y }, grid);
      s(
        'text',
        { x: m.l - 8, y: y + 4, 'text-anchor': 'end', class: 'tick', text: fmtTick(v, opt.pct) },
        grid,
      );
    }
    // one unit along the axis: 2k 4k ... 10k rather than 2000 4000 ... 10k
    const xLabel = (v) =>
      x1 >= 10000 && Math.abs(v) >= 1000 ? `${+(v / 1000).toFixed(1)}k` : String(v);
    const xt = ticks(x0, x1, Math.max(2, Math.floor(pw / 80)), true).filter(
      (v) => v >= x0 && v <= x1,
    );
    for (const v of xt) {
      const x = X(v);
      s('line', { x1: x, x2: x, y1: H - m.b, y2: H - m.b + 4, class: 'tickmark' }, grid);
      s(
        'text',
        { x, y: H - m.b + 17, 'text-anchor': 'middle', class: 'tick', text: xLabel(v) },
        grid,
      );
    }
    s('line', { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: 'axis' }, grid);
    s(
      'text',
      { x: W - m.r, y: H - 2, 'text-anchor': 'end', class: 'axis-label', text: 'step' },
      grid,
    );

    const lines = s('g', { class: 'lines' }, svg);
    for (const d of [...shown].reverse()) {
      const pts = d.points.filter((p) => !log || !isNum(p.value) || p.value > 0);
      s(
        'path',
        {
          d: pathD(decimate(pts, X, pw), X, ySafe) || 'M0 0',
          class: 'series',
          'data-key': d.key,
          'data-points': pts.filter((p) => isNum(p.value)).length,
          stroke: d.color,
          'stroke-width': d.width || 1.7,
          'stroke-dasharray': d.dash,
          fill: 'none',
          'stroke-linejoin': 'round',
          'stroke-linecap': 'round',
        },
        lines,
      );
      const few = pts.length <= 40;
      let lastIdx = -1;
      pts.forEach((p, i) => {
        if (isNum(p.value)) lastIdx = i;
      });
      pts.forEach((p, i) => {
        if (!isNum(p.value)) return;
        const lonely = !isNum(pts[i - 1]?.value) && !isNum(pts[i + 1]?.value);
        const last = i === lastIdx; // the latest value stands out
        if (few || lonely || last)
          s(
            'circle',
            {
              cx: X(p.step),
              cy: ySafe(p.value),
              r: last ? 3.6 : lonely ? 3.2 : 2.3,
              fill: d.color,
              class: last ? 'pt last' : 'pt',
            },
            lines,
          );
      });
    }

    // hover: a guide at the nearest step and a tooltip with every series' value there
    const hover = s('g', { class: 'hover', display: 'none' }, svg);
    const guide = s('line', { y1: m.t, y2: H - m.b, class: 'guide' }, hover);
    const dots = shown.map((d) =>
      s('circle', { r: 4.5, fill: d.color, class: 'hover-dot' }, hover),
    );
    const lookup = shown.map((d) => new Map(d.points.map((p) => [p.step, p.value])));
    const catcher = s(
      'rect',
      { x: m.l, y: m.t, width: pw, height: ph, fill: 'transparent', class: 'catcher' },
      svg,
    );
    const move = (ev) => {
      const r = svg.getBoundingClientRect();
      const px = ((ev.clientX - r.left) / r.width) * W;
      const target = x0 + ((px - m.l) / pw) * (x1 - x0);
      let lo = 0,
        hi = steps.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (steps[mid] < target) lo = mid;
        else hi = mid;
      }
      const step =
        Math.abs(steps[lo] - target) <= Math.abs(steps[hi] - target) ? steps[lo] : steps[hi];
      const x = X(step);
      guide.setAttribute('x1', x);
      guide.setAttribute('x2', x);
      const rows = [];
      shown.forEach((d, i) => {
        const v = lookup[i].get(step);
        const ok = isNum(v) && (!log || v > 0);
        dots[i].setAttribute('visibility', ok ? 'visible' : 'hidden');
        if (ok) {
          dots[i].setAttribute('cx', x);
          dots[i].setAttribute('cy', Y(v));
        }
        rows.push([d, v]);
      });
      hover.removeAttribute('display');
      showTip(
        ev,
        h(
          'div',
          null,
          h('div', { class: 'tt-head', text: `step ${step}` }),
          ...rows.map(([d, v]) =>
            h(
              'div',
              { class: 'tt-row' },
              h('i', { style: `background:${d.color}` }),
              h('span', { text: d.label }),
              h('b', { text: opt.pct ? fmtPct(v, 2) : fmtNum(v) }),
            ),
          ),
        ),
      );
    };
    catcher.addEventListener('pointermove', move);
    catcher.addEventListener('pointerdown', move);
    catcher.addEventListener('pointerleave', () => {
      hover.setAttribute('display', 'none');
      hideTip();
    });
  }

  // ---- per-class bars -----------------------------------------------------------------------
  function renderClasses(sp) {
    const host = $('class-plot');
    const legend = $('class-legend');
    legend.textContent = '';
    legend.append(
      h('span', { class: 'lg static' }, h('i', { style: 'background:var(--c-dice)' }), 'Dice'),
      h('span', { class: 'lg static' }, h('i', { style: 'background:var(--c-iou)' }), 'IoU'),
      h('span', { class: 'lg static' }, h('i', { class: 'dashed' }), 'mean'),
    );
    host.textContent = '';
    const pc = (sp && sp.per_class) || {};
    const dice = pc.dice || [],
      iou = pc.iou || [];
    const n = Math.max(dice.length, iou.length, 0);
    // a class with no ground-truth pixels in this step: its scores say nothing
    const absent = (i) => Array.isArray(pc.support) && pc.support[i] === 0;
    const nAbsent = [...Array(n).keys()].filter(absent).length;
    $('class-sub').textContent = sp
      ? `at step ${fmtStep(sp.step)} · ${n} classes` +
        (nAbsent ? ` · ${nAbsent} not in the masks` : '')
      : '';
    if (!n) {
      host.append(h('p', { class: 'nodata-p', text: 'No per-class values for this step.' }));
      return;
    }
    const names = sp.class_names || [];
    const label = (i) => (names[i] != null ? String(names[i]) : `class ${i}`);
    let order = [...Array(n).keys()];
    if (state.sort === 'worst') {
      const key = (i) =>
        absent(i) ? Infinity : isNum(dice[i]) ? dice[i] : isNum(iou[i]) ? iou[i] : Infinity;
      order.sort((a, b) => key(a) - key(b) || a - b);
    }
    const W = Math.max(300, host.clientWidth || 600);
    const rowH = n > 40 ? 18 : 26;
    const barH = n > 40 ? 6 : 9;
    const longest = Math.max(...order.map((i) => label(i).length));
    const narrow = W < 520;
    const labelW = Math.min(narrow ? 104 : 190, Math.max(64, longest * 7.2 + 30));
    const maxChars = Math.floor((labelW - 26) / 7.2);
    const short = (s) => (s.length > maxChars ? s.slice(0, maxChars - 1) + '…' : s);
    const top = 24,
      valW = narrow ? 46 : 56;
    const pw = W - labelW - valW - 8;
    const H = top + n * rowH + 6;
    const X = (v) => labelW + Math.max(0, Math.min(1, v)) * pw;
    const svg = s('svg', {
      class: 'bars-svg',
      width: W,
      height: H,
      viewBox: `0 0 ${W} ${H}`,
      role: 'img',
      'aria-label': 'per-class Dice and IoU',
      'data-chart': 'classes',
    });
    host.append(svg);
    const grid = s('g', { class: 'grid' }, svg);
    for (const v of narrow ? [0, 0.5, 1] : [0, 0.25, 0.5, 0.75, 1]) {
      s('line', { x1: X(v), x2: X(v), y1: top - 4, y2: H - 4 }, grid);
      s(
        'text',
        { x: X(v), y: top - 10, 'text-anchor': 'middle', class: 'tick', text: `${v * 100}%` },
        grid,
      );
    }
    if (!narrow)
      s('text', { x: W - 6, y: top - 10, 'text-anchor': 'end', class: 'tick', text: 'Dice' }, grid);
    const m = (sp && sp.metrics) || {};
    const rows = s('g', null, svg);
    order.forEach((ci, r) => {
      const y = top + r * rowH;
      const gone = absent(ci);
      const g = s('g', { class: gone ? 'row absent' : 'row', 'data-class': ci }, rows);
      s('rect', { x: 0, y, width: W, height: rowH, class: 'row-bg' }, g);
      s(
        'rect',
        {
          x: 4,
          y: y + rowH / 2 - 5,
          width: 10,
          height: 10,
          rx: 2,
          fill: vocColor(ci),
          class: 'swatch',
        },
        g,
      );
      s('text', { x: 20, y: y + rowH / 2 + 4, class: 'cls', text: short(label(ci)) }, g);
      const bars = [
        [dice[ci], 'dice', 'var(--c-dice)'],
        [iou[ci], 'iou', 'var(--c-iou)'],
      ];
      if (gone) {
        s(
          'text',
          { x: X(0) + 6, y: y + rowH / 2 + 4, class: 'absent-note', text: 'not in the masks' },
          g,
        );
      }
      bars.forEach(([v, kind, color], k) => {
        if (gone) return;
        const by = y + (rowH - 2 * barH - 2) / 2 + k * (barH + 2);
        if (isNum(v)) {
          s(
            'rect',
            {
              x: X(0),
              y: by,
              width: Math.max(0.5, X(v) - X(0)),
              height: barH,
              rx: 2,
              fill: color,
              class: `bar ${kind}`,
              'data-class': ci,
              'data-value': v,
            },
            g,
          );
        } else {
          s('rect', { x: X(0), y: by, width: pw, height: barH, rx: 2, class: 'bar-null' }, g);
        }
      });
      const dv = isNum(dice[ci]) ? dice[ci] : iou[ci];
      const worst = !gone && isNum(dv) && dv < 0.5 * (isNum(m.mean_dice) ? m.mean_dice : 1);
      s(
        'text',
        {
          x: W - 6,
          y: y + rowH / 2 + 4,
          'text-anchor': 'end',
          class: 'val' + (worst ? ' low' : ''),
          text: gone
            ? '—'
            : isNum(dice[ci])
              ? fmtPct(dice[ci])
              : isNum(iou[ci])
                ? fmtPct(iou[ci])
                : 'n/a',
        },
        g,
      );
      g.addEventListener('pointermove', (ev) => {
        const pick = (k) => (pc[k] && pc[k][ci] !== undefined ? pc[k][ci] : undefined);
        const extra = [
          ['precision', pick('precision'), true],
          ['recall', pick('recall'), true],
          ['support', pick('support'), false],
        ].filter(([, v]) => v !== undefined);
        showTip(
          ev,
          h(
            'div',
            null,
            h(
              'div',
              { class: 'tt-head' },
              h('i', { class: 'sw', style: `background:${vocColor(ci)}` }),
              `${label(ci)}`,
              h('span', { class: 'tt-dim', text: ` #${ci}` }),
            ),
            h(
              'div',
              { class: 'tt-row' },
              h('i', { style: 'background:var(--c-dice)' }),
              h('span', { text: 'Dice' }),
              h('b', { text: fmtPct(dice[ci], 2) }),
            ),
            h(
              'div',
              { class: 'tt-row' },
              h('i', { style: 'background:var(--c-iou)' }),
              h('span', { text: 'IoU' }),
              h('b', { text: fmtPct(iou[ci], 2) }),
            ),
            ...extra.map(([k, v, pct]) =>
              h(
                'div',
                { class: 'tt-row' },
                h('i', { class: 'blank' }),
                h('span', { text: k }),
                h('b', { text: pct ? fmtPct(v, 2) : isNum(v) ? v.toLocaleString() : '—' }),
              ),
            ),
            gone || (!isNum(dice[ci]) && !isNum(iou[ci]))
              ? h('div', {
                  class: 'tt-dim',
                  text: 'no ground-truth pixels of this class at this step',
                })
              : null,
          ),
        );
      });
      g.addEventListener('pointerleave', hideTip);
    });
    // means
    const means = [
      [m.mean_dice, 'var(--c-dice)', 'mean Dice'],
      [m.miou, 'var(--c-iou)', 'mIoU'],
    ];
    for (const [v, color, name] of means) {
      if (!isNum(v)) continue;
      const line = s(
        'line',
        { x1: X(v), x2: X(v), y1: top - 2, y2: H - 4, stroke: color, class: 'mean' },
        svg,
      );
      s('title', { text: `${name} ${fmtPct(v, 2)}` }, line);
    }
  }

  // ---- overlays -----------------------------------------------------------------------------
  function renderOverlays(sp) {
    const all = sp ? sp.latest.map((e) => e.id) : [];
    const ids = all.slice(0, MAX_OVERLAYS);
    const key = ids.join(',');
    $('overlay-sub').textContent = ids.length
      ? `${all.length > ids.length ? `${ids.length} newest` : 'newest first'}` +
        ' · ground truth | prediction | errors'
      : '';
    if (key === state.overlayIds && $('overlays').childElementCount) return;
    state.overlayIds = key;
    const box = $('overlays');
    box.textContent = '';
    if (!ids.length) {
      box.append(h('p', { class: 'nodata-p', text: 'No overlays for this step.' }));
      return;
    }
    for (const id of ids) {
      const src = `/v1/evaluations/${enc(id)}/overlay.png?item=0`;
      const img = h('img', {
        src,
        alt: `overlay of evaluation ${id}`,
        loading: 'lazy',
        decoding: 'async',
        'data-id': id,
      });
      const ref = sp.latest.find((e) => e.id === id) || {};
      const fig = h(
        'figure',
        { class: 'ov' },
        h('a', { href: src, target: '_blank', rel: 'noopener', title: 'open full size' }, img),
        h(
          'figcaption',
          null,
          h('a', {
            href: `/v1/evaluations/${enc(id)}`,
            target: '_blank',
            rel: 'noopener',
            text: id.length > 14 ? id.slice(0, 12) + '…' : id,
            title: `evaluation ${id} (JSON)`,
          }),
          isNum(ref.step) ? h('span', { text: ` · step ${fmtStep(ref.step)}` }) : null,
          isNum(ref.n) && ref.n > 1 ? h('span', { text: ` · item 1 of ${ref.n}` }) : null,
        ),
      );
      img.addEventListener('error', () => fig.classList.add('broken'));
      box.append(fig);
    }
  }

  // ---- tooltip ------------------------------------------------------------------------------
  function showTip(ev, content) {
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
  function hideTip() {
    $('tooltip').hidden = true;
  }

  // ---- wiring -------------------------------------------------------------------------------
  function init() {
    const want = readHash();
    state.run = want.run;
    state.split = want.split;
    $('runs').addEventListener('click', (ev) => {
      const a = ev.target.closest('a[data-run]');
      if (!a) return;
      ev.preventDefault();
      $('notice').hidden = true;
      select(a.dataset.run, null, false);
      render();
      pollSoon(0);
    });
    window.addEventListener('hashchange', () => {
      const w = readHash();
      if (w.run !== state.run || (w.split && w.split !== state.split)) {
        select(w.run, w.split, true);
        pollSoon(0);
      }
    });
    window.addEventListener('popstate', () => {
      const w = readHash();
      select(w.run, w.split, true);
      pollSoon(0);
    });
    $('notice-close').addEventListener('click', () => {
      $('notice').hidden = true;
    });
    $('loss-log').addEventListener('change', (ev) => {
      state.logLoss = ev.target.checked;
      renderCharts();
    });
    $('class-sort').addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-sort]');
      if (!b) return;
      state.sort = b.dataset.sort;
      for (const x of $('class-sort').children) x.classList.toggle('on', x === b);
      renderClasses(currentSplit());
    });
    $('copy-curl').addEventListener('click', async () => {
      const text = $('curl-example').textContent;
      try {
        await navigator.clipboard.writeText(text);
        $('copy-curl').textContent = 'Copied';
      } catch (_) {
        const range = document.createRange();
        range.selectNodeContents($('curl-example'));
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        $('copy-curl').textContent = 'Selected — press Ctrl+C';
      }
      setTimeout(() => {
        $('copy-curl').textContent = 'Copy command';
      }, 2000);
    });
    let lastW = 0,
      raf = 0;
    new ResizeObserver(() => {
      const w = $('main').clientWidth;
      if (w === lastW) return;
      lastW = w;
      cancelAnimationFrame(raf);
      raf = requestAnimationFrame(() => {
        if (state.detail && !$('run-view').hidden) {
          renderCharts();
          renderClasses(currentSplit());
        }
      });
    }).observe($('main'));
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) pollSoon(0);
    });
    setInterval(refreshTimes, 1000);
    tick();
  }

  init();
})();
