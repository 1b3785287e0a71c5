// hai's chat formats against the real Jinja templates, rendered by @huggingface/jinja (the
// renderer of transformers.js): for every template and conversation, hai chat-format must
// produce the identical string.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Template } from '@huggingface/jinja';

const here = dirname(fileURLToPath(import.meta.url));
const hai = process.env.HAI_BIN;
const shared = process.env.HAI_SHARED_DIR;
const hf = process.env.HAI_HF_DIR;
assert.ok(hai && existsSync(hai), `HAI_BIN must name the hai binary (got ${hai})`);
assert.ok(shared && existsSync(join(shared, 'templates')), `HAI_SHARED_DIR must hold templates/ (got ${shared})`);
assert.ok(hf && existsSync(join(hf, 'qwen3')), `HAI_HF_DIR must hold the fetched tokenizers (got ${hf})`);

const hfTemplate = (name) => JSON.parse(readFileSync(join(hf, name, 'tokenizer_config.json'), 'utf8')).chat_template;
const templates = {
  'Qwen2.5 (chatml)': readFileSync(join(shared, 'templates/Qwen-Qwen2.5-7B-Instruct.jinja'), 'utf8'),
  'Qwen3': hfTemplate('qwen3'),
  'Llama 3': hfTemplate('llama3'),
  'Llama 3.1': readFileSync(join(shared, 'templates/meta-llama-Llama-3.1-8B-Instruct.jinja'), 'utf8'),
  'Llama 3.2': readFileSync(join(shared, 'templates/meta-llama-Llama-3.2-3B-Instruct.jinja'), 'utf8'),
  'Llama 3.3': readFileSync(join(shared, 'templates/meta-llama-Llama-3.3-70B-Instruct.jinja'), 'utf8'),
  'Llama 2': readFileSync(join(here, '../chat/llama-2-chat.jinja'), 'utf8'),
  'Mistral v0.1': readFileSync(join(here, '../chat/mistral-7b-instruct-v0.1.jinja'), 'utf8'),
  'Mistral Nemo': readFileSync(join(shared, 'templates/mistralai-Mistral-Nemo-Instruct-2407.jinja'), 'utf8'),
  'Phi-3.5': readFileSync(join(shared, 'templates/microsoft-Phi-3.5-mini-instruct.jinja'), 'utf8'),
  'Gemma 2': readFileSync(join(shared, 'templates/google-gemma-2-2b-it.jinja'), 'utf8'),
  'DeepSeek-R1-Distill-Llama': readFileSync(join(shared, 'templates/deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja'), 'utf8'),
  'DeepSeek-R1-Distill-Qwen': readFileSync(join(shared, 'templates/deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja'), 'utf8'),
  'DeepSeek-R1 (llama.cpp)': readFileSync(join(shared, 'templates/llama-cpp-deepseek-r1.jinja'), 'utf8'),
};

const S = (content) => ({ role: 'system', content });
const U = (content) => ({ role: 'user', content });
const A = (content) => ({ role: 'assistant', content });
const conversations = [
  { name: 'system + two turns', messages: [S('You are terse.'), U('Hi there'), A('Hello!'), U('What is 2+2?')], agp: true },
  { name: 'two full turns, no prompt', messages: [U('Name a color.'), A('Blue.'), U('Another?'), A('Green.')], agp: false },
  { name: 'single user turn', messages: [U('Hello')], agp: true },
  { name: 'whitespace kept or trimmed as the template says',
    messages: [S('  Be kind. \n'), U('  padded question \n'), A('\n answer with spaces  '), U('\tnext\n')], agp: true },
  { name: 'unicode', messages: [U('héllo 🦙 中文, ¿qué tal?'), A('Très bien — 很好 ✅'), U('ok')], agp: true },
  { name: 'reasoning in history',
    messages: [U('Solve x+1=3'), A('<think>\nsubtract 1\n</think>\n\nx = 2'), U('And x+2=5?')], agp: true },
  { name: 'reasoning in the last turn',
    messages: [U('Solve x+1=3'), A('<think>\nsubtract 1\n</think>\n\nx = 2')], agp: false },
  { name: 'system later in the conversation', messages: [S('First.'), U('a'), A('b'), S('Second.'), U('c')], agp: true },
];

const bos = '<s>', eos = '</s>';

function render(tmpl, conv, extra) {
  const t = new Template(tmpl);
  return t.render({ messages: conv.messages, add_generation_prompt: conv.agp, bos_token: bos, eos_token: eos,
                    ...extra });
}

function haiFormat(tmpl, conv, args) {
  const file = join(process.env.TMPDIR || '/tmp', `hai-chat-${process.pid}.jinja`);
  execFileSync('sh', ['-c', 'cat > "$1"', 'sh', file], { input: tmpl });
  const argv = ['chat-format', '--template', file, '--bos', bos, '--eos', eos, ...args];
  if (!conv.agp) argv.push('--no-gen-prompt');
  return execFileSync(hai, argv, { input: JSON.stringify(conv.messages), encoding: 'utf8' });
}

for (const [tname, tmpl] of Object.entries(templates)) {
  test(`chat format: ${tname}`, () => {
    assert.ok(tmpl && tmpl.length > 0, `template ${tname} missing`);
    let compared = 0;
    for (const conv of conversations) {
      // a fixed date for the Llama 3.x header, and no date at all (the template's own default)
      for (const date of [undefined, '15 Nov 2026']) {
        let want;
        try {
          want = render(tmpl, conv, date ? { date_string: date } : {});
        } catch (e) {
          continue; // the real template refuses this conversation (e.g. Gemma and a system turn)
        }
        const got = haiFormat(tmpl, conv, date ? ['--date', date] : []);
        assert.equal(got, want, `${tname} / ${conv.name}${date ? ' / date ' + date : ''}`);
        compared++;
      }
    }
    assert.ok(compared >= 6, `${tname}: only ${compared} renderings compared`);
    console.log(`# ${tname}: ${compared} renderings identical`);
  });
}
