// dashboard.spec.mjs - browser test of the dashboard at GET / (server/dashboard/), in headless
// Chromium (Debian's /usr/bin/chromium) driven by playwright-core. Run it through
// test_dashboard.sh, which installs playwright-core into build/npm when missing.
//
//   node tests/e2e/dashboard.spec.mjs [--target real|mock|both] [--build DIR]
//
// real: a seglossd ($BUILD/seglossd) started here on a free 127.0.0.1 port with a temporary
//       --data-dir. mock: tests/e2e/dashboard_mock.mjs, the same routes in node with canned
//       values. both (the default): the real daemon, or the mock with a SKIP line while the
//       daemon lacks the runs API; then a seeded mock for what a real run cannot show yet
//       (class names, null values in the curves, many history pages, a long run).
// Each target: the empty state; a POST with run=demo&step=1 appears without a reload; curves
// and bars are drawn with the right counts; tooltips; an overlay loads; step 2 updates the page
// without a reload; polling gets 304s; a second split via the selector; no console error;
// nothing is loaded from elsewhere; then a deleted run and an unreachable daemon are shown.
// Screenshots go to tests/artifacts/.
// Prints one line per check and "N passed, N failed" last.
import { spawn, execFileSync } from 'node:child_process';
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
const TARGET = arg('--target', 'both');
const BUILD = arg('--build', process.env.BUILD || 'build');
const NPM_PREFIX = process.env.NPM_PREFIX || path.join(ROOT, 'build', 'npm');
const DAEMON = path.resolve(ROOT, BUILD, 'seglossd');
const GOLDEN = path.join(ROOT, 'tests', 'golden', 'voc_palette_weighted');
const ARTIFACTS = path.join(ROOT, 'tests', 'artifacts');
const CHROMIUM = '/usr/bin/chromium';
const WATCHDOG_MS = 240000;
const POLL_WAIT_MS = 12000; // the page polls every 3 s; allow a few polls

const require = createRequire(path.join(NPM_PREFIX, 'node_modules', '.'));
const { chromium } = require('playwright-core');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'segloss_dash_'));
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
function note(text) {
  console.log(`#    ${text}`);
}

function cleanup() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch (_) {
      /* gone */
    }
  }
  children.clear();
  try {
    fs.rmSync(tmp, { recursive: true, force: true });
  } catch (_) {
    /* best effort */
  }
}
function finish() {
  cleanup();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
const watchdog = setTimeout(() => {
  check('finished within the watchdog', false, `${WATCHDOG_MS} ms`);
  finish();
}, WATCHDOG_MS);
process.on('SIGTERM', () => {
  check('not interrupted', false, 'SIGTERM');
  finish();
});
process.on('SIGINT', () => {
  check('not interrupted', false, 'SIGINT');
  finish();
});
process.on('exit', () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch (_) {
      /* gone */
    }
  }
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(fn, ms = POLL_WAIT_MS, every = 150) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
    } catch (e) {
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
async function httpStatus(url, init) {
  try {
    return (await fetch(url, { ...init, signal: AbortSignal.timeout(5000) })).status;
  } catch (_) {
    return 0;
  }
}
async function getJSON(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return r.ok ? r.json() : null;
}
function curl(args) {
  try {
    return execFileSync(
      'curl',
      ['-sS', '--max-time', '30', '-o', '/dev/null', '-w', '%{http_code}', ...args],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    ).trim();
  } catch (e) {
    return `curl failed: ${String(e.stderr || e.message).trim()}`;
  }
}

// ---- the servers under test ----------------------------------------------------------------
async function startDaemon() {
  const dataDir = fs.mkdtempSync(path.join(tmp, 'data_'));
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const log = fs.openSync(path.join(tmp, `seglossd_${port}.log`), 'w');
    const child = track(
      spawn(
        DAEMON,
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--data-dir',
          dataDir,
          '--log-format',
          'text',
          '--shutdown-timeout',
          '2',
        ],
        { stdio: ['ignore', log, log] },
      ),
    );
    const origin = `http://127.0.0.1:${port}`;
    const up = await waitFor(
      async () => child.exitCode === null && (await httpStatus(`${origin}/livez`)) === 200,
      15000,
      100,
    );
    if (up) return { origin, child, log: path.join(tmp, `seglossd_${port}.log`) };
    child.kill('SIGKILL');
  }
  return null;
}
async function startMock(seed) {
  const child = track(
    spawn(
      process.execPath,
      [
        path.join(HERE, 'dashboard_mock.mjs'),
        '--port',
        '0',
        ...(seed ? ['--seed', '--page', '50'] : []),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    ),
  );
  const port = await new Promise((resolve) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/listening (\d+)/);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', () => resolve(0));
    setTimeout(() => resolve(0), 10000);
  });
  return port ? { origin: `http://127.0.0.1:${port}`, child } : null;
}
function post(origin, step, split) {
  return curl([
    '-F',
    `logits=@${GOLDEN}/logits.npy`,
    '-F',
    `mask=@${GOLDEN}/mask_0.png`,
    '-F',
    `mask=@${GOLDEN}/mask_1.png`,
    `${origin}/v1/evaluate?run=demo&step=${step}${split ? `&split=${split}` : ''}`,
  ]);
}

// ---- the browser --------------------------------------------------------------------------
async function launch() {
  const profile = fs.mkdtempSync(path.join(tmp, 'profile_'));
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1400, height: 900 },
    timeout: 30000,
  });
}
async function shot(page, name) {
  const file = path.join(ARTIFACTS, `dashboard-${name}.png`);
  try {
    await page.screenshot({ path: file, fullPage: true, timeout: 15000 });
    note(`screenshot ${path.relative(ROOT, file)}`);
  } catch (e) {
    check(`screenshot ${name}`, false, e.message);
  }
}
const finite = (a) =>
  Array.isArray(a) ? a.filter((v) => typeof v === 'number' && Number.isFinite(v)).length : 0;

// One target: the whole story, from no runs to an unreachable daemon.
async function scenario(label, server, kill) {
  const { origin } = server;
  const t = (name) => `${label}: ${name}`;
  const ctx = await launch();
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.setDefaultTimeout(15000);
  const errors = [],
    foreign = [],
    statuses = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin + '/') && !u.startsWith('data:')) foreign.push(u);
  });
  page.on('response', (r) => {
    if (r.url().includes('/v1/')) statuses.push(r.status());
  });
  try {
    await page.goto(origin + '/', { waitUntil: 'load' });
    check(t('GET / serves the dashboard'), (await page.title()) === 'segloss', await page.title());
    const empty = await waitFor(() => page.locator('#empty').isVisible());
    check(
      t('no runs yet: the empty state with a curl example'),
      empty &&
        (await page.locator('#curl-example').textContent()).includes(
          `${origin}/v1/evaluate?run=demo`,
        ),
    );
    await shot(page, `${label}-empty`);
    await page.evaluate(() => {
      window.__segloss_no_reload = 'still here';
    });

    const s1 = post(origin, 1);
    check(t('POST run=demo&step=1 answers 200'), s1 === '200', s1);
    const listed = await waitFor(() => page.locator('#runs a[data-run="demo"]').count());
    check(t('the run is listed (without a reload)'), listed === 1, `found ${listed}`);
    const drawn = await waitFor(() =>
      page.locator('path.series[data-key="loss.total"][data-points="1"]').count(),
    );
    check(t('the curves are drawn'), drawn === 1);
    const series = await page
      .locator('path.series')
      .evaluateAll((ps) => ps.map((p) => [p.dataset.key, Number(p.dataset.points)]));
    const keys = Object.fromEntries(series);
    check(
      t('7 curves: ce, focal, dice, total, mIoU, mean Dice, accuracy'),
      series.length === 7 &&
        ['loss.ce', 'loss.focal', 'loss.dice', 'loss.total', 'metrics.miou'].every(
          (k) => keys[k] === 1,
        ),
      JSON.stringify(series),
    );
    const dots = await page.locator('circle.pt').count();
    check(t('a single step shows as dots'), dots >= 5, `${dots} dots`);
    const xticks = await page.locator('svg[data-chart="loss"] text.tick').count();
    check(t('the axes have tick labels'), xticks >= 4, `${xticks}`);

    const detail = await getJSON(`${origin}/v1/runs/demo`);
    const val =
      detail &&
      detail.splits &&
      (detail.splits.val || (Array.isArray(detail.splits) ? detail.splits[0] : null));
    const pc = (val && (val.per_class || (val.result && val.result.per_class))) || {};
    // a bar per class with a value, except classes with no ground-truth pixels (support 0)
    const present = (a) =>
      (a || []).filter((v, i) => !(Array.isArray(pc.support) && pc.support[i] === 0));
    const wantDice = finite(present(pc.dice)),
      wantIou = finite(present(pc.iou));
    const diceBars = await page.locator('rect.bar.dice').count();
    const iouBars = await page.locator('rect.bar.iou').count();
    check(
      t('per-class bars: one Dice and one IoU per class with a value'),
      wantDice > 0 && diceBars === wantDice && iouBars === wantIou,
      `dice ${diceBars}/${wantDice} iou ${iouBars}/${wantIou}`,
    );
    const rows = await page.locator('svg[data-chart="classes"] g.row').count();
    check(
      t('a labelled row per class'),
      rows === Math.max((pc.dice || []).length, (pc.iou || []).length),
      `${rows} rows`,
    );
    check(t('the KPI shows step 1'), (await page.locator('#kpi-step').textContent()) === '1');
    check(
      t('the split selector shows val'),
      (await page.locator('#splits button.on').textContent()) === 'val',
    );

    await page.locator('#overlays').scrollIntoViewIfNeeded();
    const ovl = await waitFor(() =>
      page
        .locator('#overlays img')
        .evaluateAll(
          (imgs) => imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0),
        ),
    );
    check(
      t('an overlay <img> loads (naturalWidth > 0)'),
      ovl === true,
      String(
        await page
          .locator('#overlays img')
          .evaluateAll((imgs) => imgs.map((i) => `${i.src} ${i.naturalWidth}`)),
      ),
    );

    await page.locator('svg[data-chart="loss"] rect.catcher').scrollIntoViewIfNeeded();
    const box = await page.locator('svg[data-chart="loss"] rect.catcher').boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const tip = await waitFor(
      async () =>
        (await page.locator('#tooltip').isVisible()) && page.locator('#tooltip').textContent(),
      3000,
    );
    check(
      t('hovering a curve shows a tooltip with the values'),
      typeof tip === 'string' && tip.includes('step 1') && tip.includes('total'),
      String(tip),
    );
    await page.locator('svg[data-chart="classes"] g.row').first().scrollIntoViewIfNeeded();
    const row = await page.locator('svg[data-chart="classes"] g.row').first().boundingBox();
    await page.mouse.move(row.x + row.width / 2, row.y + row.height / 2);
    const tip2 = await waitFor(async () => page.locator('#tooltip').textContent(), 3000);
    check(
      t('hovering a bar shows a tooltip'),
      typeof tip2 === 'string' && tip2.includes('Dice') && tip2.includes('IoU'),
      String(tip2),
    );
    await shot(page, `${label}-step1`);
    await page.mouse.move(5, 5);

    const s2 = post(origin, 2);
    check(t('POST run=demo&step=2 answers 200'), s2 === '200', s2);
    const updated = await waitFor(
      async () =>
        (await page.locator('#kpi-step').textContent()) === '2' &&
        (await page.locator('path.series[data-key="loss.total"][data-points="2"]').count()) === 1,
    );
    check(
      t('step 2 appears without a reload'),
      updated === true && (await page.evaluate(() => window.__segloss_no_reload)) === 'still here',
    );
    const before = statuses.filter((s) => s === 304).length;
    await sleep(3600);
    const after = statuses.filter((s) => s === 304).length;
    check(
      t('polling revalidates with If-None-Match (304s)'),
      after > before,
      `${before} -> ${after} of ${statuses.length}`,
    );
    // a second split: the selector offers it, a click shows its curves and the hash keeps it
    const s3 = post(origin, 2, 'train');
    check(t('POST run=demo&step=2&split=train answers 200'), s3 === '200', s3);
    const offered = await waitFor(() => page.locator('#splits button[data-split="train"]').count());
    check(t('the split selector offers train'), offered === 1);
    if (offered === 1) {
      await page.locator('#splits button[data-split="train"]').click();
      const train = await waitFor(
        async () =>
          (await page.locator('#splits button.on').textContent()) === 'train' &&
          (await page.locator('path.series[data-key="loss.total"][data-points="1"]').count()) ===
            1 &&
          (await page.evaluate(() => location.hash)).includes('split=train'),
      );
      check(t('choosing train draws its curves and keeps it in the hash'), train === true);
      await page.locator('#splits button[data-split="val"]').click();
      const back = await waitFor(
        async () =>
          (await page.locator('path.series[data-key="loss.total"][data-points="2"]').count()) === 1,
      );
      check(t('back to val'), back === true);
    }
    check(t('no console error'), errors.length === 0, errors.slice(0, 5).join(' | '));
    check(
      t('nothing loaded from outside the daemon'),
      foreign.length === 0,
      foreign.slice(0, 5).join(' '),
    );

    await page.locator('svg[data-chart="loss"] rect.catcher').scrollIntoViewIfNeeded();
    const lossBox = await page.locator('svg[data-chart="loss"] rect.catcher').boundingBox();
    await page.mouse.move(lossBox.x + lossBox.width - 2, lossBox.y + lossBox.height / 2);
    await shot(page, `${label}-step2`);
    await page.mouse.move(5, 5);
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot(page, `${label}-dark`);
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 390, height: 844 });
    await sleep(300);
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - window.innerWidth,
    );
    check(t('a phone-width page has no sideways scroll'), overflow <= 0, `${overflow}px too wide`);
    await shot(page, `${label}-phone`);
    await page.setViewportSize({ width: 1400, height: 900 });

    // A deleted run (the console may now show the 404s of requests in flight: not checked).
    const del = await httpStatus(`${origin}/v1/runs/demo`, { method: 'DELETE' });
    if (del >= 200 && del < 300) {
      const gone = await waitFor(
        async () =>
          (await page.locator('#runs a[data-run="demo"]').count()) === 0 &&
          page.locator('#empty').isVisible(),
      );
      check(t('a deleted run leaves the page (empty state again)'), gone === true);
    } else {
      note(`${label}: skip the deleted-run check: DELETE /v1/runs/demo answered ${del}`);
    }
    // An unreachable daemon.
    kill();
    const banner = await waitFor(
      async () =>
        (await page.locator('#banner').isVisible()) &&
        (await page.locator('#banner').textContent()).includes("Can't reach"),
    );
    check(t('an unreachable daemon shows a banner'), banner === true);
    await shot(page, `${label}-offline`);
  } catch (e) {
    check(t('the scenario ran to its end'), false, e.stack || String(e));
    await shot(page, `${label}-failure`);
  } finally {
    await ctx.close().catch(() => {});
  }
}

// A long run with class names, on the seeded mock: names on the bars, two splits, gaps.
async function seeded() {
  const server = await startMock(true);
  if (!check('mock (seeded) starts', server !== null)) return;
  const ctx = await launch();
  const page = ctx.pages()[0] || (await ctx.newPage());
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  try {
    await page.goto(`${server.origin}/#run=deeplabv3-r50&split=val`);
    await waitFor(() => page.locator('path.series[data-key="loss.total"]').count());
    const pts = await waitFor(() =>
      page.locator('path.series[data-key="loss.total"]').getAttribute('data-points'),
    );
    check('mock (seeded): 48 steps read over 7 history pages', pts === '48', `${pts} points`);
    const names = await page.locator('svg[data-chart="classes"] text.cls').allTextContents();
    check(
      'mock (seeded): bars carry the class names',
      names.length === 21 && names[0] === 'background' && names[20] === 'tvmonitor',
      names.slice(0, 3).join(','),
    );
    const miou = await page.locator('path.series[data-key="metrics.miou"]').getAttribute('d');
    check(
      'mock (seeded): a null value is a gap in the curve',
      (miou.match(/M/g) || []).length === 2,
      `${(miou.match(/M/g) || []).length} segments`,
    );
    await page.locator('#splits button[data-split="train"]').click();
    const hash = await waitFor(
      async () =>
        (await page.evaluate(() => location.hash)).includes('split=train') &&
        (await page.locator('#splits button.on').textContent()) === 'train',
      5000,
    );
    check(
      'mock (seeded): the split selector switches and is remembered in the hash',
      hash === true,
    );
    await page.locator('#class-sort button[data-sort="worst"]').click();
    const first = await page
      .locator('svg[data-chart="classes"] g.row rect.bar.dice')
      .first()
      .getAttribute('data-value');
    const all = await page
      .locator('svg[data-chart="classes"] rect.bar.dice')
      .evaluateAll((r) => r.map((x) => Number(x.dataset.value)));
    check(
      'mock (seeded): "worst first" puts the lowest Dice on top',
      Number(first) === Math.min(...all),
    );
    await page.locator('#loss-legend button[data-key="loss.ce"]').click();
    const hidden = await page
      .locator('svg[data-chart="loss"] path.series')
      .evaluateAll((p) => p.map((x) => x.dataset.key));
    check(
      'mock (seeded): a click on a legend entry hides its curve',
      hidden.length === 3 && !hidden.includes('loss.ce'),
      hidden.join(','),
    );
    await page.locator('#loss-legend button[data-key="loss.ce"]').click();
    await page.locator('#loss-log').check();
    const logTicks = await page.locator('svg[data-chart="loss"] text.tick').allTextContents();
    check(
      'mock (seeded): the log toggle redraws the loss axis',
      logTicks.length >= 3 && !logTicks.includes('0'),
      logTicks.join(','),
    );
    await page.locator('#loss-log').uncheck();
    await page.locator('#class-sort button[data-sort="index"]').click();
    await page.locator('#splits button[data-split="val"]').click();
    await sleep(500);
    await page.locator('svg[data-chart="quality"] rect.catcher').scrollIntoViewIfNeeded();
    const box = await page.locator('svg[data-chart="quality"] rect.catcher').boundingBox();
    await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2);
    await shot(page, 'mock-seeded');
    await page.mouse.move(5, 5);
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot(page, 'mock-seeded-dark');
    await page.goto(`${server.origin}/#run=no-such-run`);
    const notice = await waitFor(
      async () =>
        (await page.locator('#notice').isVisible()) &&
        (await page.locator('#run-title').textContent()) !== '',
      6000,
    );
    check(
      'mock (seeded): an unknown run in the link says so and shows another run',
      notice === true,
    );
    check('mock (seeded): no console error', errors.length === 0, errors.slice(0, 5).join(' | '));
  } catch (e) {
    check('mock (seeded): ran to its end', false, e.stack || String(e));
  } finally {
    await ctx.close().catch(() => {});
    server.child.kill('SIGKILL');
  }
}

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  if (!fs.existsSync(CHROMIUM)) {
    check('chromium is installed', false, `${CHROMIUM} missing: run scripts/install-deps.sh`);
    return finish();
  }
  const mockScenario = async () => {
    const mock = await startMock(false);
    if (check('mock starts', mock !== null))
      await scenario('mock', mock, () => mock.child.kill('SIGKILL'));
  };
  if (TARGET === 'mock') await mockScenario();
  if (TARGET === 'real' || TARGET === 'both') {
    if (!check('seglossd is built', fs.existsSync(DAEMON), `${DAEMON} missing: make`))
      return finish();
    const d = await startDaemon();
    if (!check('seglossd starts on a free port', d !== null)) return finish();
    const runs = await httpStatus(`${d.origin}/v1/runs`);
    const index = await fetch(`${d.origin}/`)
      .then((r) => r.text())
      .catch(() => '');
    if (runs !== 200 || !index.includes('/app.js')) {
      const serves = index.includes('/app.js') ? 'serves' : 'does not serve';
      const why = `GET /v1/runs answered ${runs}, GET / ${serves} the dashboard`;
      d.child.kill('SIGKILL');
      if (TARGET === 'real') {
        check('seglossd serves the runs API and the dashboard', false, why);
      } else {
        note(`SKIP the real-daemon checks: ${why}; the same checks run on the mock instead`);
        await mockScenario();
      }
    } else {
      await scenario('seglossd', d, () => d.child.kill('SIGKILL'));
    }
  }
  // What a real run cannot show yet: class names, null values, many pages, a long run.
  if (TARGET === 'mock' || TARGET === 'both') await seeded();
  clearTimeout(watchdog);
  finish();
}

main().catch((e) => {
  check('the test ran', false, e.stack || String(e));
  finish();
});
