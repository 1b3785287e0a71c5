// hai's Jinja engine (hai chat-format --jinja) against @huggingface/jinja on the chat templates
// real models ship: every template in ../shared/templates and the tokenizer packages' templates,
// with conversations that exercise what they branch on (system prompts, multi-turn, tools, tool
// calls and results, reasoning, generation prompt on and off). The output must be identical, and
// where @huggingface/jinja refuses (raise_exception, a missing variable), hai must refuse too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';

const hai = process.env.HAI_BIN;
const shared = process.env.HAI_SHARED_DIR;
const hf = process.env.HAI_HF_DIR;
assert.ok(hai && existsSync(hai), `HAI_BIN must name the hai binary (got ${hai})`);
assert.ok(shared && existsSync(join(shared, 'templates')), `HAI_SHARED_DIR must hold templates/ (got ${shared})`);
assert.ok(hf && existsSync(hf), `HAI_HF_DIR must hold the fetched tokenizers (got ${hf})`);

const templates = {};
for (const f of readdirSync(join(shared, 'templates')).filter((f) => f.endsWith('.jinja')).sort())
  templates[f] = readFileSync(join(shared, 'templates', f), 'utf8');
for (const d of readdirSync(hf).sort()) {
  const cfg = join(hf, d, 'tokenizer_config.json');
  if (!existsSync(cfg)) continue;
  const t = JSON.parse(readFileSync(cfg, 'utf8')).chat_template;
  if (typeof t === 'string') templates[`${d} (tokenizer_config.json)`] = t;
  else if (Array.isArray(t)) for (const e of t) templates[`${d} ${e.name} (tokenizer_config.json)`] = e.template;
}

const tools = [
  { type: 'function', function: { name: 'get_weather', description: 'Get the weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string', description: 'The city' },
      unit: { type: 'string', description: 'Degrees', enum: ['celsius', 'fahrenheit'] } }, required: ['city'] } } },
  { type: 'function', function: { name: 'set_timer', description: 'Set a timer',
    parameters: { type: 'object', properties: { minutes: { type: 'integer', description: 'How long' } }, required: ['minutes'] } } },
];
const call = { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris', unit: 'celsius' } } };
const callStr = { id: 'call_2', type: 'function', function: { name: 'set_timer', arguments: '{"minutes": 5}' } };
const S = (content) => ({ role: 'system', content });
const U = (content) => ({ role: 'user', content });
const A = (content) => ({ role: 'assistant', content });

const scenarios = [
  { name: 'one user turn', vars: { messages: [U('Hello')], add_generation_prompt: true } },
  { name: 'system and two turns', vars: { messages: [S('You are terse.'), U('Hi there'), A('Hello!'), U('What is 2+2?')], add_generation_prompt: true } },
  { name: 'full turns, no prompt', vars: { messages: [U('Name a color.'), A('Blue.'), U('Another?'), A('Green.')], add_generation_prompt: false } },
  { name: 'whitespace and unicode', vars: { messages: [S('  Be kind. \n'), U('héllo 🦙 中文\t'), A('\n Très bien ✅ '), U('ok')], add_generation_prompt: true } },
  { name: 'reasoning in history', vars: { messages: [U('Solve x+1=3'), A('<think>\nsubtract 1\n</think>\n\nx = 2'), U('And x+2=5?')], add_generation_prompt: true } },
  { name: 'thinking off', vars: { messages: [U('Hi')], add_generation_prompt: true, enable_thinking: false } },
  { name: 'tools offered', vars: { messages: [S('You help.'), U('Weather in Paris?')], tools, add_generation_prompt: true } },
  { name: 'tools, no system', vars: { messages: [U('Set a 5 minute timer')], tools, add_generation_prompt: true } },
  { name: 'a tool call and its result', vars: { messages: [U('Weather in Paris?'), { role: 'assistant', content: null, tool_calls: [call] },
    { role: 'tool', tool_call_id: 'call_1', name: 'get_weather', content: '{"temp": 21}' }], tools, add_generation_prompt: true } },
  { name: 'a call with string arguments', vars: { messages: [U('Timer please'), { role: 'assistant', content: '', tool_calls: [callStr] },
    { role: 'tool', tool_call_id: 'call_2', content: 'done' }, A('Timer set.')], tools, add_generation_prompt: false } },
  { name: 'functions and datetime as strings', vars: { messages: [S('You help.'), U('Weather in Paris?'), A('Checking.'), U('Thanks')],
    functions: JSON.stringify(tools.map((t) => t.function)), datetime: '2026-11-15 10:00', add_generation_prompt: true } },
  { name: 'date and custom tokens', vars: { messages: [U('What day is it?')], add_generation_prompt: true, date_string: '15 Nov 2026',
    bos_token: '<s>', eos_token: '</s>' } },
];

// what @huggingface/jinja cannot do that Jinja can (its own limits, not the template's refusals):
// such a scenario is not compared, but hai must still render it
const hfLimits = [/Cannot unpack non-iterable type: TupleValue/];

function haiRender(tmpl, vars) {
  const file = join(process.env.TMPDIR || '/tmp', `hai-jinja-${process.pid}.jinja`);
  writeFileSync(file, tmpl);
  return spawnSync(hai, ['chat-format', '--jinja', '--template', file], { input: JSON.stringify(vars), encoding: 'utf8' });
}

for (const [name, tmpl] of Object.entries(templates)) {
  test(`jinja: ${name}`, () => {
    let compared = 0, refused = 0;
    for (const sc of scenarios) {
      const vars = { bos_token: '<s>', eos_token: '</s>', ...sc.vars };
      let want = null, why = null;
      try { want = new Template(tmpl).render(structuredClone(vars)); } catch (e) { why = String(e.message || e); }
      // strftime_now and the like: no date in either output may differ from the other's by the day
      const got = haiRender(tmpl, vars);
      if (want === null && hfLimits.some((re) => re.test(why))) {
        assert.equal(got.status, 0, `${name} / ${sc.name}: hai failed where only @huggingface/jinja has a limit (${why}): ${got.stderr}`);
        continue;
      }
      if (want === null) {
        assert.notEqual(got.status, 0, `${name} / ${sc.name}: @huggingface/jinja refused (${why}) but hai rendered:\n${got.stdout}`);
        refused++;
        continue;
      }
      assert.equal(got.status, 0, `${name} / ${sc.name}: hai failed: ${got.stderr}`);
      assert.equal(got.stdout, want, `${name} / ${sc.name}`);
      compared++;
    }
    assert.ok(compared > 0, `${name}: no scenario rendered (${refused} refused by both)`);
  });
}

// Constructs one at a time (what templates not seen here may use), with the same rule.
const snippets = [
  '{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ 2 ** 10 }}|{{ 7 / 2 }}|{{ 4 / 2 }}|{{ 1.5 + 1 }}|{{ 3.0 }}|{{ 0.1 + 0.2 }}',
  '{{ "a" ~ 1 ~ 2.5 ~ true }}|{{ "x" + "y" }}|{{ "n=" + 3 }}|{{ [1, 2] + [3] }}|{{ "abc"[1] }}|{{ "abcdef"[1:4] }}|{{ "abcdef"[::-1] }}|{{ [1,2,3,4][-2:] }}',
  '{{ none }}|{{ true }}|{{ false }}|{{ undefined_thing }}|{{ [1, "a", none, true, 2.5] }}|{{ {"k": [1, {"z": null}]} }}',
  '{{ x == none }}|{{ y is defined }}|{{ 1 == 1.0 }}|{{ "1" == 1 }}|{{ true == 1 }}|{{ [1] == [1] }}|{{ "a" in "cat" }}|{{ 2 in [1, 2] }}|{{ "k" in {"k": 1} }}|{{ 3 not in [1] }}',
  '{{ "  hi  " | trim }}|{{ "Hello World" | lower }}|{{ "hello world" | title }}|{{ "hello" | capitalize }}|{{ "abc" | upper }}|{{ "a-b-c" | replace("-", "+") }}|{{ "aaa".replace("a", "b", 2) }}',
  '{{ "a,b,,c".split(",") }}|{{ "  x  y ".split() }}|{{ "a b c".split(" ", 1) }}|{{ "abc".startswith("ab") }}|{{ "abc".endswith(("x", "c")) }}|{{ " s ".strip() }}|{{ "xy".lstrip() }}',
  '{{ [3, 1, 2] | sort }}|{{ [3, 1, 2] | sort(reverse=true) }}|{{ ["b", "A", "c"] | sort }}|{{ [1, 2, 2, 3] | unique | list }}|{{ [1, 2, 3] | reverse | list }}|{{ [1, 2] | first }}|{{ [1, 2] | last }}|{{ [1, 2, 3] | length }}|{{ "héllo" | length }}',
  '{{ ["a", "b"] | join(", ") }}|{{ [1, 2] | join }}|{{ {"a": 1, "b": 2} | items | list }}|{{ {"a": 1}.get("a") }}|{{ {"a": 1}.get("b", 9) }}|{{ {"a": 1}.get("b") }}|{{ {"a": 1, "b": 2}.keys() | list }}',
  '{{ {"b": 1, "a": [1, 2]} | tojson }}|{{ {"b": 1, "a": [1, 2]} | tojson(indent=2) }}|{{ {"b": 1, "a": "é\\n\\"q\\""} | tojson(ensure_ascii=true) }}|{{ {"b": 1, "a": 2} | tojson(sort_keys=true) }}|{{ [1, {"x": 1}] | tojson(separators=(",", ":")) }}|{{ 2.0 | tojson }}|{{ "x" | tojson }}',
  '{% for x in [10, 20, 30] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}:{{ x }};{% endfor %}',
  '{% for k, v in {"a": 1, "b": 2} | items %}{{ k }}={{ v }},{% endfor %}|{% for x in [] %}no{% else %}empty{% endfor %}|{% for x in [1, 2, 3, 4] if x is even %}{{ x }}{% endfor %}',
  '{% for x in [1, 2, 3, 4, 5] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}',
  '{% set ns = namespace(total=0, seen=false) %}{% for x in [1, 2, 3] %}{% set ns.total = ns.total + x %}{% set local = x %}{% endfor %}{{ ns.total }}|{{ local is defined }}',
  '{% macro greet(name, punct="!") %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet("Ann") }} {{ greet("Bo", punct="?") }} {{ greet(name="Cy") }}',
  '{% macro box() %}[{{ caller() }}]{% endmacro %}{% call box() %}inside{% endcall %}',
  '{% filter upper %}shout {{ "this" }}{% endfilter %}|{% set block %}  captured {{ 1 + 1 }} {% endset %}{{ block | trim }}',
  '{{ 1 if true else 2 }}|{{ "yes" if none else "no" }}|{{ "x" if false }}|{{ none or "d" }}|{{ 0 and 1 }}|{{ [] or [1] }}|{{ not [] }}',
  '{{ [{"n": "a", "t": 1}, {"n": "b"}] | selectattr("t") | list | length }}|{{ [{"n": "a", "t": 1}, {"n": "b"}] | rejectattr("t") | map(attribute="n") | list }}|{{ [{"r": "user"}, {"r": "tool"}] | selectattr("r", "equalto", "tool") | list | length }}',
  '{{ x is string }}|{{ "s" is string }}|{{ 1 is number }}|{{ 1 is integer }}|{{ {} is mapping }}|{{ [] is iterable }}|{{ none is none }}|{{ 3 is odd }}|{{ "ABC" is upper }}|{{ true is boolean }}',
  '{{ "line1\\nline2\\n\\nline4" | indent(2) }}|{{ "a\\nb" | indent(4, true) }}|{{ "x" | default("d") }}|{{ y | default("d") }}|{{ "" | default("d", true) }}|{{ "12" | int + 1 }}|{{ "1.5" | float }}|{{ 3.7 | int }}|{{ -3 | abs }}',
  'a  {%- if true %} b {% endif -%}  c\n  {% if true %}\n    d\n  {% endif %}\n{# comment #}e {#- trimmed -#} f\n{{- "g" -}}\n h',
  '{{ raise_exception("refused: " ~ 42) }}',
  '{% for k, v in {"b": 2, "a": 3, "C": 1} | dictsort %}{{ k }}{{ v }}{% endfor %}|{% for k, v in {"b": 2, "a": 3} | dictsort(by="value", reverse=true) %}{{ k }}{% endfor %}',
  '{{ range(3) | list }}|{{ range(1, 7, 2) | list }}|{{ range(5, 0, -2) | list }}|{% set a, b = 1, 2 %}{{ a + b }}|{{ (1, 2) | length }}|{{ [1, 2][5] }}|{{ {"a": {"b": 3}}.a.b }}',
];

test('jinja: constructs one at a time', () => {
  let compared = 0;
  for (const [i, tmpl] of snippets.entries()) {
    const vars = { x: null };
    let want = null, why = null;
    try { want = new Template(tmpl).render(structuredClone(vars)); } catch (e) { why = String(e.message || e); }
    const got = haiRender(tmpl, vars);
    if (want === null && hfLimits.some((re) => re.test(why))) {
      assert.equal(got.status, 0, `snippet ${i}: hai failed where only @huggingface/jinja has a limit (${why}): ${got.stderr}`);
      continue;
    }
    if (want === null) {
      assert.notEqual(got.status, 0, `snippet ${i}: @huggingface/jinja refused (${why}) but hai rendered:\n${got.stdout}`);
      continue;
    }
    assert.equal(got.status, 0, `snippet ${i}: hai failed: ${got.stderr}\n${tmpl}`);
    assert.equal(got.stdout, want, `snippet ${i}: ${tmpl}`);
    compared++;
  }
  assert.ok(compared >= snippets.length - 3, `only ${compared} of ${snippets.length} snippets rendered by @huggingface/jinja`);
});

// The server's path: a conversation as OpenAI's API sends it (an assistant turn with content null
// and tool_calls whose arguments are JSON text, tool results with tool_call_id) through
// `hai chat-format` (hai_chat_message, as hai serve builds them) must render as @huggingface/jinja
// renders the same conversation in Hugging Face's shape (arguments as an object) - or, for a
// template that joins arguments to text, with the arguments as text.
test('jinja: an OpenAI-shaped tool history renders as the Hugging Face-shaped one', () => {
  const openai = [U('Weather in Paris?'),
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris", "unit": "celsius"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 21}' }, A('It is 21C.'), U('Thanks')];
  const hf = structuredClone(openai);
  hf[1].tool_calls[0].function.arguments = JSON.parse(hf[1].tool_calls[0].function.arguments);
  let compared = 0;
  for (const [name, tmpl] of Object.entries(templates)) {
    const file = join(process.env.TMPDIR || '/tmp', `hai-jinja-tools-${process.pid}.jinja`);
    writeFileSync(file, tmpl);
    const got = spawnSync(hai, ['chat-format', '--template', file], { input: JSON.stringify(openai), encoding: 'utf8' });
    let want = null, why = null;
    const render = (messages) => new Template(tmpl).render({ messages: structuredClone(messages), add_generation_prompt: true, bos_token: '', eos_token: '' });
    try { want = render(hf); } catch (e) { why = String(e.message || e); }
    // a template that joins the arguments to text (DeepSeek R1's) gets them as OpenAI's text, not a map's name
    if (want !== null && want.includes('[object Map]')) want = render(openai);
    if (want === null) continue; // a template that refuses the history (checked above, with the variables given whole)
    if (/strftime_now|Today Date/.test(tmpl)) continue; // the date line is the template's own default; the rest is covered above
    assert.equal(got.status, 0, `${name}: hai failed: ${got.stderr}`);
    assert.equal(got.stdout, want, name);
    compared++;
  }
  assert.ok(compared >= 6, `only ${compared} templates compared`);
});
