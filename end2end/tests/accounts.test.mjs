// Accounts: registering, logging in and out, roles, and the CSRF wall.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useServerAndBrowser, openHydrated, register, logIn, screenshots, ORGANIZER } from '../support.mjs';

const ada = { email: 'ada@e2e.test', handle: 'ada', password: 'analytical-engine' };

const env = useServerAndBrowser();

test('register, log out, log in again and land on the profile', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await register(context, env.server.url, ada);
  assert.equal(await page.locator('h1').innerText(), 'ada');
  // The header follows the session without a reload.
  await page.waitForSelector('.session a.me:has-text("ada")');
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === '__Host-ascent-session');
  assert.ok(session, 'session cookie set');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Lax');
  assert.equal(session.path, '/');
  await page.screenshot({ path: path.join(screenshots, 'profile.png'), fullPage: true });

  await page.click('.session button');
  await page.waitForSelector('.session a[href="/login"]');

  const again = await logIn(context, env.server.url, ada);
  await again.waitForURL('**/contributors/ada');
  await again.waitForSelector('.session a.me:has-text("ada")');
  await context.close();
});

test('changing the password signs out the other browsers, and only the new one logs in', async () => {
  const grace = { email: 'grace@e2e.test', handle: 'grace', password: 'compiler-first-1' };
  const renewed = { ...grace, password: 'a-brand-new-secret' };
  const here = await env.browser.newContext({ viewport: { width: 1280, height: 900 } });
  await register(here, env.server.url, grace);
  const elsewhere = await env.browser.newContext();
  const other = await logIn(elsewhere, env.server.url, grace);
  await other.waitForURL('**/contributors/grace');

  const profile = await openHydrated(here, `${env.server.url}/contributors/grace`);
  assert.match(await profile.locator('#other-sessions').innerText(), /1 other browser/);
  // A program with the account's API token may not sign the browsers out.
  await profile.fill('#new-token-form input[name=name]', 'gpu-box');
  await profile.click('#new-token-form button[type=submit]');
  const apiToken = (await profile.locator('.secret-value').innerText()).trim();
  const byProgram = await fetch(`${env.server.url}/api/account/sign_out_others`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'csrf_token=none',
  });
  assert.equal(byProgram.status, 403, await byProgram.text());
  assert.match(await profile.locator('#other-sessions').innerText(), /1 other browser/);
  await profile.fill('#password-form input[name=current]', 'not-my-password');
  await profile.fill('#password-form input[name=new_password]', renewed.password);
  await profile.click('#password-form button[type=submit]');
  await profile.waitForSelector('#account .form-error');
  assert.match(await profile.locator('#account .form-error').innerText(), /not your current password/);

  await profile.fill('#password-form input[name=current]', grace.password);
  await profile.fill('#password-form input[name=new_password]', renewed.password);
  await profile.click('#password-form button[type=submit]');
  await profile.waitForSelector('#account .form-ok');
  assert.match(await profile.locator('#account .form-ok').innerText(), /Password changed/);
  await profile.waitForFunction(() => /Only this browser/.test(document.querySelector('#other-sessions')?.textContent ?? ''));
  assert.equal(await profile.locator('#sign-out-others-form').count(), 0);
  await profile.locator('#account').screenshot({ path: path.join(screenshots, 'account.png') });

  // The other browser's session is gone: its next page is a visitor's.
  const after = await openHydrated(elsewhere, `${env.server.url}/contributors/grace`);
  await after.waitForSelector('.session a[href="/login"]');
  assert.equal(await after.locator('#account').count(), 0);

  const fresh = await env.browser.newContext();
  const old = await logIn(fresh, env.server.url, grace);
  await old.waitForSelector('.form-error');
  const ok = await logIn(fresh, env.server.url, renewed);
  await ok.waitForURL('**/contributors/grace');

  // Signing out the others from here ends the fresh browser's session.
  const again = await openHydrated(here, `${env.server.url}/contributors/grace`);
  assert.match(await again.locator('#other-sessions').innerText(), /1 other browser/);
  await again.click('#sign-out-others-form button[type=submit]');
  await again.waitForSelector('#account .form-ok');
  assert.match(await again.locator('#account .form-ok').innerText(), /Signed out 1 other browser/);
  const gone = await openHydrated(fresh, `${env.server.url}/contributors/grace`);
  await gone.waitForSelector('.session a[href="/login"]');

  // Without JavaScript the forms still work, and an error shows under its own form only.
  const plain = await env.browser.newContext({ javaScriptEnabled: false });
  const entry = await plain.newPage();
  await entry.goto(`${env.server.url}/login`);
  await entry.fill('input[name=email]', renewed.email);
  await entry.fill('input[name=password]', renewed.password);
  await Promise.all([entry.waitForURL('**/contributors/grace'), entry.click('button[type=submit]')]);
  await entry.fill('#password-form input[name=current]', 'still-not-it');
  await entry.fill('#password-form input[name=new_password]', 'yet-another-secret');
  await Promise.all([entry.waitForURL(/__err=/), entry.click('#password-form button[type=submit]')]);
  assert.equal(await entry.locator('.form-error').count(), 1, 'one error, not one under every form');
  assert.match(await entry.locator('#password-form ~ .form-error').first().innerText(), /not your current password/);
  for (const context of [here, elsewhere, fresh, plain]) await context.close();
});

test("an organizer's reset link sets a new password once and signs out every browser", async () => {
  const lin = { email: 'lin@e2e.test', handle: 'lin', password: 'first-password-1' };
  const before = await env.browser.newContext();
  await register(before, env.server.url, lin);
  const printed = env.server.admin('reset-link', 'Lin', '--reason', 'wrote from the registered address');
  const link = printed.match(/\S+\/reset-password\?token=\S+/)?.[0];
  assert.ok(link?.startsWith(`${env.server.url}/`), printed);

  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await openHydrated(context, link);
  assert.equal(await page.locator('#reset-handle').innerText(), 'lin');
  await page.screenshot({ path: path.join(screenshots, 'reset-password.png') });
  await page.fill('#reset-form input[name=new_password]', 'second-password-2');
  await Promise.all([page.waitForURL('**/contributors/lin'), page.click('#reset-form button[type=submit]')]);
  await page.waitForSelector('.session a.me:has-text("lin")');

  const reused = await openHydrated(context, link);
  await reused.waitForSelector('#reset-invalid');
  assert.equal(await reused.locator('#reset-form').count(), 0);
  const stale = await openHydrated(before, `${env.server.url}/contributors/lin`);
  await stale.waitForSelector('.session a[href="/login"]');
  assert.throws(() => env.server.admin('reset-link', 'nobody', '--reason', 'x'), /no account is called/);

  // From the console: the link is shown once, and the audit log names who issued it.
  const organizer = await env.browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const login = await logIn(organizer, env.server.url, ORGANIZER, '/organizer');
  await login.waitForURL('**/organizer');
  const console_ = await openHydrated(organizer, `${env.server.url}/organizer`);
  await console_.fill('#reset-link-form input[name=handle]', 'nobody');
  await console_.fill('#reset-link-form input[name=reason]', 'a typo');
  await console_.click('#reset-link-form button[type=submit]');
  await console_.waitForSelector('#reset-link-form ~ .form-error');
  assert.match(await console_.locator('#reset-link-form ~ .form-error').innerText(), /no account is called/);
  await console_.fill('#reset-link-form input[name=handle]', 'lin');
  await console_.fill('#reset-link-form input[name=reason]', 'called from the registered phone');
  await console_.click('#reset-link-form button[type=submit]');
  const shown = (await (await console_.waitForSelector('#reset-link .secret-value')).innerText()).trim();
  assert.ok(shown.startsWith(`${env.server.url}/reset-password?token=ascr_`), shown);
  await console_
    .locator('.panel', { has: console_.locator('#reset-link-form') })
    .screenshot({ path: path.join(screenshots, 'console-reset-link.png') });
  const opened = await openHydrated(before, shown);
  assert.equal(await opened.locator('#reset-handle').innerText(), 'lin');
  const audit = await openHydrated(organizer, `${env.server.url}/organizer/audit`);
  const text = await audit.locator('main').innerText();
  assert.match(text, /password reset link issued/);
  assert.match(text, /called from the registered phone/);
  assert.match(text, /password reset with a link/);
  for (const c of [before, context, organizer]) await c.close();
});

test('a wrong password is refused with a message', async () => {
  const context = await env.browser.newContext();
  const page = await logIn(context, env.server.url, { email: 'ghost@e2e.test', password: 'not-the-password' });
  await page.waitForSelector('.form-error');
  assert.match(await page.locator('.form-error').innerText(), /do not match an account/);
  await page.screenshot({ path: path.join(screenshots, 'login-error.png') });
  await context.close();
});

test('a contributor gets 403 on the organizer console; a visitor is sent to log in', async () => {
  const visitor = await env.browser.newContext();
  const anonymous = await visitor.newPage();
  await anonymous.goto(`${env.server.url}/organizer`);
  assert.match(anonymous.url(), /\/login\?next=\/organizer$/);
  await visitor.close();

  const context = await env.browser.newContext();
  const login = await logIn(context, env.server.url, ada);
  await login.waitForURL('**/contributors/ada');
  const page = await context.newPage();
  const response = await page.goto(`${env.server.url}/organizer`);
  assert.equal(response.status(), 403);
  assert.match(await page.locator('h1').innerText(), /Organizers only/);
  await page.screenshot({ path: path.join(screenshots, 'forbidden.png') });
  await context.close();
});

test('an organizer logs in and sees the console', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await logIn(context, env.server.url, ORGANIZER, '/organizer');
  await page.waitForURL('**/organizer');
  await page.waitForSelector('h1:has-text("Organizer console")');
  const phases = page.locator('.panel', { has: page.locator('h2:text-is("Phases")') });
  assert.equal(await phases.locator('table tbody tr').count(), 7);
  await page.screenshot({ path: path.join(screenshots, 'console.png'), fullPage: true });
  await context.close();
});

test('an organizer gives a phase an evaluation key; a mistyped key is refused', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const login = await logIn(context, env.server.url, ORGANIZER, '/organizer');
  await login.waitForURL('**/organizer');
  const page = await openHydrated(context, `${env.server.url}/organizer/phases/3`);
  const key = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
  const save = async (value, reason) => {
    await page.fill('#settings input[name="form[evaluation_key]"]', value);
    await page.fill('#settings input[name=reason]', reason);
    await page.click('#settings button[type=submit]');
  };
  // One character changed: the Bech32 checksum catches it before anyone encrypts to it.
  await save(key.replace('ql3z', 'ql3y'), 'a typo');
  await page.waitForSelector('#settings .form-error');
  assert.match(await page.locator('#settings .form-error').innerText(), /checksum is wrong/);
  await save(key, 'workers hold the private half');
  await page.waitForSelector('#settings .notice');
  await page.screenshot({ path: path.join(screenshots, 'console-evaluation-key.png'), fullPage: true });
  const phase = await openHydrated(context, `${env.server.url}/phases/3`);
  await phase.locator('#rules-submissions').screenshot({ path: path.join(screenshots, 'phase-evaluation-key.png') });
  const offered = await phase.locator('#evaluation-key').innerText();
  assert.match(offered, /ascent-eval submit --encrypt/);
  assert.ok(offered.includes(key));
  const other = await openHydrated(context, `${env.server.url}/phases/4`);
  assert.match(await other.locator('#evaluation-key').innerText(), /Not offered/);
  // The key is part of the phase's rules in the API, which `submit --encrypt` reads.
  const rules = (await (await fetch(`${env.server.url}/api/phases/3`)).json()).rules;
  assert.equal(rules.evaluation_key, key);
  await context.close();
});

test('a state-changing request without the CSRF token is refused', async () => {
  const context = await env.browser.newContext();
  const page = await openHydrated(context, `${env.server.url}/login`);
  const action = await page.locator('form').last().getAttribute('action');
  // From our own page, but without the token: refused.
  const status = await page.evaluate(async (action) => {
    const body = new URLSearchParams({ email: 'ada@e2e.test', password: 'analytical-engine' });
    const response = await fetch(action, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    return response.status;
  }, action);
  assert.equal(status, 403);
  // From outside the browser, with no cookie at all: refused.
  const response = await fetch(`${env.server.url}${action}`, {
    method: 'POST',
    body: new URLSearchParams({ email: 'ada@e2e.test', password: 'analytical-engine' }),
  });
  assert.equal(response.status, 403);
  await context.close();
});
