// A phase's life from the browser, on the seeded demo: phase 1 is finalized with its
// winners promoted, phase 2 is open. An organizer closes phase 2 in the console,
// reviews its private ranking, adjusts the advancement list with a reason, and
// finalizes; the public pages and the API show the outcome, and the audit log has it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { useServerAndBrowser, openHydrated, logIn, screenshots, ORGANIZER, verifyLog } from '../support.mjs';

const env = useServerAndBrowser({ demo: true });

test('a newcomer sees a finalized phase with its private ranking and who advanced', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await openHydrated(context, `${env.server.url}/phases/1`);
  assert.match(await page.locator('.final-status').innerText(), /Final\. 5 of 8 contributors advanced to phase 2/);
  const rows = page.locator('table.final tbody tr');
  assert.equal(await rows.count(), 8);
  assert.equal(await page.locator('table.final tbody tr.advancing').count(), 5);
  // Each row shows the public place it came from.
  assert.match(await rows.first().locator('td').nth(4).innerText(), /^#\d · \d\.\d{4}$/);
  // Both tables fit a 1280px window whole: no column hidden behind a scrollbar.
  const widths = await page.locator('.table-wrap').evaluateAll((ws) => ws.map((w) => [w.scrollWidth, w.clientWidth]));
  assert.equal(widths.length, 2);
  for (const [scroll, client] of widths) assert.ok(scroll <= client, `a table overflows: ${scroll} > ${client}`);
  await page.screenshot({ path: path.join(screenshots, 'phase-finalized.png'), fullPage: true });

  // The winner's checkpoint is public now, with its hashes, a model card and the signed score.
  const winnerHref = await rows.first().locator('td').nth(2).locator('a').getAttribute('href');
  const submission = await openHydrated(context, `${env.server.url}${winnerHref}`);
  assert.match(await submission.locator('#open-weights').innerText(), /model\.safetensors[\s\S]*[0-9a-f]{64}/);
  assert.match(await submission.locator('#signature').innerText(), /Worker built-in signed/);
  const card = await fetch(`${env.server.url}${winnerHref.replace('/submissions/', '/api/submissions/')}/model-card.md`);
  assert.equal(card.status, 200);
  assert.match(await card.text(), /finished #1 of 8/);
  await submission.screenshot({ path: path.join(screenshots, 'submission-open-weights.png'), fullPage: true });

  const home = await openHydrated(context, `${env.server.url}/`);
  assert.match(await home.locator('.phase-card').first().innerText(), /5 advanced to phase 2/);
  await home.screenshot({ path: path.join(screenshots, 'home-demo.png'), fullPage: true });

  // The home page shows the public log's head; the demo's log verifies from the outside.
  const log = await (await fetch(`${env.server.url}/api/log?limit=1`)).json();
  assert.equal(await home.locator('#log-head').innerText(), log.head.hash);
  const verified = verifyLog(env.server.url);
  assert.equal(verified.status, 0, verified.output);
  assert.match(verified.output, /log verified: \d+ entries[\s\S]*13 signatures checked, 13 public losses recomputed[\s\S]*4 scores sealed/);

  const api = await (await fetch(`${env.server.url}/api/phases/1`)).json();
  assert.equal(api.state, 'finalized');
  assert.equal(api.promoted.length, 5);

  // The winner's profile says where they finished and what they may enter now.
  const winner = api.promoted[0];
  const profile = await openHydrated(context, `${env.server.url}/contributors/${winner}`);
  assert.match(await profile.locator('#eligible').innerText(), /Phase 2 — promoted from phase 1/);
  assert.match(await profile.locator('#phases-reached').innerText(), /Phase 1: Prototype — finished #1 · private loss \d\.\d{4}\s+advanced/i);
  // Phase 1's 1,000 points by place among the five who advanced: 1/1 of the weights' sum.
  assert.equal(await profile.locator('#points-total').innerText(), '438 points');
  await profile.screenshot({ path: path.join(screenshots, 'profile-promoted.png'), fullPage: true });
  await context.close();
});

test('an organizer closes phase 2, adjusts the advancement list and promotes through the console', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const login = await logIn(context, env.server.url, ORGANIZER, '/organizer');
  await login.waitForURL('**/organizer');
  const page = await openHydrated(context, `${env.server.url}/organizer/phases/2`);
  assert.match(await page.locator('h1').innerText(), /Phase 2: Foundation/);

  // Close it: a reason is required.
  await page.fill('#move-form input[name=reason]', 'the foundation phase ends early for the demo');
  await page.click('#move-form button[type=submit]');
  await page.waitForSelector('#advancement table.final');
  assert.match(await page.locator('.title-row .badge').innerText(), /closed/i);
  const rows = page.locator('#advancement table.final tbody tr');
  assert.equal(await rows.count(), 4);
  await page.screenshot({ path: path.join(screenshots, 'console-phase-closed.png'), fullPage: true });

  // The rule (the best 8) proposes all four; take the last one off, with a reason.
  const last = rows.last();
  const handle = (await last.locator('td').nth(1).innerText()).trim();
  await last.locator('input[name=reason]').fill('weights too close to an earlier entry');
  await last.locator('button[type=submit]').click();
  await page.waitForSelector(`#advancement tr:has-text("removed by organizers")`);
  assert.match(await page.locator('#finalize-form button').innerText(), /Finalize and promote 3 to phase 3/);

  await page.fill('#finalize-form input[name=reason]', 'reviewed with the jury');
  await page.click('#finalize-form button[type=submit]');
  await page.waitForFunction(() => /finalized/i.test(document.querySelector('.title-row .badge')?.textContent ?? ''));
  assert.equal(await page.locator('#finalize-form').count(), 0);
  await page.screenshot({ path: path.join(screenshots, 'console-phase-finalized.png'), fullPage: true });

  const api = await (await fetch(`${env.server.url}/api/phases/2`)).json();
  assert.equal(api.state, 'finalized');
  assert.equal(api.promoted.length, 3);
  assert.ok(!api.promoted.includes(handle), `${handle} was removed`);

  const publicPage = await openHydrated(context, `${env.server.url}/phases/2`);
  assert.match(await publicPage.locator('.final-status').innerText(), /3 of 4 contributors advanced to phase 3/);
  assert.match(await publicPage.locator('table.final').innerText(), /removed by organizers: weights too close/);

  // The one taken off is cleared later: an organizer invites them into phase 3.
  const phase3 = await openHydrated(context, `${env.server.url}/organizer/phases/3`);
  assert.match(await phase3.locator('#entrants').innerText(), /3 may enter: 3 promoted from phase 2, 0 invited/);
  await phase3.fill('#invite-form input[name=handle]', handle);
  await phase3.fill('#invite-form input[name=reason]', 'cleared by the jury');
  await phase3.click('#invite-form button[type=submit]');
  await phase3.waitForFunction(() => /1 invited/.test(document.querySelector('#entrants')?.innerText ?? ''));
  assert.match(await phase3.locator('#entrants').innerText(), new RegExp(`${handle} — invited`));
  const public3 = await openHydrated(context, `${env.server.url}/phases/3`);
  assert.equal(await public3.locator('#entry-rule').innerText(), 'Promoted from phase 2 (3) or invited by the organizers (1)');

  const audit = await openHydrated(context, `${env.server.url}/organizer/audit`);
  const log = await audit.locator('table.audit').innerText();
  assert.match(log, new RegExp(`contributor invited\\s+phase 3 / ${handle}\\s+cleared by the jury`));
  assert.match(log, /winners promoted\s+phase 2\s+reviewed with the jury/);
  assert.match(log, new RegExp(`advancement removed\\s+phase 2 / ${handle}`));
  assert.match(log, /phase moved\s+phase 2\s+the foundation phase ends early/);
  await audit.screenshot({ path: path.join(screenshots, 'console-audit.png'), fullPage: true });

  // Closing revealed phase 2's signed statements and finalizing published its secret:
  // the log still verifies, now recomputing every score.
  const verified = verifyLog(env.server.url);
  assert.equal(verified.status, 0, verified.output);
  assert.match(verified.output, /17 public losses recomputed from signed windows, 0 scores sealed/);
  assert.match(verified.output, /3000 reward points granted/);
  await context.close();
});

test('an organizer finds a submission and disqualifies it with a reason', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const login = await logIn(context, env.server.url, ORGANIZER, '/organizer');
  await login.waitForURL('**/organizer');
  const page = await openHydrated(context, `${env.server.url}/organizer/submissions?q=gus`);
  const row = page.locator('table.submissions tbody tr').first();
  await row.waitFor();
  // Phase 1 is finalized: its results are final, so the refusal says so.
  await row.locator('input[name=reason]').first().fill('late discovery');
  await row.locator('button:has-text("Disqualify")').click();
  await page.waitForSelector('.form-error:has-text("finalized")');
  await page.screenshot({ path: path.join(screenshots, 'console-submissions.png'), fullPage: true });
  await context.close();
});

test('an organizer replaces a later phase\'s held-out data from the console; a broken shard is refused', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const login = await logIn(context, env.server.url, ORGANIZER, '/organizer');
  await login.waitForURL('**/organizer');
  // Reached by a client-side navigation from the console's overview: the upload script
  // arrives with the rendered form, not with a page load.
  const page = await openHydrated(context, `${env.server.url}/organizer`);
  await page.click('a[href="/organizer/phases/3"]');
  await page.waitForURL('**/organizer/phases/3');
  await page.locator('#data-form').waitFor();
  const before = await page.locator('#data-sha256').innerText();

  // A token shard: 256 int32 header words (magic, version 1 = u16 tokens, count), then
  // 3000 byte-level tokens; and the same with a broken magic number.
  const tokens = 3000;
  const shard = Buffer.alloc(1024 + 2 * tokens);
  shard.writeInt32LE(20240520, 0);
  shard.writeInt32LE(1, 4);
  shard.writeInt32LE(tokens, 8);
  for (let i = 0; i < tokens; i++) shard.writeUInt16LE((i * 7) % 256, 1024 + 2 * i);
  const dir = mkdtempSync(path.join(tmpdir(), 'ascent-data-'));
  const good = path.join(dir, 'heldout-v2.bin');
  const broken = path.join(dir, 'broken.bin');
  writeFileSync(good, shard);
  const bad = Buffer.from(shard);
  bad.writeInt32LE(12345, 0);
  writeFileSync(broken, bad);

  await page.setInputFiles('#data-file', broken);
  await page.click('#data-start');
  await page.waitForSelector('#data-message.form-error');
  assert.match(await page.locator('#data-message').innerText(), /broken\.bin.*magic/);
  assert.equal(await page.locator('#data-sha256').innerText(), before);

  await page.setInputFiles('#data-file', good);
  await Promise.all([page.waitForEvent('load'), page.click('#data-start')]);
  await page.locator('#data-name').waitFor();
  assert.equal(await page.locator('#data-name').innerText(), 'heldout-v2.bin');
  assert.equal(await page.locator('#data-sha256').innerText(), createHash('sha256').update(shard).digest('hex'));
  await page.screenshot({ path: path.join(screenshots, 'console-held-out-data.png'), fullPage: true });
  await context.close();
});
