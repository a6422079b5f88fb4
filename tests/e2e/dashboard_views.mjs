// dashboard_views.mjs - browser test of the dashboard's views (issue 15) in headless Chromium
// (playwright-core), against a real seglossd seeded with three runs of synthetic batches (5
// classes, 4 items a batch, the class "sky" never in the masks), then a timing test of the
// first render at scale on the node mock. Run it through test_dashboard_views.sh.
//
//   node tests/e2e/dashboard_views.mjs [--build DIR] [--scale-steps N]
//
// Checks: two runs overlaid with their legend and a colour per run that survives a reload;
// smoothing changes the drawn path while the raw one stays; a drag zooms and a double-click
// resets; per-class curves for chosen classes; the confusion heatmap's cells equal the
// aggregate's counts; the absent class is labelled (headline, bars, heatmap); the worst items
// are sorted by the chosen figure, as the items API orders them, and their overlays load and
// enlarge; the URL restores the view; a step can be inspected; no console error. Screenshots of
// each view go to tests/artifacts/. Then the first render of a run with N (10 000) points, and
// of three such runs compared, timed in the page (performance.now around the drawing) and
// printed; the best of three cold first renders must take under 300 ms (the test machine is
// shared, and one render can wait for a busy core).
// Prints one line per check and "N passed, N failed" last.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const argv = process.argv.slice(2);
const arg = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const BUILD = arg('--build', process.env.BUILD || 'build');
const SCALE_STEPS = Number(arg('--scale-steps', '10000'));
const FIRST_RENDER_BUDGET_MS = 300;
const FIRST_RENDER_TRIES = 3;
// Runs overlaid at scale (the issue: 20 runs x 10 000 steps draw and redraw smoothly), and
// what one redraw of them may take on this shared 2-core machine.
const SCALE_RUNS = Number(arg('--scale-runs', '20'));
const REDRAW_BUDGET_MS = 1000;
const NPM_PREFIX = process.env.NPM_PREFIX || path.join(ROOT, 'build', 'npm');
const DAEMON = path.resolve(ROOT, BUILD, 'seglossd');
const ARTIFACTS = path.join(ROOT, 'tests', 'artifacts');
const CHROMIUM = '/usr/bin/chromium';
const WATCHDOG_MS = 270000;
const WAIT_MS = 15000;

const require = createRequire(path.join(NPM_PREFIX, 'node_modules', '.'));
const { chromium } = require('playwright-core');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'segloss_views_'));
const pidFile = process.env.DASH_PIDS || path.join(tmp, 'pids');
const children = new Set();
let passed = 0,
  failed = 0;
function check(name, ok, why = '') {
  if (ok) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}${why ? ': ' + why : ''}`);
  }
  return ok;
}
const note = (text) => console.log(`#    ${text}`);
function finish() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch (_) {
      /* gone */
    }
  }
  try {
    fs.rmSync(tmp, { recursive: true, force: true });
  } catch (_) {
    /* best effort */
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
const watchdog = setTimeout(() => {
  check('finished within the watchdog', false, `${WATCHDOG_MS} ms`);
  finish();
}, WATCHDOG_MS);
for (const sig of ['SIGTERM', 'SIGINT'])
  process.on(sig, () => {
    check('not interrupted', false, sig);
    finish();
  });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(fn, ms = WAIT_MS, every = 150) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
    } catch (_) {
      last = undefined;
    }
    if (last) return last;
    if (Date.now() > end) return last;
    await sleep(every);
  }
}
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}
function track(child) {
  children.add(child);
  fs.appendFileSync(pidFile, `${child.pid}\n`);
  child.on('exit', () => children.delete(child));
  return child;
}
async function status(url) {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(5000) })).status;
  } catch (_) {
    return 0;
  }
}
async function getJSON(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(10000) });
  return r.ok ? r.json() : null;
}

async function startDaemon() {
  const dataDir = fs.mkdtempSync(path.join(tmp, 'data_'));
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const log = fs.openSync(path.join(tmp, `seglossd_${port}.log`), 'w');
    const child = track(
      spawn(DAEMON, ['--port', String(port), '--bind', '127.0.0.1', '--data-dir', dataDir,
        '--log-format', 'text', '--shutdown-timeout', '2'], { stdio: ['ignore', log, log] }),
    );
    const origin = `http://127.0.0.1:${port}`;
    if (await waitFor(async () => child.exitCode === null && (await status(`${origin}/livez`)) === 200, 15000, 100))
      return { origin, child };
    child.kill('SIGKILL');
  }
  return null;
}
async function startMock(extra) {
  const child = track(
    spawn(process.execPath, [path.join(HERE, 'dashboard_mock.mjs'), '--port', '0', ...extra], {
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  const port = await new Promise((resolve) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/listening (\d+)/);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', () => resolve(0));
    setTimeout(() => resolve(0), 60000);
  });
  return port ? { origin: `http://127.0.0.1:${port}`, child } : null;
}

// ---- synthetic batches as .npy ------------------------------------------------------------
const C = 5,
  N = 4,
  SIDE = 16;
const NAMES = ['road', 'car', 'person', 'tree', 'sky'];
const ABSENT = 4; // "sky": never in the masks
function npy(descr, shape, bytes) {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93]).copy(head, 0);
  head.write('NUMPY', 1, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(bytes.buffer)]);
}
function lcg(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 4294967296;
  };
}
// Labels in 0..3 (and some 255), logits leaning to the label more with the step; item i is
// noisier the higher i, so the items' figures differ.
function batch(seed, step) {
  const rnd = lcg(seed * 7919 + step * 104729);
  const labels = new Uint8Array(N * SIDE * SIDE);
  for (let i = 0; i < labels.length; i++) {
    const r = rnd();
    const y = Math.floor(((i % (SIDE * SIDE)) / (SIDE * SIDE)) * 4 + r * 0.9) % 4;
    labels[i] = r < 0.04 ? 255 : y;
  }
  const logits = new Float32Array(N * C * SIDE * SIDE);
  for (let n = 0; n < N; n++)
    for (let k = 0; k < C; k++)
      for (let p = 0; p < SIDE * SIDE; p++) {
        const y = labels[n * SIDE * SIDE + p];
        const lean = (0.4 + step * 0.35) * (1 - n * 0.22);
        logits[(n * C + k) * SIDE * SIDE + p] = (rnd() - 0.5) * 3 + (y === k ? lean : 0);
      }
  return {
    logits: npy('<f4', [N, C, SIDE, SIDE], logits),
    mask: npy('|u1', [N, SIDE, SIDE], labels),
  };
}
async function post(origin, run, step, seed) {
  const b = batch(seed, step);
  const fd = new FormData();
  fd.append('logits', new Blob([b.logits]), 'logits.npy');
  fd.append('mask', new Blob([b.mask]), 'mask.npy');
  fd.append('params', new Blob([JSON.stringify({ class_names: NAMES })], { type: 'application/json' }));
  const r = await fetch(`${origin}/v1/evaluate?run=${run}&step=${step}`, { method: 'POST', body: fd });
  lastAnswer = r.ok ? await r.json() : null;
  return r.status;
}
let lastAnswer = null;

// ---- the browser --------------------------------------------------------------------------
async function launch(viewport = { width: 1400, height: 1000 }) {
  const profile = fs.mkdtempSync(path.join(tmp, 'profile_'));
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport,
    timeout: 30000,
  });
}
async function shot(page, name) {
  const file = path.join(ARTIFACTS, `dashboard-views-${name}.png`);
  try {
    await page.screenshot({ path: file, fullPage: true, timeout: 15000 });
    note(`screenshot ${path.relative(ROOT, file)}`);
  } catch (e) {
    check(`screenshot ${name}`, false, e.message);
  }
}
const sorted = (a, dir = 1) => a.every((v, i) => i === 0 || dir * (v - a[i - 1]) >= 0);
const attrs = (page, sel, name) =>
  page.locator(sel).evaluateAll((els, n) => els.map((e) => e.getAttribute(n)), name);

async function views(server) {
  const { origin } = server;
  const runs = { alpha: 11, beta: 23, 'gamma-small': 37 };
  const codes = [];
  for (const [run, seed] of Object.entries(runs))
    for (let step = 1; step <= (run === 'gamma-small' ? 3 : 6); step++) codes.push(await post(origin, run, step, seed));
  check('seeded 3 runs (15 batches) through POST /v1/evaluate', codes.every((c) => c === 200), codes.join(','));
  // a recorded answer lists its items' figures, and GET /v1/evaluations/{id} keeps them
  const items = lastAnswer && lastAnswer.items;
  const fine = (v) => typeof v === 'number' && v >= 0 && v <= 1;
  check('the answer of a recorded evaluation has per-item figures',
    Array.isArray(items) && items.length === N && items.every((it, i) => it.item === i && fine(it.miou) &&
      fine(it.accuracy) && fine(it.mean_dice) && it.present === 4 && it.iou.length === C && it.iou[ABSENT] === null),
    JSON.stringify(items && items[0]));
  const stored = lastAnswer && (await getJSON(`${origin}/v1/evaluations/${lastAnswer.id}`));
  check('GET /v1/evaluations/{id} has the same items', stored && JSON.stringify(stored.items) === JSON.stringify(items));

  const ctx = await launch();
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.setDefaultTimeout(15000);
  const errors = [],
    foreign = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin + '/') && !u.startsWith('data:')) foreign.push(u);
  });
  try {
    await page.goto(`${origin}/#run=alpha`);
    const drawn = await waitFor(() => page.locator('svg[data-chart="loss"] path.series[data-key="loss.total"][data-points="6"]').count());
    check('the run is drawn (6 steps)', drawn === 1);

    // the run filter
    await page.fill('#run-filter', 'gam');
    const listed = await page.locator('#runs a[data-run]').evaluateAll((as) => as.map((a) => a.dataset.run));
    check('the filter keeps the matching runs (and the one shown)', listed.length === 2 && listed.includes('gamma-small') && listed.includes('alpha'), listed.join(','));
    await page.fill('#run-filter', '');

    // compare two runs
    await page.locator('#runs input.cmp-box[data-run="beta"]').check();
    const two = await waitFor(async () => {
      const r = await attrs(page, 'svg[data-chart="loss"] path.series', 'data-run');
      return r.length === 2 && r.includes('alpha') && r.includes('beta') ? r : null;
    });
    check('compare: the loss chart overlays alpha and beta', !!two, String(two));
    const q2 = await attrs(page, 'svg[data-chart="quality"] path.series', 'data-run');
    check('compare: so does the quality chart', q2.length === 2, q2.join(','));
    const legend = await attrs(page, '#loss-legend button[data-run]', 'data-run');
    check('compare: a legend entry per run', legend.join(',') === 'alpha,beta', legend.join(','));
    // Each run's stroke, once both paths are in the document: a path the chart replaced
    // between the query and the read (a poll or the second run's history arriving) is detached,
    // and a detached element's computed stroke is "" (seen under the TSan build, whose daemon
    // answers slowly enough for the chart to redraw in between).
    const strokes = () =>
      waitFor(async () => {
        const s = Object.fromEntries(
          await page.locator('svg[data-chart="loss"] path.series').evaluateAll((ps) =>
            ps.map((p) => [p.dataset.run, p.isConnected ? getComputedStyle(p).stroke : ''])),
        );
        return s.alpha && s.beta ? s : null;
      }).then((s) => s || {});
    const before = await strokes();
    check('compare: one colour per run', before.alpha && before.beta && before.alpha !== before.beta, JSON.stringify(before));
    check('compare: the URL holds the selection', (await page.evaluate(() => location.hash)).includes('cmp=beta'));
    await shot(page, 'compare');
    await page.reload();
    await waitFor(() => page.locator('svg[data-chart="loss"] path.series[data-run="beta"]').count());
    const after = await strokes();
    check('compare: colours are the same after a reload', after.alpha === before.alpha && after.beta === before.beta, JSON.stringify(after));
    // the metric compared
    await page.selectOption('#quality-key', 'metrics.accuracy');
    const qk = await attrs(page, 'svg[data-chart="quality"] path.series', 'data-key');
    check('compare: the compared metric can be chosen', qk.length === 2 && qk.every((k) => k === 'metrics.accuracy'), qk.join(','));

    // smoothing
    const sel = 'svg[data-chart="quality"] path.series[data-run="alpha"]';
    const raw = await page.locator(sel).getAttribute('d');
    await page.locator('#smooth').evaluate((el) => {
      el.value = '0.8';
      el.dispatchEvent(new Event('input', { bubbles: true }));
    });
    const smoothed = await page.locator(sel).getAttribute('d');
    const faint = await page.locator('svg[data-chart="quality"] path.raw[data-run="alpha"]').getAttribute('d').catch(() => null);
    check('smoothing changes the drawn path', smoothed && smoothed !== raw);
    check('smoothing keeps the raw curve, faint, behind', faint === raw);
    check('smoothing is in the URL', (await page.evaluate(() => location.hash)).includes('smooth=0.8'));
    await shot(page, 'smoothing');

    // zoom: drag across the loss chart, double-click resets
    const catcher = page.locator('svg[data-chart="loss"] rect.catcher');
    await catcher.scrollIntoViewIfNeeded();
    const box = await catcher.boundingBox();
    const ticksBefore = await page.locator('svg[data-chart="loss"] text.tick').allTextContents();
    await page.mouse.move(box.x + box.width * 0.25, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 });
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    const zoomed = await waitFor(async () => (await page.evaluate(() => location.hash)).includes('zoom='), 3000);
    const vis = Number(await page.locator('svg[data-chart="loss"] path.series[data-run="alpha"]').getAttribute('data-visible'));
    const visQ = Number(await page.locator('svg[data-chart="quality"] path.series[data-run="alpha"]').getAttribute('data-visible'));
    check('a drag zooms both charts to a step range', zoomed && vis < 6 && visQ < 6, `visible ${vis}, ${visQ} of 6`);
    const ticksZoomed = await page.locator('svg[data-chart="loss"] text.tick').allTextContents();
    check('the zoomed axis has other ticks', ticksZoomed.join() !== ticksBefore.join(), ticksZoomed.join(','));
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
    const guides = await page.locator('g.hover:not([display="none"]) line.guide').count();
    check('the cursors move in step across the charts', guides >= 2, `${guides} guides`);
    await shot(page, 'zoom');
    const zoomHash = await page.evaluate(() => location.hash);
    await catcher.dblclick({ position: { x: box.width / 2, y: box.height / 2 } });
    const reset = await waitFor(async () => !(await page.evaluate(() => location.hash)).includes('zoom=') &&
      (await page.locator('svg[data-chart="loss"] path.series[data-run="alpha"]').getAttribute('data-visible')) === '6', 3000);
    check('a double-click resets the zoom', reset === true);

    // wall time on the x axis, and back to steps
    await page.selectOption('#x-mode', 'time');
    const timeAxis = await waitFor(async () => (await page.locator('svg[data-chart="loss"] text.axis-label').textContent()).startsWith('time') &&
      (await page.locator('svg[data-chart="loss"] path.series[data-run="alpha"]').getAttribute('data-points')) === '6');
    check('x by wall time redraws the curves on a time axis (and it is in the URL)', timeAxis === true && (await page.evaluate(() => location.hash)).includes('x=time'));
    await page.selectOption('#x-mode', 'step');

    // per-class history
    await page.locator('#class-chips button[data-class="1"]').click();
    await page.locator('#class-chips button[data-class="2"]').click();
    const pcKeys = await waitFor(async () => {
      const k = await attrs(page, 'svg[data-chart="classhist"] path.series', 'data-key');
      return k.length === 4 ? k : null;
    });
    check('per-class: Dice and IoU curves of the two chosen classes', !!pcKeys && ['per_class.dice.1', 'per_class.iou.1', 'per_class.dice.2', 'per_class.iou.2'].every((k) => pcKeys.includes(k)), String(pcKeys));
    const pcPts = await attrs(page, 'svg[data-chart="classhist"] path.series', 'data-points');
    check('per-class: a point per step', pcPts.every((p) => p === '6'), pcPts.join(','));
    const api = await getJSON(`${origin}/v1/runs/alpha/history?key=per_class.iou.1`);
    check('per-class: the API serves per_class.iou.1 for each step', api && api.metrics.length === 6 && api.metrics.every((m) => typeof m.value === 'number'));
    await page.locator('#classhist-card').scrollIntoViewIfNeeded();
    await shot(page, 'per-class-history');

    // the absent class, said out loud
    const absentNote = await page.locator('#absent-note').textContent();
    check('the headline says a class is absent and how seed semantics count it', (await page.locator('#absent-note').isVisible()) && absentNote.includes('sky') && absentNote.includes('Seed semantics') && absentNote.includes('as 0'), absentNote);
    const absentRow = await page.locator(`svg[data-chart="classes"] g.row.absent[data-class="${ABSENT}"] text.absent-note`).textContent().catch(() => '');
    check('the absent class bar is labelled absent', absentRow.includes('absent'), absentRow);

    // the confusion heatmap against the aggregate
    const detail = await getJSON(`${origin}/v1/runs/alpha?confusion_matrix=true`);
    const cm = detail.splits.val.confusion_matrix;
    const cells = await waitFor(async () => {
      const c = await page.locator('svg[data-chart="confusion"] rect.cell').evaluateAll((rs) =>
        rs.map((r) => [Number(r.dataset.row), Number(r.dataset.col), Number(r.dataset.count), Number(r.dataset.share)]));
      return c.length === C * C ? c : null;
    });
    check('confusion: a cell per (truth, prediction)', !!cells, String(cells && cells.length));
    if (cells) {
      check('confusion: the cells hold the aggregate\'s counts', cells.every(([r, c, n]) => cm[r][c] === n));
      const rowOk = [0, 1, 2, 3].every((r) => Math.abs(cells.filter((x) => x[0] === r).reduce((a, x) => a + x[3], 0) - 1) < 1e-4);
      check('confusion: rows are normalised', rowOk);
    }
    const heatLabel = await page.locator(`svg[data-chart="confusion"] g.hrow.absent[data-row="${ABSENT}"] text.cls`).textContent().catch(() => '');
    check('confusion: the absent class row is labelled', heatLabel.includes('sky') && heatLabel.includes('absent'), heatLabel);
    const cell = page.locator('svg[data-chart="confusion"] rect.cell[data-row="1"][data-col="1"]');
    await cell.scrollIntoViewIfNeeded();
    await cell.hover();
    const tip = await waitFor(async () => (await page.locator('#tooltip').isVisible()) && page.locator('#tooltip').textContent(), 3000);
    check('confusion: hovering a cell shows its count', typeof tip === 'string' && tip.includes(cm[1][1].toLocaleString('en-US')), String(tip));
    await page.mouse.move(2, 2);
    await page.locator('#confusion-card').scrollIntoViewIfNeeded();
    await shot(page, 'confusion');

    // the worst items
    const figs = async (name) => (await attrs(page, '#items figure.item', `data-${name}`)).map(Number);
    const mious = await waitFor(async () => {
      const v = await figs('miou');
      return v.length ? v : null;
    });
    const itemsApi = await getJSON(`${origin}/v1/runs/alpha/items?sort=miou&order=asc&limit=8`);
    check('items: the step\'s items are listed, lowest mIoU first', mious && mious.length === Math.min(8, itemsApi.total) && sorted(mious), String(mious));
    check('items: in the items API\'s order', mious && itemsApi.items.map((i) => i.miou).join() === mious.join());
    await page.locator('#items').scrollIntoViewIfNeeded();
    const loaded = await waitFor(() => page.locator('#items img').evaluateAll((imgs) => imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0)));
    check('items: their overlays load', loaded === true);
    await page.locator('#item-sort button[data-sort="accuracy"]').click();
    const accs = await waitFor(async () => {
      const on = await page.locator('#item-sort button.on').getAttribute('data-sort');
      const v = await figs('accuracy');
      return on === 'accuracy' && v.length && sorted(v) && (await page.evaluate(() => location.hash)).includes('isort=accuracy') ? v : null;
    });
    check('items: sorted by the chosen figure (accuracy)', !!accs, String(accs));
    await shot(page, 'items');
    await page.locator('#items figure.item').first().click();
    const big = await waitFor(async () => (await page.locator('#lightbox').isVisible()) &&
      page.locator('#lightbox-img').evaluate((i) => i.complete && i.naturalWidth > 0));
    check('items: a click enlarges the overlay', big === true);
    await shot(page, 'lightbox');
    await page.keyboard.press('Escape');

    // a chosen step
    await page.fill('#inspect-step', '2');
    await page.locator('#inspect-step').press('Enter');
    const at2 = await waitFor(async () => (await page.locator('#confusion-sub').textContent()).includes('step 2') && (await page.locator('#items-sub').textContent()).includes('step 2'));
    const cm2 = (await getJSON(`${origin}/v1/runs/alpha?confusion_matrix=true&step=2`)).splits.val.confusion_matrix;
    const cells2 = await page.locator('svg[data-chart="confusion"] rect.cell').evaluateAll((rs) => rs.map((r) => [Number(r.dataset.row), Number(r.dataset.col), Number(r.dataset.count)]));
    check('inspect step 2: the heatmap and the items are those of step 2', at2 === true && cells2.length === 25 && cells2.every(([r, c, n]) => cm2[r][c] === n));
    check('no console error', errors.length === 0, errors.slice(0, 5).join(' | '));
    check('nothing loaded from outside the daemon', foreign.length === 0, foreign.slice(0, 3).join(' '));

    // the URL restores the view
    const url = page.url().replace(/#.*/, '') + zoomHash.replace('isort=', 'x=') + '&isort=accuracy&classes=1,2&istep=2';
    const page2 = await ctx.newPage();
    await page2.goto(url);
    const restored = await waitFor(async () =>
      (await page2.locator('svg[data-chart="loss"] path.series[data-run="beta"]').count()) === 1 &&
      (await page2.locator('svg[data-chart="classhist"] path.series').count()) === 4 &&
      (await page2.locator('#item-sort button.on').getAttribute('data-sort')) === 'accuracy' &&
      (await page2.locator('#confusion-sub').textContent()).includes('step 2'));
    const z = await page2.locator('svg[data-chart="loss"] path.series[data-run="alpha"]').getAttribute('data-visible');
    check('the URL restores compare, smoothing, zoom, classes, sort and step', restored === true && Number(z) < 6 && (await page2.locator('#smooth').inputValue()) === '0.8', `visible ${z}`);
    await page2.close();

    await page.emulateMedia({ colorScheme: 'dark' });
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, 'dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 390, height: 844 });
    await sleep(400);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check('phone width: no sideways scroll with every view open', overflow <= 0, `${overflow}px too wide`);
    await shot(page, 'phone');
  } catch (e) {
    check('the views scenario ran to its end', false, e.stack || String(e));
    await shot(page, 'failure');
  } finally {
    await ctx.close().catch(() => {});
  }
}

// The first render of runs of SCALE_STEPS points each, timed inside the page.
async function scale() {
  const mock = await startMock(['--long', String(SCALE_STEPS), '--long-runs', String(SCALE_RUNS)]);
  if (!check(`mock with ${SCALE_RUNS} runs of ${SCALE_STEPS} steps starts`, mock !== null)) return;
  const ctx = await launch();
  const page = ctx.pages()[0] || (await ctx.newPage());
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    // three cold first renders, each on a new page (the machine is shared: one can be slow)
    const sel = `svg[data-chart="loss"] path.series[data-key="loss.total"][data-points="${SCALE_STEPS}"]`;
    const firsts = [],
      chartsMs = [];
    let wall = 0;
    for (let k = 0; k < FIRST_RENDER_TRIES; k++) {
      const p = await ctx.newPage();
      p.on('pageerror', (e) => errors.push(e.message));
      const t0 = Date.now();
      await p.goto(`${mock.origin}/#run=long`);
      await waitFor(() => p.locator(sel).count(), 60000);
      wall = Date.now() - t0;
      const perf = await p.evaluate(() => window.__segloss_perf);
      const first = perf.find((x) => x.what === 'render' && x.points >= SCALE_STEPS);
      const charts = perf.find((x) => x.what === 'charts' && x.points >= SCALE_STEPS);
      if (first) firsts.push(first.ms);
      if (charts) chartsMs.push(charts.ms);
      await p.close();
    }
    const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    const fmt = (a) => a.map((v) => v.toFixed(1)).join(', ');
    note(`first render of a run with ${SCALE_STEPS} points: ${fmt(firsts)} ms (median ${firsts.length ? med(firsts).toFixed(1) : '?'}; ` +
      `its line charts ${fmt(chartsMs)} ms); ${wall} ms from navigation with the ${Math.ceil((SCALE_STEPS * 7) / 1000)} history pages`);
    const best = firsts.length === FIRST_RENDER_TRIES ? Math.min(...firsts) : Infinity;
    check(`first render of ${SCALE_STEPS} points under ${FIRST_RENDER_BUDGET_MS} ms (best of ${FIRST_RENDER_TRIES} cold pages)`,
      best < FIRST_RENDER_BUDGET_MS, `${fmt(firsts)} ms`);
    await page.goto(`${mock.origin}/#run=long`);
    await waitFor(() => page.locator(sel).count(), 60000);
    const d = await page.locator(sel).getAttribute('d');
    const segs = (d.match(/[ML]/g) || []).length;
    check('decimated: the path has at most a few points per pixel column', segs < 4 * 1400, `${segs} path points for ${SCALE_STEPS} steps`);
    await page.goto(`${mock.origin}/#run=long&cmp=long-2,long-3&smooth=0.6`);
    await page.reload();
    await waitFor(async () => (await attrs(page, 'svg[data-chart="loss"] path.series', 'data-points')).filter((p) => p === String(SCALE_STEPS)).length === 3, 120000);
    const perf3 = await page.evaluate(() => window.__segloss_perf);
    const three = perf3.find((p) => p.what === 'render' && p.points >= 3 * SCALE_STEPS);
    note(`first render of 3 runs x ${SCALE_STEPS} points compared, smoothed: ${three ? three.ms.toFixed(1) : '?'} ms`);
    check('three long runs compared are drawn', !!three);
    const hover0 = Date.now();
    const catcher = page.locator('svg[data-chart="loss"] rect.catcher');
    const b = await catcher.boundingBox();
    for (let i = 0; i < 20; i++) await page.mouse.move(b.x + (b.width * i) / 20, b.y + b.height / 2);
    note(`20 cursor moves over 3 x ${SCALE_STEPS} points: ${Date.now() - hover0} ms`);
    // The scale: SCALE_RUNS runs of SCALE_STEPS points overlaid, then redrawn when the
    // smoothing changes (decimated per pixel column, so the cost follows the width, not the steps).
    const others = Array.from({ length: SCALE_RUNS - 1 }, (_, i) => `long-${i + 2}`).join(',');
    await page.goto(`${mock.origin}/#run=long&cmp=${others}&smooth=0.6`);
    await page.reload();
    const all = String(SCALE_STEPS);
    await waitFor(async () => (await attrs(page, 'svg[data-chart="loss"] path.series', 'data-points')).filter((p) => p === all).length === SCALE_RUNS, 300000);
    const perfN = await page.evaluate(() => window.__segloss_perf);
    const many = perfN.find((p) => p.what === 'render' && p.points >= SCALE_RUNS * SCALE_STEPS);
    note(`first render of ${SCALE_RUNS} runs x ${SCALE_STEPS} points compared, smoothed: ${many ? many.ms.toFixed(1) : '?'} ms`);
    check(`${SCALE_RUNS} long runs compared are drawn`, !!many);
    const before = (await page.evaluate(() => window.__segloss_perf)).length;
    await page.locator('#smooth').fill('0.9');
    await waitFor(async () => (await page.evaluate(() => window.__segloss_perf)).length > before, 10000);
    // a smoothing change redraws the charts alone (renderCharts: one 'charts' entry)
    const redraw = (await page.evaluate(() => window.__segloss_perf)).slice(before).find((p) => p.what === 'charts');
    note(`redraw of ${SCALE_RUNS} runs x ${SCALE_STEPS} points after a smoothing change: ${redraw ? redraw.ms.toFixed(1) : '?'} ms`);
    check(`the redraw of ${SCALE_RUNS} runs x ${SCALE_STEPS} points takes under ${REDRAW_BUDGET_MS} ms`,
      redraw && redraw.ms < REDRAW_BUDGET_MS, redraw ? `${redraw.ms.toFixed(1)} ms` : 'no render recorded');
    await shot(page, 'scale');
    check('scale: no page error', errors.length === 0, errors.join(' | '));
  } catch (e) {
    check('the scale test ran to its end', false, e.stack || String(e));
  } finally {
    await ctx.close().catch(() => {});
    mock.child.kill('SIGKILL');
  }
}

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  if (!check('chromium is installed', fs.existsSync(CHROMIUM), CHROMIUM)) return finish();
  if (!check('seglossd is built', fs.existsSync(DAEMON), DAEMON)) return finish();
  const d = await startDaemon();
  if (check('seglossd starts on a free port', d !== null)) {
    await views(d);
    d.child.kill('SIGKILL');
  }
  await scale();
  clearTimeout(watchdog);
  finish();
}
main().catch((e) => {
  check('the test ran', false, e.stack || String(e));
  finish();
});
