// The dashboard behind --token-file, in headless Chromium (playwright-core): run by
// test_dashboard_auth.py, which starts the daemon. Without credentials the page is 401 with a
// Basic challenge (the browser's login prompt); with the browser's credentials (user name
// anything, password a read-only token) the page loads and its own fetches of /v1/* carry the
// same credentials, so the recorded run is listed and drawn. Prints one JSON object.
//   node dashboard_auth.mjs --url http://127.0.0.1:PORT --token TOKEN --run RUN
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const arg = (name) => process.argv[process.argv.indexOf(name) + 1];
const NPM_PREFIX = process.env.NPM_PREFIX || path.resolve('build', 'npm');
const require = createRequire(path.join(NPM_PREFIX, 'node_modules', '.'));
const { chromium } = require('playwright-core');

const url = arg('--url');
const out = {};
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
  timeout: 30000,
});
try {
  // Headless Chromium cancels a login prompt (ERR_INVALID_AUTH_CREDENTIALS), so the answer a
  // browser without credentials gets is read through the context's request API.
  const anon = await browser.newContext();
  const r1 = await anon.request.get(url + '/', { maxRedirects: 0 });
  out.anonymous_status = r1.status();
  out.anonymous_challenge = r1.headers()['www-authenticate'] || '';
  await anon.close();

  const ctx = await browser.newContext({
    httpCredentials: { username: 'dashboard', password: arg('--token') },
  });
  const page = await ctx.newPage();
  const api = [];
  page.on('response', (r) => {
    if (r.url().includes('/v1/')) api.push(r.status());
  });
  const r2 = await page.goto(url + '/', { waitUntil: 'load' });
  out.page_status = r2.status();
  const sel = `#runs a[data-run="${arg('--run')}"]`;
  try {
    await page.waitForSelector(sel, { timeout: 15000 });
    out.run_listed = true;
  } catch (e) {
    out.run_listed = false;
  }
  out.api_statuses = [...new Set(api)];
  await ctx.close();
} catch (e) {
  out.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
