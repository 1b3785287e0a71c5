// The chat page of `hai serve`, in a real browser: headless Chromium (Debian's) driven by
// puppeteer-core. The server runs hai-tiny with an API key and a routing policy whose cloud is a
// fake OpenAI-compatible upstream that echoes; the page must ask for the key, stream answers, show
// each answer's route and reasons (cloud; cloud with an e-mail address redacted before it left;
// the device for a phone number the policy keeps local), time to first token and tokens/s, and
// stop a long answer with its Stop button (the upstream sees the request go). A screenshot is
// saved for people to look at (HAI_ARTIFACTS, default build/artifacts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';
import { startServer } from './serve.mjs';
import { startUpstream } from './fake_upstream.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = process.env.HAI_ARTIFACTS || join(root, 'build', 'artifacts');
const KEY = 'page-test-key';
let up, srv, browser, page;

before(async () => {
  assert.ok(existsSync(chromium), `no Chromium at ${chromium}: scripts/install-deps.sh installs Debian's`);
  up = await startUpstream();
  up.fallback = 'echo';
  const dir = mkdtempSync(join(tmpdir(), 'hai-page-'));
  const policy = join(dir, 'policy.json');
  writeFileSync(policy, JSON.stringify({
    cloud: { base_url: up.url + '/v1', model: 'big-cloud-model' },
    privacy: { email: 'redact', phone: 'keep_local' },
    prefer: 'cloud',
  }));
  srv = await startServer(['--api-key', KEY, '--route-config', policy, '-t', '1'], join(root, 'models', 'hai-tiny.gguf'));
  browser = await puppeteer.launch({ executablePath: chromium, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 900 });
  page.on('pageerror', (e) => { throw e; });
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  await up?.close?.();
});

const lastAnswer = () => page.evaluate(() => {
  const all = document.querySelectorAll('.msg.assistant');
  const m = all[all.length - 1];
  if (!m) return null;
  const q = (c) => m.querySelector('.' + c)?.textContent ?? '';
  return { n: all.length, text: q('text'), route: m.querySelector('.badge')?.dataset.route, badge: q('badge'),
    reasons: m.querySelector('.reasons')?.dataset.reasons, privacy: q('privacy'), stats: q('stats'), state: m.dataset.state ?? null };
});

async function ask(question) {
  const before = (await lastAnswer())?.n ?? 0;
  await page.type('#input', question);
  await page.keyboard.press('Enter');
  await page.waitForFunction((n) => document.querySelectorAll('.msg.assistant').length > n, {}, before);
}

async function answered() {
  await page.waitForFunction(() => {
    const all = document.querySelectorAll('.msg.assistant');
    return all.length && all[all.length - 1].dataset.state;
  }, { timeout: 60000 });
  return lastAnswer();
}

test('the page is served with its security headers and no CORS; the API still wants the key', async () => {
  const r = await fetch(srv.url + '/');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  assert.match(r.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/);
  assert.equal(r.headers.get('x-frame-options'), 'DENY');
  assert.equal(r.headers.get('access-control-allow-origin'), null);
  assert.match(await r.text(), /<script src="\/chat.js"><\/script>/);
  assert.equal((await fetch(srv.url + '/hai/status')).status, 401);
  assert.equal((await fetch(srv.url + '/', { method: 'POST' })).status, 405);
});

test('asks for the API key, then shows the model and its memory', async () => {
  await page.goto(srv.url + '/', { waitUntil: 'load' });
  await page.waitForSelector('#keybar:not([hidden])');
  await page.type('#key', KEY);
  await page.click('#savekey');
  await page.waitForFunction(() => document.getElementById('memory').textContent.includes('MiB'));
  const head = await page.evaluate(() => ({ model: document.getElementById('model').textContent,
    memory: document.getElementById('memory').textContent, router: document.getElementById('router').textContent }));
  assert.match(head.model, /hai-tiny/);
  assert.match(head.memory, /weights [0-9.]+ MiB, KV and scratch [0-9.]+ MiB, process [0-9.]+ MiB/);
  assert.match(head.router, /hybrid: device or cloud \(big-cloud-model\)/);
});

test('a plain question goes to the cloud and streams back, with its timings', async () => {
  await ask('What is the capital of France?');
  const a = await answered();
  assert.equal(a.state, 'done');
  assert.equal(a.text, 'You said: What is the capital of France?');
  assert.equal(a.route, 'cloud');
  assert.equal(a.reasons, 'DEFAULT');
  assert.match(a.stats, /^first token \d+ ms · [0-9.]+ tok\/s · 7 tokens$/);
});

test('an e-mail address is redacted before it leaves, and the page says so', async () => {
  const sent = up.requests.length;
  await ask('Please write to li.wei@example.com about lunch');
  const a = await answered();
  assert.equal(a.state, 'done');
  assert.equal(a.route, 'cloud');
  assert.match(a.reasons, /PRIVACY_REDACTED/);
  assert.equal(a.privacy, 'redacted before it left: email ×1');
  assert.equal(up.requests.length, sent + 1);
  const body = up.requests[sent].body;
  assert.ok(!body.includes('li.wei@example.com'), 'the address reached the cloud: ' + body);
  assert.match(a.text, /li\.wei@example\.com/, 'restored on the way back');
});

test('a phone number keeps the question on the device', async () => {
  await page.click('#new'); // a conversation of its own: the router judges the whole conversation
  const sent = up.requests.length;
  await ask('Call me on +86 138 0013 8000 tomorrow, what should I bring?');
  const a = await answered();
  assert.equal(a.state, 'done');
  assert.equal(a.route, 'local');
  assert.equal(a.reasons, 'PRIVACY_KEEP_LOCAL');
  assert.match(a.privacy, /^kept on this device: phone ×[1-9]$/); // the device's answer may repeat it
  assert.ok(a.text.length > 0, 'the device answered');
  assert.match(a.stats, /^first token \d+ ms/);
  assert.equal(up.requests.length, sent, 'nothing went to the cloud');
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'chat-page.png'), fullPage: true });
});

test('Stop ends a long answer, and the cloud request with it', async () => {
  await page.click('#new');
  up.script.push('slow');
  const closed = up.closed || 0;
  await ask('Tell me a very long story.');
  await page.waitForFunction(() => {
    const all = document.querySelectorAll('.msg.assistant');
    return (all[all.length - 1].querySelector('.text').textContent.match(/word/g) || []).length >= 3;
  }, { timeout: 20000 });
  assert.equal(await page.$eval('#stop', (b) => b.disabled), false);
  await page.click('#stop');
  const a = await answered();
  assert.equal(a.state, 'stopped');
  assert.equal(await page.$eval('#send', (b) => b.disabled), false);
  assert.equal(await page.$eval('#stop', (b) => b.disabled), true);
  const len = a.text.length;
  await new Promise((r) => setTimeout(r, 600));
  assert.equal((await lastAnswer()).text.length, len, 'the text kept growing after Stop');
  for (let i = 0; i < 50 && (up.closed || 0) === closed; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(up.closed, closed + 1, 'the cloud request was not ended');
  // and the conversation goes on
  await ask('And the capital of Spain?');
  const b = await answered();
  assert.equal(b.state, 'done');
  assert.equal(b.text, 'You said: And the capital of Spain?');
});
