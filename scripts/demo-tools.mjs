// The hybrid demo's tool calls: each prompt sent to a `hai serve --route-config` (its URL the first
// argument) as an app would send it - OpenAI's chat completions with the device's tools - and the
// answer printed: the call made (tool and arguments) or the text, and where it came from and why.
// usage: node scripts/demo-tools.mjs URL TOOLS.json NAME,NAME,... PROMPT...
import { readFileSync } from 'node:fs';

const [url, toolsFile, names, ...prompts] = process.argv.slice(2);
const wanted = names.split(',');
const tools = JSON.parse(readFileSync(toolsFile, 'utf8')).filter((t) => wanted.includes(t.function.name));
console.log(`tools offered: ${tools.map((t) => t.function.name).join(', ')}`);
for (const prompt of prompts) {
  console.log(`> ${prompt}`);
  const r = await fetch(url + '/v1/chat/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'hai-tiny', messages: [{ role: 'user', content: prompt }], tools, temperature: 0, max_tokens: 256 }),
  });
  const j = await r.json();
  if (!r.ok) {
    console.log(`  error ${r.status}: ${j.error?.message}`);
    process.exitCode = 1;
    continue;
  }
  const m = j.choices[0].message;
  for (const c of m.tool_calls ?? []) console.log(`  call ${c.function.name}(${c.function.arguments})`);
  if (m.content) console.log(`  ${m.content}`);
  const route = j.hai_route;
  const entropy = route.signals.mean_entropy !== undefined ? `, mean entropy ${route.signals.mean_entropy.toFixed(3)}` : '';
  console.log(`  [route: ${route.route}; reasons=${route.reasons.join(',')}${entropy}]`);
}
