// One streamed chat completion against an OpenAI-compatible server, timed as a client sees it:
// when each content chunk arrived, the text, and the completion tokens of the usage chunk.
export async function streamChat(url, body) {
  const t0 = performance.now();
  const r = await fetch(url + '/v1/chat/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'm', stream: true, stream_options: { include_usage: true }, ...body }),
  });
  if (r.status !== 200) throw new Error(`status ${r.status}: ${await r.text()}`);
  const reader = r.body.getReader(), dec = new TextDecoder();
  let buf = '', first = 0, last = 0, tokens = 0, text = '';
  const gaps = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      if (j.usage && j.usage.completion_tokens) tokens = j.usage.completion_tokens;
      const c = j.choices?.[0]?.delta?.content;
      if (c) {
        const now = performance.now();
        if (!first) first = now;
        else gaps.push(now - last);
        last = now;
        text += c;
      }
    }
  }
  return { ttft: first - t0, decodeS: (last - first) / 1000, tokens, gaps, text };
}
