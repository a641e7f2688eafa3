// The submission pipeline from the browser: submit page, resumable upload, the
// submission followed live until scored, the leaderboard updating itself, API tokens
// on the profile and workers in the organizer console.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { useServerAndBrowser, openHydrated, register, logIn, root, screenshots, ORGANIZER } from '../support.mjs';

const grace = { email: 'grace@e2e.test', handle: 'grace', password: 'compiler-pioneer' };
const checkpoint = path.join(root, 'demo/checkpoints/p1-ada-first');
const checkpointFiles = ['config.json', 'model.safetensors'].map((f) => path.join(checkpoint, f));

// The built-in CPU worker scores phase 1 against the demo's held-out text.
const env = useServerAndBrowser({ heldOutPhases: [1] });

// Counts full page loads of a tab after this call (client-side updates do not count).
function countNavigations(page) {
  const counter = { loads: 0 };
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) counter.loads += 1;
  });
  return counter;
}

test('a visitor opening the submit page is sent to log in and back', async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  await page.goto(`${env.server.url}/phases/1/submit`);
  assert.match(page.url(), /\/login\?next=\/phases\/1\/submit$/);
  const phase = await openHydrated(context, `${env.server.url}/phases/1`);
  assert.equal(await phase.locator('.cta a.button').innerText(), 'Log in to submit');
  await context.close();
});

test('upload a checkpoint through the page, watch it get scored live, see it on the leaderboard', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 } });
  await register(context, env.server.url, grace);

  // A second tab on the phase page, to see the leaderboard update by itself.
  const board = await openHydrated(context, `${env.server.url}/phases/1`);
  assert.match(await board.locator('.phase-grid .empty').first().innerText(), /No scored submissions yet/);
  const boardLoads = countNavigations(board);

  const page = await openHydrated(context, `${env.server.url}/phases/1`);
  await Promise.all([page.waitForURL('**/phases/1/submit'), page.click('.cta a:has-text("Submit a checkpoint")')]);
  await page.waitForSelector('#upload-form');
  await page.waitForSelector('html[data-upload-ready]');
  assert.match(await page.locator('.quota').innerText(), /10 of 10 left today/);
  assert.match(await page.locator('.rules').innerText(), /Parameters\s+at most 100K/);
  await page.screenshot({ path: path.join(screenshots, 'submit.png'), fullPage: true });

  // Refused in the page, before any byte is sent: a pickle file.
  await page.setInputFiles('#upload-files', [
    { name: 'config.json', mimeType: 'application/json', buffer: readFileSync(checkpointFiles[0]) },
    { name: 'pytorch_model.bin', mimeType: 'application/octet-stream', buffer: Buffer.from('not really a pickle') },
  ]);
  assert.match(await page.locator('#upload-message').innerText(), /pytorch_model\.bin is a pickle file/);
  assert.equal(await page.locator('#upload-start').isDisabled(), true);
  await page.screenshot({ path: path.join(screenshots, 'submit-refused.png'), fullPage: true });

  // Small chunks, and the connection drops on the second one: the page asks the
  // server what it holds and continues from there.
  await page.evaluate(() => {
    document.getElementById('upload-form').dataset.chunkBytes = String(32 * 1024);
  });
  let patches = 0;
  await page.route('**/api/uploads/*/files/*', (route) => {
    patches += 1;
    return patches === 2 ? route.abort('connectionreset') : route.continue();
  });
  await page.setInputFiles('#upload-files', checkpointFiles);
  assert.equal(await page.locator('#upload-start').isDisabled(), false);
  await page.click('#upload-start');
  await page.waitForSelector('.upload-message.warn', { timeout: 10_000 });
  await page.screenshot({ path: path.join(screenshots, 'submit-retrying.png'), fullPage: true });
  await page.waitForURL(/\/submissions\/\d+$/, { timeout: 60_000 });
  // config.json in one PATCH, 117 KB of weights in four of 32 KiB, and the one cut off.
  assert.equal(patches, 6);

  await page.waitForSelector('body[data-hydrated]', { timeout: 30_000 });
  const loads = countNavigations(page);
  const badge = page.locator('.title-row .badge[data-state]');
  const first = await badge.getAttribute('data-state');
  await page.screenshot({ path: path.join(screenshots, `submission-${first}.png`), fullPage: true });
  await page.waitForSelector('.title-row .badge[data-state="scored"]', { timeout: 120_000 });
  assert.equal(loads.loads, 0, 'the submission page updated without a reload');
  const details = await page.locator('.panel .rules-list').innerText();
  assert.match(details, /Loss \(public part\)\s+\d+\.\d{4}/);
  assert.match(details, /Parameters\s+\d/);
  assert.match(details, /Files SHA-256\s+[0-9a-f]{64}/);
  assert.equal(await page.locator('.pipeline .step.done').count(), 4);
  await page.screenshot({ path: path.join(screenshots, 'submission-scored.png'), fullPage: true });

  // The phase page that was open all along shows grace, without a reload.
  await board.waitForSelector('table.leaderboard a:has-text("grace")', { timeout: 30_000 });
  assert.equal(boardLoads.loads, 0, 'the leaderboard updated without a reload');
  assert.match(await board.locator('table.leaderboard tbody tr').first().innerText(), /1\s+grace/);
  await board.screenshot({ path: path.join(screenshots, 'leaderboard-live.png'), fullPage: true });
  // The phase's chart counts the scored submission.
  const chart = page.locator('figure.chart');
  await page.goto(`${env.server.url}/phases/1`);
  assert.match(await chart.locator('.count.total').textContent(), /^1 scored$/);
  assert.match(await chart.locator('figcaption').innerText(), /1 record, from \d\.\d{4} to \d\.\d{4}; 1 submission scored so far/);
  await chart.screenshot({ path: path.join(screenshots, 'phase-chart.png') });

  // The home page's scaling curve has one point per phase with a best loss: phase 1.
  const home = await openHydrated(context, env.server.url);
  const phases = await (await fetch(`${env.server.url}/api/phases`)).json();
  const scored = phases.filter((p) => p.best_loss !== null).map((p) => String(p.number));
  assert.deepEqual(scored, ['1']);
  const points = home.locator('figure.scaling-chart .scaling-point');
  assert.deepEqual(await points.evaluateAll((gs) => gs.map((g) => g.dataset.phase)), scored);
  assert.equal(await home.locator('figure.scaling-chart g.cap').count(), 7);
  await home.locator('figure.scaling-chart').screenshot({ path: path.join(screenshots, 'scaling-chart.png') });

  // The quota went down by one.
  const again = await openHydrated(context, `${env.server.url}/phases/1/submit`);
  assert.match(await again.locator('.quota').innerText(), /9 of 10 left today/);
  await context.close();
});

test('create an API token on the profile page, use it, revoke it', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const login = await logIn(context, env.server.url, grace);
  await login.waitForURL('**/contributors/grace');
  // The profile of a signed-in contributor with a submission once failed to hydrate on
  // about half of its loads (the server gave the page's data another hydration id than
  // the browser looked for); open it a few times.
  for (let i = 0; i < 4; i++) {
    await (await openHydrated(context, `${env.server.url}/contributors/grace`)).close();
  }
  const page = await openHydrated(context, `${env.server.url}/contributors/grace`);
  assert.match(await page.locator('#api-tokens').innerText(), /No API tokens yet/);
  await page.fill('#new-token-form input[name=name]', 'lab-gpu-box');
  await page.click('#new-token-form button[type=submit]');
  const secret = page.locator('#api-tokens .secret-value');
  await secret.waitFor();
  const token = await secret.innerText();
  assert.match(token, /^asc_[0-9a-f]+$/);
  assert.match(await page.locator('#api-tokens .command').innerText(), /ascent-eval submit --server http:\/\/127\.0\.0\.1:\d+ --phase 1 DIR/);
  assert.equal(await page.locator('#api-tokens table.tokens tbody tr').count(), 1);
  await page.screenshot({ path: path.join(screenshots, 'tokens.png'), fullPage: true });

  // The token signs a program in...
  const probe = () =>
    fetch(`${env.server.url}/api/uploads/${'0'.repeat(32)}`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal((await probe()).status, 404);
  // ...until it is revoked.
  await page.click('#api-tokens button:has-text("Revoke")');
  await page.waitForSelector('#api-tokens .empty:has-text("No API tokens yet")');
  assert.equal((await probe()).status, 401);
  // Where to pay rewards: a malformed account is refused, a NEAR account id is kept.
  assert.match(await page.locator('#payout-status').innerText(), /No payout account yet/);
  await page.fill('#payout-form input[name=account]', 'Grace Hopper');
  await page.click('#payout-form button[type=submit]');
  await page.waitForSelector('#rewards .form-error:has-text("NEAR account id")');
  await page.fill('#payout-form input[name=account]', 'grace.near');
  await page.click('#payout-form button[type=submit]');
  await page.waitForSelector('#payout-status:has-text("Points are paid to grace.near")');
  // Other people see neither panel.
  const other = await openHydrated(context, `${env.server.url}/contributors/organizer`);
  assert.equal(await other.locator('#api-tokens').count(), 0);
  assert.equal(await other.locator('#payout-form').count(), 0);
  await context.close();
});

test('without JavaScript a token is still created and shown once', async () => {
  const context = await env.browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${env.server.url}/login`);
  await page.fill('input[name=email]', grace.email);
  await page.fill('input[name=password]', grace.password);
  await Promise.all([page.waitForURL('**/contributors/grace'), page.click('form.stack button[type=submit]')]);
  await page.fill('#new-token-form input[name=name]', 'no-script');
  await Promise.all([page.waitForLoadState('load'), page.click('#new-token-form button[type=submit]')]);
  await page.waitForSelector('#api-tokens .secret-value');
  assert.match(await page.locator('#api-tokens .secret-value').innerText(), /^asc_/);
  // Shown once: a reload no longer has it.
  await page.reload();
  assert.equal(await page.locator('#api-tokens .secret-value').count(), 0);
  assert.match(await page.locator('#api-tokens table.tokens').innerText(), /no-script/);
  await context.close();
});

test('the organizer sees the workers and the queue, creates and revokes a worker', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const login = await logIn(context, env.server.url, ORGANIZER, '/organizer');
  await login.waitForURL('**/organizer');
  const page = await openHydrated(context, `${env.server.url}/organizer`);
  const workers = page.locator('#workers');
  const loads = countNavigations(page);
  assert.match(await workers.innerText(), /built-in/);
  assert.match(await page.locator('#jobs-waiting').innerText(), /^\d+$/);
  await page.fill('#new-worker-form input[name=name]', 'gpu-01');
  // The worker's public key, as `ascent-eval key` prints it: 32 raw bytes in hex.
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex');
  await page.fill('#new-worker-form input[name=public_key]', raw);
  await page.click('#new-worker-form button[type=submit]');
  await workers.locator('.secret-value').waitFor();
  assert.match(await workers.locator('.secret-value').innerText(), /^ascw_/);
  const row = workers.locator('tr', { hasText: 'gpu-01' });
  assert.match(await row.innerText(), /active/i);
  await page.screenshot({ path: path.join(screenshots, 'console-workers.png'), fullPage: true });
  await row.locator('button:has-text("Revoke")').click();
  await workers.locator('tr', { hasText: 'gpu-01' }).locator('.badge:has-text("revoked")').waitFor();
  assert.equal(loads.loads, 0, 'the hydrated console creates and revokes without reloading');
  await context.close();
});
