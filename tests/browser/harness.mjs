// Harness of the portal's browser tests: a real `taxgate demo` per test, a real headless
// Debian Chromium (playwright-core, executablePath /usr/bin/chromium), the demo outbox
// for captcha answers and SMS codes, the demo's certificates (demo-pki/ in its data dir).
import { chromium } from 'playwright-core';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs a taxgate command to its end; its stdout (throws with stderr on failure). */
export async function cli(bin, args) {
  try {
    const { stdout } = await promisify(execFile)(bin, args, { env: { ...process.env, RUST_LOG: 'warn' } });
    return stdout;
  } catch (e) {
    throw new Error(`taxgate ${args.join(' ')}: ${e.stderr || e.message}`);
  }
}

/** Starts `taxgate demo` on a free port with a fresh data dir. */
export async function startGateway(bin) {
  const dir = await mkdtemp(join(tmpdir(), 'taxgate-browser-'));
  const proc = spawn(bin, ['demo', '--listen', '127.0.0.1:0', '--data-dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  const log = [];
  proc.stderr.on('data', (d) => { log.push(String(d)); if (log.length > 200) log.shift(); });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gateway did not print "listening on" within 30 s:\n' + log.join(''))), 30000);
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`gateway exited (${code}):\n${log.join('')}`)); });
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
  const outbox = join(dir, 'outbox.jsonl');
  const g = {
    url, dir, outbox, proc, log,
    pki: join(dir, 'demo-pki'),
    async lines() {
      let text = '';
      try { text = await readFile(outbox, 'utf8'); } catch { /* not written yet */ }
      return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    },
    /** The outbox position now: SMS codes sent later are found with smsSince. */
    async mark() { return (await g.lines()).length; },
    async captchaAnswer(id) {
      for (let i = 0; i < 100; i++) {
        const hit = (await g.lines()).find((l) => l.kind === 'captcha' && l.captcha_id === id);
        if (hit) return hit.answer;
        await sleep(100);
      }
      throw new Error(`no captcha answer for ${id} in the outbox`);
    },
    async smsSince(mark, phone) {
      for (let i = 0; i < 100; i++) {
        const hit = (await g.lines()).slice(mark).filter((l) => l.kind === 'sms' && l.phone === phone).pop();
        if (hit) return hit.code;
        await sleep(100);
      }
      throw new Error(`no SMS to ${phone} in the outbox`);
    },
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(5000)]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  return g;
}

/** A browser user: its own Chromium with a fresh --user-data-dir. */
export async function openBrowser(name = 'user') {
  const profile = await mkdtemp(join(tmpdir(), `taxgate-chromium-${name}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 860 },
    locale: 'zh-CN',
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(10000);
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()}`); });
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith('http://127.0.0.1') && !u.startsWith('data:')) problems.push(`external request: ${u}`);
  });
  return {
    context, page, problems, name,
    async close() {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}
