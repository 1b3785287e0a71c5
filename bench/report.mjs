// The table of bench/tinyllama.sh: hai against llama.cpp's figures (CPU build of February 2025, 2
// threads, this machine kind, the same geometry) and hai's own earlier numbers, with every decode
// figure also as a share of the bound memory bandwidth sets (bandwidth / bytes read per token).
import { readFileSync } from 'node:fs';

const llamacpp = {
  Q4_0: { pp512: 150.6, tg128: 50.2, tgDeep: 24.6, ppDeep: 77.2, rss4096: 1.26e9 },
  Q8_0: { pp512: 106.9, tg128: 33.6 },
  Q4_K_M: { pp512: 71.2, tg128: 42.6 },
};
// hai before the performance work (issue 4's kernels: per-row dots, two int8 activation levels)
const before = { Q4_0: { pp512: 23, tg128: 8.5 } };

const rows = readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const bws = rows.filter((r) => r.membw || r.membw_after).map((r) => (r.membw || r.membw_after).gbs_n);
const bw = Math.max(...bws); // GB/s, the better of the two measurements around the run
const get = (type, test) => rows.find((r) => r.type === type && r.test === test);
const f = (v, d = 1) => (v === undefined || v === null ? '-' : Number(v).toFixed(d));
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}x` : '-');

console.log(`memory bandwidth: ${bws.map((b) => b.toFixed(1)).join(' / ')} GB/s (before / after the run, ${rows.find((r) => r.membw)?.membw.threads} threads); bound = ${bw.toFixed(1)} GB/s / bytes read per token\n`);
console.log('| type | test | hai tok/s | llama.cpp | hai / llama.cpp | hai before | bound tok/s | % of bound |');
console.log('|---|---|---|---|---|---|---|---|');
for (const type of ['Q4_0', 'Q8_0', 'Q4_K_M']) {
  const L = llamacpp[type], B = before[type] || {};
  const pp = get(type, 'pp512'), tg = get(type, 'tg128'), deep = get(type, 'tg128@d2926'), ppd = get(type, 'pp2926');
  const bound = tg ? (bw * 1e9) / tg.decode_bytes : null;
  console.log(`| ${type} | pp512 | ${f(pp?.tokens_per_s)} | ${f(L.pp512)} | ${ratio(pp?.tokens_per_s, L.pp512)} | ${f(B.pp512)} | - | - |`);
  console.log(`| ${type} | tg128 | ${f(tg?.tokens_per_s)} | ${f(L.tg128)} | ${ratio(tg?.tokens_per_s, L.tg128)} | ${f(B.tg128)} | ${f(bound)} | ${tg && bound ? f((100 * tg.tokens_per_s) / bound, 0) + '%' : '-'} |`);
  console.log(`| ${type} | prefill 2926 | ${f(ppd?.tokens_per_s)} | ${f(L.ppDeep)} | ${ratio(ppd?.tokens_per_s, L.ppDeep)} | - | - | - |`);
  console.log(`| ${type} | tg128 after 2926 | ${f(deep?.tokens_per_s)} | ${f(L.tgDeep)} | ${ratio(deep?.tokens_per_s, L.tgDeep)} | - | ${f(bound)} | ${deep && bound ? f((100 * deep.tokens_per_s) / bound, 0) + '%' : '-'} |`);
}
const mem = get('Q4_0', 'tg128@ctx4096');
if (mem) console.log(`\npeak RSS generating 128 tokens with a 4096 context (Q4_0): hai ${(mem.peak_rss_bytes / 1e9).toFixed(2)} GB, llama.cpp ${(llamacpp.Q4_0.rss4096 / 1e9).toFixed(2)} GB`);
const dbw = rows.find((r) => r.decode_bw)?.decode_bw;
if (dbw)
  console.log(`decode kernels alone (bench_decode_bw: rows of 2048 weights streamed from 2 MiB pages, no forward pass), ${dbw.threads} threads: ${dbw.types
    .map((t) => `${t.type} ${t.gbs_n.toFixed(1)} GB/s (${((100 * t.gbs_n) / bw).toFixed(0)}%)`)
    .join(', ')} of ${bw.toFixed(1)} GB/s`);
const k = rows.find((r) => r.kernels)?.kernels;
console.log(`kernels: ${k}; weights read per token: ${['Q4_0', 'Q8_0', 'Q4_K_M'].map((t) => `${t} ${(get(t, 'tg128')?.decode_bytes / 1e6).toFixed(0)} MB`).join(', ')}`);
