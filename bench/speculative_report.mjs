// The tables of bench/speculative.sh from its JSON lines: hai-spell's end-to-end figures per
// drafter, the cost of checking drafts on the 1.1B geometry, the speed-up those two give a 1.1B
// model, and llama.cpp's figures when they were measured.
import { readFileSync } from 'node:fs';

const rows = readFileSync(process.argv[2], 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.floor(s.length / 2)] : NaN; };
const sum = (a) => a.reduce((x, y) => x + y, 0);
const cases = ['F16 lookup', 'F16 by Q4_0', 'Q8_0 by Q4_0'];

console.log('hai-spell (4.75M parameters), held-out paragraphs, greedy; medians over the paragraphs');
console.log('| drafter | plain t/s | drafted t/s | speed-up | drafts kept | tokens a pass |');
console.log('|---|---|---|---|---|---|');
const accept = {};
for (const c of cases) {
  const r = rows.filter((x) => x.case === c && !x.llama);
  if (!r.length) continue;
  const drafted = sum(r.map((x) => x.drafted)), kept = sum(r.map((x) => x.kept));
  const passes = sum(r.map((x) => (x.drafts_per_pass > 0 ? x.drafted / x.drafts_per_pass : 0)));
  accept[c] = { share: drafted ? kept / drafted : 0, perPass: med(r.map((x) => x.tokens_per_pass)), draftsPerPass: passes ? drafted / passes : 0 };
  console.log(`| ${c} | ${med(r.map((x) => x.plain_tokens_per_s)).toFixed(1)} | ${med(r.map((x) => x.drafted_tokens_per_s)).toFixed(1)} | ` +
    `${med(r.map((x) => x.speedup)).toFixed(2)}x | ${kept} of ${drafted} (${(100 * accept[c].share).toFixed(0)}%) | ` +
    `${accept[c].perPass.toFixed(2)} |`);
}

// the cost of checking k drafts, in decode steps, per file type of the 1.1B geometry
const geo = {};
for (const r of rows.filter((x) => x.geometry)) {
  geo[r.geometry] ??= { steps: {} };
  if (r.test === 'tg32') geo[r.geometry].tps = r.tokens_per_s;
  else geo[r.geometry].steps[r.drafts] = r.decode_steps;
}
const ks = [...new Set(Object.values(geo).flatMap((g) => Object.keys(g.steps).map(Number)))].sort((a, b) => a - b);
if (ks.length) {
  console.log('\nTinyLlama-1.1B geometry: one pass checking k drafts, in decode steps');
  console.log(`| file | decode t/s | ${ks.map((k) => `k=${k}`).join(' | ')} |`);
  console.log(`|---|---|${ks.map(() => '---').join('|')}|`);
  for (const [t, g] of Object.entries(geo))
    console.log(`| ${t} | ${g.tps.toFixed(1)} | ${ks.map((k) => (g.steps[k] ?? NaN).toFixed(2)).join(' | ')} |`);
}

// a 1.1B model with hai-spell's acceptance: each pass gives (tokens a pass) tokens and costs the
// check of the drafts it made (interpolated between the k measured) plus, for a draft model, its
// own steps (one per draft, at its speed against the model's)
const checkCost = (g, k) => {
  const lo = ks.filter((x) => x <= k).pop() ?? ks[0], hi = ks.find((x) => x >= k) ?? ks[ks.length - 1];
  const a = lo === 0 ? 1 : g.steps[lo], b = g.steps[hi];
  return hi === lo ? b : a + (b - a) * (k - lo) / (hi - lo);
};
const projected = (target, c, drafter) => {
  const a = accept[c], g = geo[target];
  if (!a || !g || (drafter && !geo[drafter])) return null;
  const k = a.draftsPerPass;
  const draftCost = drafter ? k * (g.tps / geo[drafter].tps) : 0;
  return { k, speedup: a.perPass / (checkCost(g, k) + draftCost) };
};
if (ks.length && Object.keys(accept).length) {
  console.log('\nProjected for the 1.1B geometry with those shares kept (tokens a pass / (check + draft steps))');
  console.log('| case | drafts a pass | speed-up |');
  console.log('|---|---|---|');
  for (const [c, target, drafter] of [['F16 lookup', 'F16', null], ['F16 by Q4_0', 'F16', 'Q4_0'], ['Q8_0 by Q4_0', 'Q8_0', 'Q4_0']]) {
    const p = projected(target, c, drafter);
    if (p) console.log(`| ${c} | ${p.k.toFixed(2)} | ${p.speedup.toFixed(2)}x |`);
  }
}

const ll = rows.filter((x) => x.llama && x.case);
if (ll.length) {
  const plain = Object.fromEntries(rows.filter((x) => x.llama && x.plain).map((x) => [x.plain.includes('Q8_0') ? 'Q8_0' : 'F16', x.tokens_per_s]));
  console.log('\nllama.cpp on the same files and paragraphs (llama-lookup, llama-speculative; plain: llama-bench tg64)');
  console.log('| drafter | plain t/s | drafted t/s | speed-up | drafts kept |');
  console.log('|---|---|---|---|---|');
  for (const c of cases) {
    const r = ll.filter((x) => x.case === c);
    if (!r.length) continue;
    const base = plain[c.startsWith('Q8_0') ? 'Q8_0' : 'F16'], tps = med(r.map((x) => x.tokens_per_s));
    const drafted = sum(r.map((x) => x.drafted)), kept = sum(r.map((x) => x.kept));
    console.log(`| ${c} | ${base?.toFixed(1) ?? '-'} | ${tps.toFixed(1)} | ${base ? (tps / base).toFixed(2) + 'x' : '-'} | ` +
      `${kept} of ${drafted} (${drafted ? (100 * kept / drafted).toFixed(0) : 0}%) |`);
  }
}
