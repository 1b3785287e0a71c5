// Constrained decoding's cost as an app sees it: streamed chat completions with OpenAI's default
// sampling (temperature 1, top_p 1) against hai serve, each request with a response_format
// json_schema and the same request without one, interleaved (A B A B ...: the machine's drift hits
// both), one client. Reports decode tok/s (tokens after the first over the time between the first
// and last content chunk) of each, their ratio, and whether every constrained answer parsed.
// usage: node bench/structured.mjs URL [--tokens 256] [--rounds 4]
import { streamChat } from './sse.mjs';

const args = process.argv.slice(2);
const url = args[0];
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const maxTokens = Number(opt('--tokens', '256'));
const rounds = Number(opt('--rounds', '4'));

const schemas = {
  order: { type: 'object', properties: { drink: { enum: ['espresso', 'latte', 'flat white'] }, size: { enum: ['small', 'large'] },
    notes: { type: 'array', items: { type: 'string' } }, quantity: { type: 'integer', minimum: 1, maximum: 10 } },
  required: ['drink', 'size', 'notes', 'quantity'], additionalProperties: false },
  profile: { type: 'object', properties: { name: { type: 'string', maxLength: 40 }, email: { type: 'string' },
    age: { type: 'integer', minimum: 0, maximum: 130 }, bio: { type: 'string' } }, required: ['name', 'email', 'age', 'bio'], additionalProperties: false },
  table: { type: 'array', items: { type: 'object', properties: { id: { type: 'integer' }, label: { type: 'string' }, score: { type: 'number' } },
    required: ['id', 'label', 'score'], additionalProperties: false } },
};

async function stream(body) {
  const r = await streamChat(url, { max_tokens: maxTokens, ...body });
  return { tps: (r.tokens - 1) / r.decodeS, tokens: r.tokens, text: r.text };
}

const messages = [{ role: 'user', content: 'Fill in the record.' }];
await stream({ messages }); // warm up
console.log('| schema | constrained tok/s | tokens | unconstrained tok/s | tokens | ratio | valid JSON |');
console.log('|---|---|---|---|---|---|---|');
let sumC = 0, sumU = 0;
for (const [name, schema] of Object.entries(schemas)) {
  const c = [], u = [];
  let valid = 0;
  for (let r = 0; r < rounds; r++) {
    const a = await stream({ messages, seed: r, response_format: { type: 'json_schema', json_schema: { name, schema } } });
    try { JSON.parse(a.text); valid++; } catch { /* counted */ }
    c.push(a);
    u.push(await stream({ messages, seed: r }));
  }
  const mean = (v) => v.reduce((s, x) => s + x, 0) / v.length;
  const tc = mean(c.map((x) => x.tps)), tu = mean(u.map((x) => x.tps));
  sumC += tc, sumU += tu;
  console.log(`| ${name} | ${tc.toFixed(1)} | ${mean(c.map((x) => x.tokens)).toFixed(0)} | ${tu.toFixed(1)} | ` +
    `${mean(u.map((x) => x.tokens)).toFixed(0)} | ${(tc / tu).toFixed(3)} | ${valid}/${rounds} |`);
}
console.log(`| all | ${(sumC / 3).toFixed(1)} | | ${(sumU / 3).toFixed(1)} | | ${(sumC / sumU).toFixed(3)} | |`);
