// A draft phase from the browser: the demo preset loaded with phase 7 as a draft. Visitors
// do not see it anywhere; an organizer sees it in the console and publishes it with a
// reason; from then on it is on the timeline and its page, and the public log, published
// late, still verifies from the outside.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useServerAndBrowser, openHydrated, logIn, screenshots, ORGANIZER, verifyLog } from '../support.mjs';

const env = useServerAndBrowser({ drafts: [7] });

test('a draft phase is hidden until an organizer publishes it from the console', async () => {
  const visitor = await env.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const home = await openHydrated(visitor, `${env.server.url}/`);
  assert.equal(await home.locator('a[href="/phases/6"]').count() > 0, true);
  assert.equal(await home.locator('a[href="/phases/7"]').count(), 0);
  assert.equal((await fetch(`${env.server.url}/phases/7`)).status, 404);
  assert.equal((await (await fetch(`${env.server.url}/api/phases`)).json()).length, 6);

  const organizer = await env.browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const login = await logIn(organizer, env.server.url, ORGANIZER, '/organizer');
  await login.waitForURL('**/organizer');
  const page = await openHydrated(organizer, `${env.server.url}/organizer/phases/7`);
  assert.match(await page.locator('.title-row .badge').innerText(), /draft/i);
  assert.equal(await page.locator('#invite-form').count(), 0, 'no invitations into a draft');
  await page.screenshot({ path: path.join(screenshots, 'console-phase-draft.png'), fullPage: true });
  assert.match(await page.locator('#move-form button[type=submit]').innerText(), /Publish/);
  await page.fill('#move-form input[name=reason]', 'the scale-up phase is ready to announce');
  await page.click('#move-form button[type=submit]');
  await page.waitForFunction(() => /upcoming/i.test(document.querySelector('.title-row .badge')?.textContent ?? ''));

  const after = await openHydrated(visitor, `${env.server.url}/`);
  assert.ok((await after.locator('a[href="/phases/7"]').count()) > 0);
  const phase = await openHydrated(visitor, `${env.server.url}/phases/7`);
  assert.match(await phase.locator('h1').innerText(), /Phase 7/);
  const verified = verifyLog(env.server.url);
  assert.equal(verified.status, 0, verified.output);
});
