// Starts `hai serve` on a free loopback port for a test and stops it afterwards.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';

export const hai = process.env.HAI_BIN;
export const shared = process.env.HAI_SHARED_DIR;
assert.ok(hai && existsSync(hai), `HAI_BIN must name the hai binary (got ${hai})`);
assert.ok(shared && existsSync(join(shared, 'reference')), `HAI_SHARED_DIR must hold reference/ (got ${shared})`);

export const refModel = (name = 'qwen2-s-Q8_0.gguf') => join(shared, 'reference', name);

export async function startServer(args = [], model = refModel()) {
  const proc = spawn(hai, ['serve', '-m', model, '--port', '0', '-t', '2', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('hai serve did not start: ' + log)), 20000);
    proc.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/on (http:\/\/[0-9.]+:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`hai serve exited with ${code}: ${log}`)); });
  });
  return {
    url, proc, log: () => log,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      return await new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    },
  };
}

// Parses the Prometheus text of /metrics into { 'name{labels}': value }.
export async function metrics(url, headers = {}) {
  const text = await (await fetch(url + '/metrics', { headers })).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}
