// A load test on loopback: four times more concurrent streaming clients than slots for a bounded
// time, a fifth of them leaving at random points. Every admitted request must end with [DONE]
// or a JSON error; afterwards the slots and queue are idle, file descriptors are back and memory
// stayed bounded. Prints requests/s and time-to-first-token percentiles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { startServer, metrics } from './serve.mjs';

const SLOTS = 2, CLIENTS = 4 * SLOTS, SECONDS = Number(process.env.HAI_LOAD_SECONDS || 20);

const fds = (pid) => readdirSync(`/proc/${pid}/fd`).length;
const rssMB = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024;

test(`load: ${CLIENTS} streaming clients on ${SLOTS} slots for ${SECONDS} s, 20% leaving early`, async (t) => {
  const srv = await startServer(['--parallel', String(SLOTS), '--queue', String(4 * SLOTS)]);
  t.after(() => srv.stop()); // also when an assertion fails: a live server would keep the test open
  const pid = srv.proc.pid;
  await fetch(srv.url + '/health');
  const fd0 = fds(pid), rss0 = rssMB(pid);
  let rng = 12345;
  const rand = () => ((rng = (rng * 1103515245 + 12345) % 2147483648) / 2147483648);
  const stats = { done: 0, errors: 0, rejected: 0, left: 0, bad: [], ttft: [] };
  const deadline = Date.now() + SECONDS * 1000;

  async function client(k) {
    while (Date.now() < deadline) {
      const leave = rand() < 0.2, leaveAfter = Math.floor(rand() * 6);
      const ctrl = new AbortController();
      const t0 = performance.now();
      const body = JSON.stringify({ model: 'm', stream: true, max_tokens: 8 + Math.floor(rand() * 40), temperature: 0.8,
        messages: [{ role: 'user', content: `client ${k} says hello ${Math.floor(rand() * 1000)}` }] });
      try {
        const r = await fetch(srv.url + '/v1/chat/completions', { method: 'POST', body, signal: ctrl.signal });
        if (r.status === 429) { stats.rejected++; await r.text(); await new Promise((z) => setTimeout(z, 50)); continue; }
        if (r.status !== 200) { stats.bad.push(`status ${r.status}: ${await r.text()}`); continue; }
        const reader = r.body.getReader(), dec = new TextDecoder();
        let text = '', events = 0, first = true;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          text += dec.decode(value, { stream: true });
          if (first && text.includes('"content":"') && !text.endsWith('"content":""}')) { stats.ttft.push(performance.now() - t0); first = false; }
          events = (text.match(/\n\n/g) || []).length;
          if (leave && events > leaveAfter) { ctrl.abort(); break; }
        }
        if (leave && events > leaveAfter) { stats.left++; continue; }
        const last = text.trim().split('\n\n').pop();
        if (last === 'data: [DONE]') stats.done++;
        else if (last.startsWith('data: {"error"')) stats.errors++;
        else stats.bad.push('stream ended without [DONE] or an error: ' + JSON.stringify(text.slice(-200)));
      } catch (e) {
        if (e.name === 'AbortError') { stats.left++; continue; }
        stats.bad.push(String(e));
      }
    }
  }
  const t0 = Date.now();
  await Promise.all(Array.from({ length: CLIENTS }, (_, k) => client(k)));
  const elapsed = (Date.now() - t0) / 1000;
  // back to idle
  let m;
  for (let i = 0; i < 100; i++) {
    m = await metrics(srv.url);
    if (m.hai_slots_busy === 0 && m.hai_queue_depth === 0) break;
    await new Promise((z) => setTimeout(z, 100));
  }
  // the client's keep-alive pool lets its idle connections go after a few seconds; then the
  // server must be back to the descriptors it started with
  let fd1 = fds(pid);
  for (let i = 0; i < 100 && fd1 > fd0 + 2; i++) { await new Promise((z) => setTimeout(z, 100)); fd1 = fds(pid); }
  const rss1 = rssMB(pid);
  const ttft = stats.ttft.sort((a, b) => a - b), pct = (p) => ttft[Math.min(ttft.length - 1, Math.floor(p * ttft.length))];
  console.log(`# load: ${stats.done} completed, ${stats.errors} ended in an error event, ${stats.left} left early, ` +
    `${stats.rejected} rejected with 429 in ${elapsed.toFixed(1)} s = ${((stats.done + stats.errors) / elapsed).toFixed(2)} requests/s; ` +
    `time to first token p50 ${pct(0.5)?.toFixed(0)} ms, p95 ${pct(0.95)?.toFixed(0)} ms; fds ${fd0} -> ${fd1}; ` +
    `RSS ${rss0.toFixed(0)} -> ${rss1.toFixed(0)} MiB; server disconnects seen ${m.hai_client_disconnects_total}`);
  assert.deepEqual(stats.bad, []);
  assert.ok(stats.done > 10, 'requests completed');
  assert.ok(stats.left > 0, 'some clients left');
  assert.equal(m.hai_slots_busy, 0);
  assert.equal(m.hai_queue_depth, 0);
  assert.ok(fd1 <= fd0 + 2, `file descriptors ${fd0} -> ${fd1}`);
  // Under AddressSanitizer freed memory waits in its quarantine (256 MiB by default), so RSS says
  // nothing there; leaks are caught instead by LeakSanitizer when the server exits (its exit
  // status is checked below).
  const rssBound = /detect_leaks=1/.test(process.env.ASAN_OPTIONS || '') ? 320 : 64;
  assert.ok(rss1 < rss0 + rssBound, `memory ${rss0} -> ${rss1} MiB`);
  assert.equal(srv.proc.exitCode, null, 'the server is still running');
  assert.equal(await srv.stop(), 0);
});
