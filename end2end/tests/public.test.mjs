// What a visitor without an account sees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useServerAndBrowser, openHydrated, screenshots } from '../support.mjs';

const env = useServerAndBrowser();

test('home lists the seven phases with the open one highlighted', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await openHydrated(context, env.server.url);
  const cards = page.locator('.timeline .phase-card');
  assert.equal(await cards.count(), 7);
  const titles = await page.locator('.phase-card h3').allTextContents();
  assert.deepEqual(titles, ['Prototype', 'Foundation', 'Growth', 'Scale-up', 'Frontier', 'Giant', 'Summit']);
  const current = page.locator('.phase-card.current');
  assert.equal(await current.count(), 1);
  assert.match(await current.innerText(), /Phase 1[\s\S]*open/i);
  assert.match(await page.locator('#take-part').innerText(), /How to take part/);
  // The scaling curve: every phase's cap, and no point before any score.
  const scaling = page.locator('figure.scaling-chart');
  assert.equal(await scaling.locator('g.cap').count(), 7);
  assert.equal(await scaling.locator('.scaling-point').count(), 0);
  assert.match(await scaling.locator('svg').innerHTML(), /No phase has a scored submission yet/);
  assert.match(await scaling.locator('figcaption').innerText(), /none of the 7 phases/);
  await page.screenshot({ path: path.join(screenshots, 'home.png'), fullPage: true });
  await context.close();
});

test('a phase page shows its rules and says plainly that its leaderboard is empty', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await openHydrated(context, `${env.server.url}/phases/1`);
  assert.match(await page.locator('h1').innerText(), /Phase 1: Prototype/);
  const rules = await page.locator('.rules').innerText();
  assert.match(rules, /Parameter cap\s+100K/);
  assert.match(rules, /Vocabulary\s+256 tokens/);
  assert.match(await page.locator('.phase-grid').innerText(), /No scored submissions yet/);
  await page.screenshot({ path: path.join(screenshots, 'phase.png'), fullPage: true });
  // Client-side navigation after hydration: back to the timeline through a link.
  await page.click('.crumbs a');
  await page.waitForSelector('.timeline');
  await context.close();
});

test('unknown pages answer 404 with a way back', async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  for (const missing of ['/no-such-page', '/phases/9', '/contributors/nobody', '/submissions/12345']) {
    const response = await page.goto(`${env.server.url}${missing}`);
    assert.equal(response.status(), 404, missing);
    assert.match(await page.locator('h1').innerText(), /does not exist/);
  }
  await page.screenshot({ path: path.join(screenshots, 'not-found.png') });
  await context.close();
});

test('phases and leaderboards are served as JSON and CSV', async () => {
  const phases = await (await fetch(`${env.server.url}/api/phases`)).json();
  assert.equal(phases.length, 7);
  for (const key of ['number', 'title', 'state', 'opens_at', 'closes_at', 'max_parameters', 'vocab_size', 'seq_len', 'contributors', 'best_loss']) {
    assert.ok(key in phases[0], key);
  }
  const board = await (await fetch(`${env.server.url}/api/phases/1/leaderboard`)).json();
  assert.deepEqual(board.rows, []);
  const csv = await fetch(`${env.server.url}/api/phases/1/leaderboard.csv`);
  assert.match(csv.headers.get('content-type'), /text\/csv/);
  assert.match(await csv.text(), /^rank,contributor,best_loss/);
});
