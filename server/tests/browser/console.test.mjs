// The manager's console in a real browser (issue #23, point 6). Run by run.sh, which
// starts `swt demo` and sets SWT_URL, SWT_SHOTS and CHROMIUM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const BASE = process.env.SWT_URL ?? 'http://127.0.0.1:8080';
const SHOTS = process.env.SWT_SHOTS ?? 'console-screenshots';
const AXE = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');
const LOGIN = {
  picker: 'demo-picker-2026',
  manager: 'demo-manager-2026',
  admin: 'demo-admin-2026',
};

let browser;
mkdirSync(SHOTS, { recursive: true });

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
});

after(async () => {
  await browser?.close();
});

/** A signed-in page. axe is injected by the test (CDP), not by the page: the console's
 * CSP allows no inline script, so the context bypasses it for the checker only. */
async function signedIn(user) {
  const context = await browser.newContext({ bypassCSP: true, acceptDownloads: true });
  const page = await context.newPage();
  await page.goto(`${BASE}/login`);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(LOGIN[user]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState('domcontentloaded');
  return { context, page };
}

const checked = [];

/** Screenshot and accessibility check of the page shown: no serious or critical axe
 * violation. */
async function look(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
  await page.evaluate(AXE);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ['violations'] }),
  );
  const bad = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
  checked.push(name);
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
    [],
    `accessibility of ${name}`,
  );
}

test('a picker is refused', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/login`);
  await look(page, 'login');
  await page.getByLabel('User name').fill('picker');
  await page.getByLabel('Password').fill(LOGIN.picker);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('The console is for managers and administrators').waitFor();
  const cookies = await context.cookies();
  assert.equal(cookies.find((c) => c.name === 'swt_session'), undefined, 'no session');
  const res = await page.goto(`${BASE}/`);
  assert.match(page.url(), /\/login\?next=/, 'still signed out');
  assert.equal(res.status(), 200);
  await context.close();
});

test('the session cookies are out of reach of script, and forms need their token', async () => {
  const { context, page } = await signedIn('manager');
  const cookies = await context.cookies();
  for (const name of ['swt_session', 'swt_refresh', 'swt_csrf']) {
    const c = cookies.find((x) => x.name === name);
    assert.ok(c, `${name} set`);
    assert.equal(c.httpOnly, true, `${name} HttpOnly`);
    assert.notEqual(c.sameSite, 'None', `${name} SameSite`);
  }
  assert.equal(await page.evaluate(() => document.cookie), '', 'script sees no cookie');
  // A post with the browser's cookies but without the form's token changes nothing.
  const forged = await page.request.post(`${BASE}/devices/anything/disable`, {
    form: { note: 'x' },
    maxRedirects: 0,
  });
  assert.equal(forged.status(), 403);
  // The same from another origin, token and all.
  const csrf = cookies.find((x) => x.name === 'swt_csrf').value;
  const cross = await page.request.post(`${BASE}/logout`, {
    form: { csrf },
    headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
    maxRedirects: 0,
  });
  assert.equal(cross.status(), 403);
  const headers = (await page.request.get(`${BASE}/`)).headers();
  assert.match(headers['content-security-policy'], /default-src 'none'/);
  assert.equal(headers['x-frame-options'], 'DENY');
  await context.close();
});

test('a manager moves through every page', async () => {
  const { context, page } = await signedIn('manager');
  assert.equal(new URL(page.url()).pathname, '/');
  await look(page, 'overview');
  for (const [label, name] of [
    ['Stock', 'stock'],
    ['Exceptions', 'exceptions'],
    ['Returns', 'returns'],
    ['Tasks', 'tasks'],
    ['Devices', 'devices'],
    ['Integrations', 'integrations'],
  ]) {
    await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: label }).click();
    await page.waitForLoadState('domcontentloaded');
    assert.equal(await page.locator('a[aria-current="page"]').first().textContent(), label);
    await look(page, name);
  }
  // A returns verdict and the LMS exchanges behind it.
  await page.goto(`${BASE}/returns?state=quarantined`);
  await page.locator('tbody tr a').first().click();
  await page.getByRole('heading', { name: /Exchanges with the responder/ }).waitFor();
  await look(page, 'return-detail');
  // The search box with something that names nothing.
  await page.getByRole('searchbox').fill('nothing-like-this');
  await page.getByRole('searchbox').press('Enter');
  await page.getByText('Nothing matches').waitFor();
  await look(page, 'search-nothing');
  await context.close();
});

test('a manager finds a scanned pack, the carton it left in, and a recalled lot', async () => {
  const { context, page } = await signedIn('manager');
  // What a keyboard-wedge scanner types for a pack's DataMatrix: symbology identifier,
  // GTIN, expiry, lot, group separator, serial (demo: shipped with order SO-778101).
  const search = page.getByRole('searchbox');
  await search.fill(']d201003615002310121728033110AMX2406A\u001d211000003');
  await search.press('Enter');
  await page.waitForURL(/\/units\/sgtin:00361500231012:1000003$/);
  await page.getByRole('heading', { name: /serial 1000003/ }).waitFor();
  await look(page, 'pack');
  // The carton it was packed into, and that carton's tree.
  await page.locator('dt:text-is("Inside") + dd a').click();
  await page.waitForURL(/\/units\/sscc:/);
  await look(page, 'carton');
  await page.getByRole('link', { name: 'Contents' }).click();
  await page.waitForURL(/\/containers\//);
  await page.getByRole('cell', { name: /1000003/ }).waitFor();
  await look(page, 'container-tree');
  // Recall impact of the recalled lot, typed as a manager would.
  await search.fill('AMX2311R');
  await search.press('Enter');
  await page.waitForURL(/\/lots\/00361500231012\/AMX2311R$/);
  await page.getByText('recalled', { exact: true }).first().waitFor();
  // Shipped packs name the customer they went to (from the shipping task's header).
  await page.getByRole('cell', { name: /\(GLN \d{13}\)$/ }).first().waitFor();
  await look(page, 'recall-impact');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'CSV' }).click(),
  ]);
  const csv = readFileSync(await download.path(), 'utf8').split('\n');
  assert.match(csv[0], /^event_time,objects,biz_step,disposition,where,business_transactions,source,destination,event_id/);
  assert.ok(csv.length > 10, `a line per event of the lot: ${csv.length}`);
  assert.ok(csv.slice(1).filter((l) => l).every((l) => l.includes('ni:///sha-256;')));
  await page.getByRole('link', { name: 'Trace report' }).click();
  await page.getByRole('heading', { name: /Transaction history/ }).waitFor();
  await look(page, 'recall-report');
  await context.close();
});

test('a manager assigns and resolves an exception', async () => {
  const { context, page } = await signedIn('manager');
  await page.goto(`${BASE}/exceptions`);
  const card = page.locator('li.card').filter({ has: page.locator('form[action$="/resolve"]') }).first();
  const id = await card.getAttribute('id');
  assert.ok(id);
  await card.getByLabel('Assign to').selectOption({ label: 'Demo manager' });
  await card.getByRole('button', { name: 'Assign' }).click();
  await page.getByRole('status').getByText('Assignment saved').waitFor();
  const again = page.locator(`li#${id}`);
  await again.getByText(/^Assigned to Demo manager/).waitFor();
  await again.getByLabel('What was done').fill('checked the shelf: the pack is there, count corrected');
  await again.getByRole('button', { name: 'Resolve' }).click();
  await page.getByRole('status').getByText('Exception resolved').waitFor();
  assert.equal(await page.locator(`li#${id}`).count(), 0, 'no longer in the open queue');
  await page.goto(`${BASE}/exceptions?state=resolved`);
  await page.locator(`li#${id}`).getByText('count corrected').waitFor();
  await look(page, 'exceptions-resolved');
  await context.close();
});

test('an admin disables a scanner', async () => {
  const { context, page } = await signedIn('admin');
  await page.goto(`${BASE}/devices`);
  const button = page.getByRole('button', { name: /^Disable / }).first();
  const label = await button.getAttribute('aria-label');
  await button.click();
  await page.getByRole('status').getByText('is disabled').waitFor();
  assert.ok(label);
  const row = page.getByRole('row').filter({ hasText: label.replace('Disable ', '') });
  await row.getByText('disabled').waitFor();
  await look(page, 'devices-admin');
  await page.goto(`${BASE}/admin`);
  await look(page, 'admin');
  await context.close();
});

test('every page was checked', () => {
  assert.ok(checked.length >= 17, `pages checked: ${checked.join(', ')}`);
});
