// hai serve --context-shift: a client that drops a conversation's older turns to fit (as chat apps
// do) finds the system prompt and the recent turns cached - the slot's cache moved down over the
// dropped turns - where without the option only the system prompt is. Reported by the server as
// usage.prompt_tokens_details.cached_tokens.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from './serve.mjs';

const model = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'hai-tiny.gguf');
const servers = [];
after(async () => { for (const s of servers) await s.stop(); });

const turn = (i) => `Question ${i}: please tell me about the number ${i}, its square, its cube and whether it is prime or not.`;
const system = { role: 'system', content: 'You are brief.' };
const history = [system];
for (let i = 1; i <= 3; i++) history.push({ role: 'user', content: turn(i) }, { role: 'assistant', content: `The number ${i} is small.` });

async function ask(url, messages) {
  const r = await fetch(url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages, max_tokens: 4, temperature: 0 }) });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()).usage;
}

for (const shift of [true, false]) {
  test(`a conversation that dropped its first turn, ${shift ? 'with' : 'without'} --context-shift`, async () => {
    const s = await startServer(['--parallel', '1', '-t', '1', ...(shift ? ['--context-shift'] : [])], model);
    servers.push(s);
    await ask(s.url, [...history, { role: 'user', content: turn(4) }]);
    // the client drops the first question and its answer, and asks the next
    const dropped = [system, ...history.slice(3), { role: 'user', content: turn(4) }, { role: 'assistant', content: 'Four.' }, { role: 'user', content: turn(5) }];
    const u = await ask(s.url, dropped);
    const cached = u.prompt_tokens_details.cached_tokens;
    if (shift) assert.ok(cached > 0.6 * u.prompt_tokens, `${cached} of ${u.prompt_tokens} prompt tokens cached`);
    else assert.ok(cached < 0.2 * u.prompt_tokens, `${cached} of ${u.prompt_tokens} prompt tokens cached without the shift`);
    console.log(`${shift ? 'shift' : 'no shift'}: ${cached} of ${u.prompt_tokens} prompt tokens cached`);
  });
}
