// Tool calls' cost as an app sees it: streamed chat completions with OpenAI's default sampling
// (temperature 1, top_p 1), one client, interleaved (A B C A B C ...: the machine's drift hits
// all three): the same conversation with tools and tool_choice "required" (the grammar holds the
// output from its first token), with tools and "auto" (the model writes freely; the grammar waits
// for a call's marker), and without tools. Reports decode tok/s of each (tokens after the first
// over the time between the first and the last chunk of content or call arguments), the ratios,
// and whether every forced call named a tool and carried arguments with its required keys.
// Then the forced calls whole (not streamed), with the server's own decode timing where it
// reports one (llama-server cannot stream tool calls).
// usage: node bench/tools.mjs URL [--tokens 256] [--rounds 4]
import { streamChat } from './sse.mjs';

const args = process.argv.slice(2);
const url = args[0];
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const maxTokens = Number(opt('--tokens', '256'));
const rounds = Number(opt('--rounds', '4'));

const tools = [
  { type: 'function', function: { name: 'set_timer', description: 'Start a countdown timer on the device',
    parameters: { type: 'object', properties: { minutes: { type: 'integer', minimum: 1, maximum: 600 }, label: { type: 'string', maxLength: 40 } }, required: ['minutes', 'label'] } } },
  { type: 'function', function: { name: 'order_coffee', description: 'Order a coffee',
    parameters: { type: 'object', properties: { drink: { enum: ['espresso', 'latte', 'cappuccino'] }, size: { enum: ['small', 'medium', 'large'] },
      notes: { type: 'array', items: { type: 'string', maxLength: 30 }, maxItems: 4 } }, required: ['drink', 'size', 'notes'] } } },
  { type: 'function', function: { name: 'search_notes', description: 'Search the notes on the device',
    parameters: { type: 'object', properties: { query: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 50 } }, required: ['query', 'limit'] } } },
];
const required = Object.fromEntries(tools.map((t) => [t.function.name, t.function.parameters.required]));
const messages = [{ role: 'user', content: 'Set a timer for the pasta, then order me a latte.' }];

async function stream(body) {
  const r = await streamChat(url, { max_tokens: maxTokens, messages, ...body });
  return { tps: (r.tokens - 1) / r.decodeS, tokens: r.tokens, calls: r.calls };
}

const mean = (v) => v.reduce((s, x) => s + x, 0) / v.length;
await stream({}); // warm up
try {
  const runs = { required: [], auto: [], none: [] };
  let valid = 0, forced = 0;
  for (let r = 0; r < rounds; r++) {
    const a = await stream({ seed: r, tools, tool_choice: 'required' });
    forced++;
    try {
      const ok = a.calls.length > 0 && a.calls.every((c) => required[c.name] && required[c.name].every((k) => k in JSON.parse(c.arguments)));
      if (ok) valid++;
    } catch { /* not JSON: counted as invalid */ }
    runs.required.push(a);
    runs.auto.push(await stream({ seed: r, tools, tool_choice: 'auto' }));
    runs.none.push(await stream({ seed: r }));
  }
  const tps = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, mean(v.map((x) => x.tps))]));
  console.log('| request | decode tok/s | tokens | vs. no tools |');
  console.log('|---|---|---|---|');
  for (const [k, v] of Object.entries(runs))
    console.log(`| ${k === 'none' ? 'no tools' : 'tools, tool_choice ' + k} | ${tps[k].toFixed(1)} | ${mean(v.map((x) => x.tokens)).toFixed(0)} | ${(tps[k] / tps.none).toFixed(3)} |`);
  console.log(`forced calls with a tool's name and its required arguments: ${valid}/${forced}`);
} catch (e) {
  console.log(`streamed requests with tools refused: ${e.message}`);
}

// Servers that cannot stream tool calls (llama-server answers "Cannot use tools with stream"):
// the forced calls once more, whole, with the server's own decode timing where it reports one.
{
  let ok = 0, n = 0;
  const speeds = [];
  for (let r = 0; r < rounds; r++) {
    const res = await fetch(url + '/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages, max_tokens: maxTokens, seed: r, tools, tool_choice: 'required' }) });
    const j = await res.json();
    n++;
    const calls = j.choices?.[0]?.message?.tool_calls ?? [];
    try { if (calls.length && calls.every((c) => required[c.function.name] && required[c.function.name].every((k) => k in JSON.parse(c.function.arguments)))) ok++; } catch { /* invalid */ }
    if (j.timings?.predicted_per_second) speeds.push(j.timings.predicted_per_second);
  }
  console.log(`whole (not streamed) forced calls with a tool's name and its required arguments: ${ok}/${n}` +
    (speeds.length ? `; decode ${mean(speeds).toFixed(1)} tok/s by the server's own timing` : ''));
}
