// app.js - the segloss dashboard's entry point: the state, the polling loop (every few seconds,
// with If-None-Match, so an unchanged run costs a 304) and the layout of the page. What is
// drawn lives in modules:
//   util.js          DOM builders, formats, colours, the tooltip
//   api.js           GETs with ETags, paged history, readers of the answers
//   urlstate.js      the view in the URL hash (a link reproduces it)
//   series.js        smoothing, decimation, SVG paths
//   linechart.js     the line chart (compare, smoothing, zoom, shared cursor)
//   classes.js       per-class bars of one step, absent classes
//   classhistory.js  chosen classes' Dice and IoU over the steps
//   confusion.js     the confusion heatmap of a step
//   items.js         the worst items of a step with their overlays
//   runlist.js       the runs in the sidebar (filter, compare boxes)
//   kpis.js          the headline numbers and the absent-class note
//   overlays.js      the latest overlays
// Plain SVG, no library, nothing loaded from outside the daemon.
import {
  $, h, s, enc, isNum, fmtStep, ago, clock, parseTime, runColor,
} from './util.js';
import {
  HttpError, getJSON, forgetRun, loadRuns, fetchHistory, splitsOf, normSplit,
} from './api.js';
import { readHash, writeHash } from './urlstate.js';
import { smooth } from './series.js';
import { lineChart, cursorGroup } from './linechart.js';
import { renderClasses } from './classes.js';
import {
  MAX_CLASSES, loadClassHistory, renderClassChips, renderClassHistory,
} from './classhistory.js';
import { renderConfusion } from './confusion.js';
import { renderKpis } from './kpis.js';
import { renderOverlays } from './overlays.js';
import { renderRuns } from './runlist.js';
import { ITEM_SORTS, itemsUrl, renderItems, wireLightbox } from './items.js';

const POLL_MS = 3000;
const FULL_EVERY = 20; // polls between full re-reads of the history (catches older steps)
const MAX_COMPARE = 20;

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
const KEYS = [...LOSS, ...QUALITY].map((d) => d.key);

const want0 = readHash();
const state = {
  runs: [],
  run: null,
  split: null,
  detail: null, // GET /v1/runs/{run} of the run shown in full
  data: new Map(), // run -> {detail, hist, series: key -> [{step, value, timestamp}]}
  compare: want0.compare, // runs laid over the charts
  filter: '',
  ticks: 0,
  hidden: new Set(), // keys (one run) or runs (compare) toggled off in a legend
  logLoss: false,
  sort: 'index',
  smooth: want0.smooth,
  xMode: want0.xMode,
  zoom: want0.zoom,
  classes: want0.classes,
  istep: want0.istep,
  isort: want0.isort,
  lossKey: 'loss.total',
  qualityKey: 'metrics.miou',
  panels: { key: null, classHist: {}, confusion: null, items: null },
  gen: 0, // bumped when the selection changes; stale answers are dropped
  lastChange: 0,
  lastOk: 0,
  loaded: false,
  overlayIds: '',
};
window.__segloss_perf = []; // {what, ms, points} of each chart drawing (tests read it)

const view = () => ({
  run: state.run,
  split: state.split,
  compare: state.compare,
  smooth: state.smooth,
  xMode: state.xMode,
  zoom: state.zoom,
  classes: state.classes,
  istep: state.istep,
  isort: state.isort,
});
const saveView = (replace = true) => writeHash(view(), replace);

// ---- selection ----------------------------------------------------------------------------
function select(run, split, replace) {
  if (run !== state.run || split !== state.split) {
    state.gen++;
    if (run !== state.run) {
      state.detail = null;
      state.overlayIds = '';
      state.istep = null;
      state.zoom = null;
    }
    state.data = new Map();
    state.panels = { key: null, classHist: {}, confusion: null, items: null };
    state.run = run;
    state.split = split;
    state.compare = state.compare.filter((r) => r !== run);
  }
  writeHash(view(), replace);
}
function seriesOf(run) {
  const d = state.data.get(run);
  return (d && d.series) || {};
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

// Fetches the run shown, the runs compared and the step panels; true when something changed.
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
  else saveView(true);
  const genAfter = state.gen;
  let changed = det.changed || state.detail === null;
  state.detail = det.data;
  if (!split) return changed;
  state.ticks++;
  try {
    changed = (await syncHistory(run, split, det, genAfter)) || changed;
    const before = state.compare.length;
    state.compare = state.compare.filter((r) => names.includes(r) && r !== run);
    if (state.compare.length !== before) changed = true;
    for (const other of state.compare) {
      const d = await getJSON(`/v1/runs/${enc(other)}`);
      if (genAfter !== state.gen) return false;
      changed = (await syncHistory(other, split, d, genAfter)) || changed;
    }
    changed = (await loadPanels(run, split, det.data, genAfter)) || changed;
  } catch (e) {
    if (e instanceof HttpError && e.status === 404) return false; // deleted meanwhile: next poll
    throw e;
  }
  return changed;
}

// Brings a run's series up to date: everything on a new selection (or a re-created run, or
// now and then), otherwise only the steps from the last one seen on, and nothing at all while
// the run's ETag says it did not change.
async function syncHistory(run, split, det, gen) {
  const id = `${run}\u0000${split}`;
  const created = det.data.created_ms ?? null;
  const sp = splitsOf(det.data)[split];
  const latest = sp && isNum(sp.step) ? sp.step : null;
  const entry = state.data.get(run) || { series: {} };
  let hs = entry.hist;
  const fresh =
    !hs ||
    hs.id !== id ||
    hs.created !== created ||
    (latest !== null && hs.last !== null && latest < hs.last);
  if (!fresh && hs.detail === det.data) return false; // the run's ETag did not change
  if (!sp) {
    // the compared run has no such split
    state.data.set(run, { series: {}, hist: { id, created, last: null, fullAt: state.ticks, detail: det.data, maps: {} } });
    return true;
  }
  const full = fresh || state.ticks - hs.fullAt >= FULL_EVERY;
  const since = full || hs.last === null ? 0 : hs.last;
  const points = await fetchHistory(run, split, KEYS, since);
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
  const series = {};
  for (const k of KEYS) series[k] = [...hs.maps[k].values()].sort((a, b) => a.step - b.step);
  state.data.set(run, { hist: hs, series });
  return true;
}

// The per-class history, the confusion matrix and the items of the inspected step: read again
// only when the run changed or what is asked for did.
async function loadPanels(run, split, detail, gen) {
  const key = [run, split, detail.revision ?? detail.updated_ms, state.istep, state.isort,
    state.classes.join(',')].join('|');
  if (state.panels.key === key) return false;
  const step = state.istep;
  const [cm, items, classHist] = await Promise.all([
    getJSON(`/v1/runs/${enc(run)}?confusion_matrix=true` + (isNum(step) ? `&step=${step}` : ''))
      .then((r) => normSplit(splitsOf(r.data)[split], r.data))
      .catch(() => null),
    getJSON(itemsUrl(run, split, step, state.isort))
      .then((r) => r.data)
      .catch(() => null),
    loadClassHistory(run, split, state.classes).catch(() => ({})),
  ]);
  if (gen !== state.gen) return false;
  state.panels = { key, confusion: cm, items, classHist };
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
  $('notice-text').textContent = `Run “${run}” no longer exists (deleted?) — showing another run.`;
  $('notice').hidden = false;
}

// ---- rendering ----------------------------------------------------------------------------
function render() {
  const t0 = performance.now();
  renderPage();
  let points = 0;
  for (const r of [state.run, ...state.compare]) points += (seriesOf(r)['loss.total'] || []).length;
  window.__segloss_perf.push({ what: 'render', ms: performance.now() - t0, points });
}

function renderPage() {
  const t = performance.now();
  renderRuns(state);
  window.__segloss_perf.push({ what: 'runs', ms: performance.now() - t });
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
  const T = (what, fn) => {
    const t = performance.now();
    fn();
    window.__segloss_perf.push({ what, ms: performance.now() - t });
  };
  const sp = currentSplit();
  T('head', () => renderHead());
  T('kpis', () => renderKpis(sp, seriesOf(state.run)));
  T('toolbar', () => renderToolbar());
  renderCharts();
  T('classes', () => renderClasses(sp, state.sort));
  T('panels', () => renderPanels(sp));
  T('overlays', () => {
    state.overlayIds = renderOverlays(sp, state.overlayIds);
  });
}

function currentSplit() {
  const d = state.detail;
  return (d && state.split && normSplit(splitsOf(d)[state.split], d)) || null;
}

function renderHead() {
  document.title = `${state.run} · segloss`;
  $('run-title').textContent = state.run;
  const seg = $('splits');
  seg.textContent = '';
  for (const sp of Object.keys(splitsOf(state.detail))) {
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

function renderToolbar() {
  $('smooth').value = String(state.smooth);
  $('smooth-val').textContent = state.smooth ? state.smooth.toFixed(2) : 'off';
  $('x-mode').value = state.xMode;
  $('zoom-reset').hidden = !state.zoom;
}

// One run: its keys, each in its colour. Several: one key, each run in its colour.
function chartLines(defs, chosenKey) {
  const runs = [state.run, ...state.compare];
  if (runs.length === 1) {
    const series = seriesOf(state.run);
    return defs
      .filter((d) => !state.hidden.has(d.key))
      .map((d) => {
        const points = series[d.key] || [];
        return { ...d, run: state.run, points, drawn: smooth(points, state.smooth) };
      });
  }
  const d = defs.find((x) => x.key === chosenKey) || defs[0];
  return runs
    .filter((r) => !state.hidden.has('run:' + r))
    .map((r) => {
      const points = seriesOf(r)[d.key] || [];
      return {
        key: d.key,
        run: r,
        label: r,
        color: runColor(r),
        width: r === state.run ? 2.4 : 1.8,
        points,
        drawn: smooth(points, state.smooth),
      };
    });
}

function renderLegend(boxId, defs, chosenKey, redraw) {
  const box = $(boxId);
  box.textContent = '';
  const runs = [state.run, ...state.compare];
  if (runs.length > 1) {
    for (const r of runs) {
      const off = state.hidden.has('run:' + r);
      box.append(
        h(
          'button',
          {
            type: 'button',
            class: 'lg' + (off ? ' off' : ''),
            'data-run': r,
            title: off ? `show ${r}` : `hide ${r}`,
            onclick: () => {
              if (off) state.hidden.delete('run:' + r);
              else state.hidden.add('run:' + r);
              redraw();
            },
          },
          h('i', { style: `background:${runColor(r)}` }),
          r,
        ),
      );
    }
    return;
  }
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

const cursor = cursorGroup();
function chartOptions() {
  return {
    xMode: state.xMode,
    zoom: state.zoom,
    cursor,
    onZoom: (range) => {
      state.zoom = range;
      saveView(false);
      renderToolbar();
      renderCharts();
    },
    onPick: (step) => {
      state.istep = step;
      saveView(false);
      pollSoon(0);
    },
  };
}

function renderCharts() {
  const t0 = performance.now();
  cursor.clear();
  // every width read before anything is drawn: one layout, not one per chart
  const widths = ['loss-plot', 'metric-plot', 'classhist-plot'].map((id) => $(id).clientWidth);
  const comparing = state.compare.length > 0;
  $('loss-key').hidden = !comparing;
  $('quality-key').hidden = !comparing;
  const drawLoss = () => {
    renderLegend('loss-legend', LOSS, state.lossKey, drawLoss);
    lineChart($('loss-plot'), chartLines(LOSS, state.lossKey), { ...chartOptions(), log: state.logLoss, pct: false, name: 'loss', width: widths[0] });
  };
  const drawQual = () => {
    renderLegend('metric-legend', QUALITY, state.qualityKey, drawQual);
    lineChart($('metric-plot'), chartLines(QUALITY, state.qualityKey), { ...chartOptions(), log: false, pct: true, name: 'quality', width: widths[1] });
  };
  drawLoss();
  drawQual();
  const sp = currentSplit();
  renderClassHistory($('classhist-plot'), state.panels.classHist, state.classes, sp && sp.class_names, {
    ...chartOptions(),
    run: state.run,
    smooth: state.smooth,
    width: widths[2],
  });
  let points = 0;
  for (const r of [state.run, ...state.compare]) points += (seriesOf(r)['loss.total'] || []).length;
  window.__segloss_perf.push({ what: 'charts', ms: performance.now() - t0, points, runs: 1 + state.compare.length });
}

function renderPanels(sp) {
  const n = sp ? Math.max((sp.per_class.dice || []).length, (sp.per_class.iou || []).length) : 0;
  renderClassChips($('class-chips'), n, sp && sp.class_names, state.classes, (k) => {
    state.classes = state.classes.includes(k)
      ? state.classes.filter((x) => x !== k)
      : [...state.classes, k].slice(-MAX_CLASSES);
    saveView(false);
    renderPanels(currentSplit());
    pollSoon(0);
  });
  const cm = state.panels.confusion;
  const names = sp && sp.class_names;
  $('inspect-step').value = isNum(state.istep) ? String(state.istep) : '';
  $('inspect-step').placeholder = sp && isNum(sp.step) ? `latest (${sp.step})` : 'latest';
  $('confusion-sub').textContent = cm ? `step ${fmtStep(cm.step)} · rows: ground truth` : '';
  renderConfusion($('confusion-plot'), cm && cm.confusion, names, cm && cm.step);
  for (const b of $('item-sort').children) b.classList.toggle('on', b.dataset.sort === state.isort);
  renderItems($('items'), state.panels.items, names, state.isort);
}

// ---- wiring -------------------------------------------------------------------------------
function applyHash() {
  const w = readHash();
  const sameRun = w.run === state.run && (!w.split || w.split === state.split);
  if (!sameRun) select(w.run, w.split, true);
  state.compare = w.compare.filter((r) => r !== state.run).slice(0, MAX_COMPARE);
  state.smooth = w.smooth;
  state.xMode = w.xMode;
  state.zoom = w.zoom;
  state.classes = w.classes;
  state.istep = w.istep;
  state.isort = w.isort;
  if (state.detail) render();
  pollSoon(0);
}

function init() {
  const want = readHash();
  state.run = want.run;
  state.split = want.split;
  $('runs').addEventListener('click', (ev) => {
    const box = ev.target.closest('input.cmp-box');
    if (box) {
      const r = box.dataset.run;
      state.compare = box.checked
        ? [...state.compare.filter((x) => x !== r), r].slice(-MAX_COMPARE)
        : state.compare.filter((x) => x !== r);
      saveView(false);
      render();
      pollSoon(0);
      return;
    }
    const a = ev.target.closest('a[data-run]');
    if (!a) return;
    ev.preventDefault();
    $('notice').hidden = true;
    select(a.dataset.run, null, false);
    render();
    pollSoon(0);
  });
  $('run-filter').addEventListener('input', (ev) => {
    state.filter = ev.target.value;
    renderRuns(state);
  });
  window.addEventListener('hashchange', applyHash);
  window.addEventListener('popstate', applyHash);
  $('notice-close').addEventListener('click', () => {
    $('notice').hidden = true;
  });
  $('loss-log').addEventListener('change', (ev) => {
    state.logLoss = ev.target.checked;
    renderCharts();
  });
  $('smooth').addEventListener('input', (ev) => {
    state.smooth = Math.min(0.999, Math.max(0, Number(ev.target.value) || 0));
    saveView(true);
    renderToolbar();
    renderCharts();
  });
  $('x-mode').addEventListener('change', (ev) => {
    state.xMode = ev.target.value === 'time' ? 'time' : 'step';
    state.zoom = null;
    saveView(false);
    renderToolbar();
    renderCharts();
  });
  $('zoom-reset').addEventListener('click', () => {
    state.zoom = null;
    saveView(false);
    renderToolbar();
    renderCharts();
  });
  for (const [id, defs, prop] of [
    ['loss-key', LOSS, 'lossKey'],
    ['quality-key', QUALITY, 'qualityKey'],
  ]) {
    const sel = $(id);
    for (const d of defs) sel.append(h('option', { value: d.key, text: d.label }));
    sel.addEventListener('change', () => {
      state[prop] = sel.value;
      renderCharts();
    });
  }
  $('class-sort').addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-sort]');
    if (!b) return;
    state.sort = b.dataset.sort;
    for (const x of $('class-sort').children) x.classList.toggle('on', x === b);
    renderClasses(currentSplit(), state.sort);
  });
  const sortBox = $('item-sort');
  for (const [key, label] of ITEM_SORTS)
    sortBox.append(h('button', { type: 'button', 'data-sort': key, text: label }));
  sortBox.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-sort]');
    if (!b) return;
    state.isort = b.dataset.sort;
    saveView(false);
    for (const x of sortBox.children) x.classList.toggle('on', x === b);
    pollSoon(0);
  });
  $('inspect-step').addEventListener('change', (ev) => {
    const v = ev.target.value.trim();
    state.istep = v === '' || !Number.isFinite(+v) ? null : Math.trunc(+v);
    saveView(false);
    pollSoon(0);
  });
  $('inspect-latest').addEventListener('click', () => {
    state.istep = null;
    saveView(false);
    pollSoon(0);
  });
  wireLightbox();
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
        renderClasses(currentSplit(), state.sort);
        renderPanels(currentSplit());
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
