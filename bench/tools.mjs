// Tool calls' cost as an app sees it, against an OpenAI-compatible server: the same conversation
// with tools and tool_choice "required" (a grammar holds the output from its first token), with
// tools and "auto" (the model writes freely; hai's grammar waits for a call's marker), and without
// tools; OpenAI's default sampling (temperature 1, top_p 1), one client, the three interleaved
// (A B C A B C ...: the machine's drift hits all). Whole responses, since llama-server cannot
// stream tool calls. Decode tok/s of a request = (completion tokens - 1) / (its time - the time of
// a 1-token request on the same, already cached, prompt): the prompt's reading and the request's
// own overhead taken out alike on every server. Also: whether every forced call named a tool and
// carried its required arguments.
// usage: node bench/tools.mjs URL [--tokens 256] [--rounds 4]
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

async function post(body) {
  const t0 = performance.now();
  const r = await fetch(url + '/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages, ...body }) });
  const j = await r.json();
  if (r.status !== 200) throw new Error(`status ${r.status}: ${JSON.stringify(j)}`);
  return { j, ms: performance.now() - t0 };
}

async function timed(body) {
  await post({ ...body, max_tokens: 1 }); // the prompt read and cached
  const one = await post({ ...body, max_tokens: 1 });
  const full = await post({ ...body, max_tokens: maxTokens });
  const tokens = full.j.usage.completion_tokens;
  return { tps: (tokens - 1) / ((full.ms - one.ms) / 1000), tokens, calls: full.j.choices[0].message.tool_calls ?? [] };
}

const mean = (v) => v.reduce((s, x) => s + x, 0) / v.length;
const runs = { required: [], auto: [], none: [] };
let valid = 0;
for (let r = 0; r < rounds; r++) {
  const a = await timed({ seed: r, tools, tool_choice: 'required' });
  try {
    if (a.calls.length && a.calls.every((c) => required[c.function.name] && required[c.function.name].every((k) => k in JSON.parse(c.function.arguments)))) valid++;
  } catch { /* not JSON: invalid */ }
  runs.required.push(a);
  runs.auto.push(await timed({ seed: r, tools, tool_choice: 'auto' }));
  runs.none.push(await timed({ seed: r }));
}
const tps = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, mean(v.map((x) => x.tps))]));
console.log('| request | decode tok/s | tokens | vs. no tools |');
console.log('|---|---|---|---|');
for (const [k, v] of Object.entries(runs))
  console.log(`| ${k === 'none' ? 'no tools' : 'tools, tool_choice ' + k} | ${tps[k].toFixed(1)} | ${mean(v.map((x) => x.tokens)).toFixed(0)} | ${(tps[k] / tps.none).toFixed(3)} |`);
console.log(`forced calls with a tool's name and its required arguments: ${valid}/${rounds}`);
