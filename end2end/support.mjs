// Starts a real `ascent` server on a free loopback port with a fresh data directory,
// and launches Debian's headless Chromium through playwright-core.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

export const root = path.resolve(import.meta.dirname, '..');
const binary = process.env.ASCENT_BIN ?? path.join(root, 'target/debug/ascent');
const evalBinary = process.env.ASCENT_EVAL_BIN ?? path.join(root, 'target/debug/ascent-eval');

// `ascent-eval verify --server url`: its exit status and what it printed.
export function verifyLog(url) {
  const run = spawnSync(evalBinary, ['verify', '--server', url], { encoding: 'utf8', timeout: 60_000 });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}
export const screenshots = path.join(root, 'end2end/screenshots');
mkdirSync(screenshots, { recursive: true });

export const ORGANIZER = { email: 'organizer@e2e.test', handle: 'organizer', password: 'organizer-password-1' };

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForHealth(url, child) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`ascent exited with ${child.exitCode}`);
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`ascent did not become healthy at ${url}`);
}

// `heldOutPhases`: phases given the demo's held-out shard, so their submissions score.
// `demo`: seed the demo (phase 1 played through to promotion, phase 2 open and scored).
// `drafts`: phases the demo preset is loaded with as drafts (the last ones).
export async function startServer({ heldOutPhases = [], demo = false, drafts = [] } = {}) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ascent-e2e-'));
  const port = await freePort();
  const env = {
    ...process.env,
    ASCENT_DATA_DIR: dataDir,
    ASCENT_ADDR: `127.0.0.1:${port}`,
    LEPTOS_SITE_ROOT: path.join(root, 'target/site'),
    RUST_LOG: process.env.RUST_LOG ?? 'warn',
  };
  let preset = path.join(root, 'presets/demo.toml');
  if (drafts.length > 0) {
    let text = readFileSync(preset, 'utf8');
    for (const n of drafts) text = text.replace(`number = ${n}\n`, `number = ${n}\ndraft = true\n`);
    preset = path.join(dataDir, 'preset.toml');
    writeFileSync(preset, text);
  }
  execFileSync(binary, ['admin', 'phases', 'load', preset], { env, stdio: 'ignore' });
  execFileSync(binary, ['admin', 'create-organizer', ORGANIZER.email, '--handle', ORGANIZER.handle], {
    env: { ...env, ASCENT_ORGANIZER_PASSWORD: ORGANIZER.password },
    stdio: 'ignore',
  });
  for (const phase of heldOutPhases) {
    execFileSync(binary, ['admin', 'data', 'add', '--phase', String(phase), path.join(root, 'demo/data/heldout.bin')], {
      env,
      stdio: 'ignore',
    });
  }
  if (demo) {
    execFileSync(binary, ['admin', 'seed-demo', path.join(root, 'demo')], { env, stdio: 'ignore', timeout: 300_000 });
  }
  const child = spawn(binary, ['serve'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  await waitForHealth(`${url}/healthz`, child);
  return {
    url,
    // `ascent admin ARGS…` against this server's database; what it printed.
    admin: (...args) => execFileSync(binary, ['admin', ...args], { env, encoding: 'utf8' }),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

// Opens a page and waits until the WebAssembly bundle has hydrated it. When it does not,
// the failure carries what the browser logged (a hydration mismatch names the view).
export async function openHydrated(context, url) {
  const page = await context.newPage();
  const logged = [];
  const note = (text) => logged.push(text);
  page.on('console', (message) => {
    if (message.type() === 'error') note(message.text());
  });
  page.on('pageerror', (error) => note(String(error)));
  await page.goto(url);
  try {
    await page.waitForSelector('body[data-hydrated]', { timeout: 30_000 });
  } catch (error) {
    throw new Error(`${url} did not hydrate:\n${logged.join('\n') || '(nothing logged)'}`, { cause: error });
  }
  return page;
}

export async function register(context, url, who) {
  const page = await openHydrated(context, `${url}/register`);
  await page.fill('input[name=email]', who.email);
  await page.fill('input[name=handle]', who.handle);
  await page.fill('input[name=password]', who.password);
  await Promise.all([page.waitForURL(`**/contributors/${who.handle}`), page.click('button[type=submit]')]);
  return page;
}

export async function logIn(context, url, who, next) {
  const target = next ? `${url}/login?next=${encodeURIComponent(next)}` : `${url}/login`;
  const page = await openHydrated(context, target);
  await page.fill('input[name=email]', who.email);
  await page.fill('input[name=password]', who.password);
  await page.click('button[type=submit]');
  return page;
}

// One server and one browser for a test file: started before its tests, stopped after.
export function useServerAndBrowser(options = {}) {
  const env = {};
  before(async () => {
    env.server = await startServer(options);
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
  return env;
}
