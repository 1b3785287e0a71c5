// hai pull and hai serve -m auto against a local HTTP server that serves a model file and can
// misbehave: cut the connection half-way (the next pull resumes with a Range request), answer a
// Range with the whole file (the pull starts over), send corrupted bytes (refused by SHA-256, the
// part removed), send too many bytes, or 404. A catalog names the models; -m auto picks the largest
// that fits the memory budget and pulls it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, mkdtempSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hai } from './serve.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const model = readFileSync(join(root, 'models', 'hai-tiny.gguf'));
const sha = createHash('sha256').update(model).digest('hex');
let srv, base, dir;
const seen = []; // { url, range }
let mode = 'ok';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hai-pull-'));
  srv = http.createServer((req, res) => {
    seen.push({ url: req.url, range: req.headers.range ?? null });
    if (!req.url.startsWith('/m/')) { res.writeHead(404); return res.end('no'); }
    const m = /bytes=(\d+)-/.exec(req.headers.range ?? '');
    const from = m && mode !== 'no-range' ? Number(m[1]) : 0;
    const body = mode === 'corrupt' ? Buffer.from(model).fill(7, 1000, 1100) : mode === 'long' ? Buffer.concat([model, Buffer.alloc(4096)]) : model;
    const part = body.subarray(from);
    res.writeHead(from ? 206 : 200, { 'Content-Length': part.length, 'Accept-Ranges': 'bytes',
      ...(from ? { 'Content-Range': `bytes ${from}-${body.length - 1}/${body.length}` } : {}) });
    if (mode === 'cut') { res.write(part.subarray(0, part.length >> 1)); setTimeout(() => req.socket.destroy(), 50); return; }
    res.end(part);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${srv.address().port}`;
});
after(() => { srv?.close(); rmSync(dir, { recursive: true, force: true }); });

const pull = (args) => new Promise((resolve) => execFile(hai, ['pull', '--dir', dir, ...args], (e, stdout, stderr) =>
  resolve({ code: e ? e.code : 0, stdout, stderr })));
const catalog = (entries) => { const p = join(dir, 'catalog.json'); writeFileSync(p, JSON.stringify(entries)); return p; };

test('a whole download: size and SHA-256 checked, renamed into place', async () => {
  mode = 'ok';
  const r = await pull([`${base}/m/tiny-a.gguf`, '--sha256', sha, '--size', String(model.length)]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), join(dir, 'tiny-a.gguf'));
  assert.ok(readFileSync(join(dir, 'tiny-a.gguf')).equals(model));
  assert.ok(!existsSync(join(dir, 'tiny-a.gguf.part')));
  assert.match(r.stderr, /SHA-256 checked/);
});

test('cut half-way: the part is kept, and the next pull resumes with a Range request', async () => {
  mode = 'cut';
  const r = await pull([`${base}/m/tiny-b.gguf`, '--sha256', sha, '--size', String(model.length)]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /run again to resume/);
  const have = statSync(join(dir, 'tiny-b.gguf.part')).size;
  assert.ok(have > 0 && have < model.length, `part of ${have} bytes`);
  assert.ok(!existsSync(join(dir, 'tiny-b.gguf')));
  mode = 'ok';
  seen.length = 0;
  const r2 = await pull([`${base}/m/tiny-b.gguf`, '--sha256', sha, '--size', String(model.length)]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(seen[0].range, `bytes=${have}-`);
  assert.ok(readFileSync(join(dir, 'tiny-b.gguf')).equals(model));
});

test('a server that ignores the Range: the pull starts over and still ends whole', async () => {
  mode = 'cut';
  await pull([`${base}/m/tiny-c.gguf`, '--sha256', sha]);
  assert.ok(existsSync(join(dir, 'tiny-c.gguf.part')));
  mode = 'no-range';
  const r = await pull([`${base}/m/tiny-c.gguf`, '--sha256', sha]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(readFileSync(join(dir, 'tiny-c.gguf')).equals(model));
});

test('corrupted bytes: refused by SHA-256, nothing left to resume from', async () => {
  mode = 'corrupt';
  const r = await pull([`${base}/m/tiny-d.gguf`, '--sha256', sha, '--size', String(model.length)]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /SHA-256 is [0-9a-f]{64}, not [0-9a-f]{64}/);
  assert.ok(!existsSync(join(dir, 'tiny-d.gguf')) && !existsSync(join(dir, 'tiny-d.gguf.part')));
});

test('more bytes than the file has, a 404, a bad hash argument', async () => {
  mode = 'long';
  const r = await pull([`${base}/m/tiny-e.gguf`, '--size', String(model.length)]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /sent more than/);
  assert.ok(!existsSync(join(dir, 'tiny-e.gguf')));
  mode = 'ok';
  const r2 = await pull([`${base}/nothing/x.gguf`]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /HTTP 404/);
  const r3 = await pull([`${base}/m/x.gguf`, '--sha256', 'abc']);
  assert.equal(r3.code, 1);
  assert.match(r3.stderr, /64 hex digits/);
});

test('a catalog name; and a catalog with a typo is refused naming it', async () => {
  mode = 'ok';
  const cat = catalog([{ name: 'tiny-cat', url: `${base}/m/tiny-cat.gguf`, size: model.length, sha256: sha, memory: 30 << 20 }]);
  const r = await pull(['tiny-cat', '--catalog', cat]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(readFileSync(join(dir, 'tiny-cat.gguf')).equals(model));
  const r2 = await pull(['nope', '--catalog', cat]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /no model 'nope' in the catalog \(it has: tiny-cat\)/);
  const bad = catalog([{ name: 'x', url: `${base}/m/x.gguf`, szie: 1 }]);
  const r3 = await pull(['x', '--catalog', bad]);
  assert.equal(r3.code, 1);
  assert.match(r3.stderr, /unknown key "szie"/);
});

test('hai serve -m auto: the largest model that fits the budget, pulled, and why', async () => {
  mode = 'ok';
  const cat = catalog([
    { name: 'small', url: `${base}/m/small.gguf`, size: model.length, sha256: sha, memory: 20 << 20 },
    { name: 'medium', url: `${base}/m/medium.gguf`, size: model.length, sha256: sha, memory: 40 << 20 },
    { name: 'large', url: `${base}/m/large.gguf`, size: model.length, sha256: sha, memory: 900 << 20 },
  ]);
  const proc = spawn(hai, ['serve', '-m', 'auto', '--catalog', cat, '--models-dir', dir, '--mem-budget', '64M', '--port', '0', '-t', '1'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no start: ' + log)), 20000);
    proc.stderr.on('data', (d) => { log += d; const m = log.match(/on (http:\/\/[0-9.]+:\d+)/); if (m) { clearTimeout(timer); resolve(m[1]); } });
    proc.on('exit', (c) => { clearTimeout(timer); reject(new Error(`exit ${c}: ${log}`)); });
  });
  assert.match(log, /-m auto: medium, 40\.0 MiB needed of the 48\.0 MiB the budget leaves for a model: the largest of the catalog's 3 that fits; too large: large \(900\.0 MiB\)/);
  assert.ok(readFileSync(join(dir, 'medium.gguf')).equals(model));
  const models = await (await fetch(url + '/v1/models')).json();
  assert.equal(models.data.length, 1);
  proc.kill('SIGTERM');
  await new Promise((r) => proc.on('exit', r));
});
