// The official `ollama` client against a running `strata serve`:
//   node ollama_client.mjs BASE_URL MODEL
// Exits non-zero with a message on the first check that fails.
import { Ollama } from "ollama";
import assert from "node:assert/strict";

const [base, model] = process.argv.slice(2);
const ollama = new Ollama({ host: base });

const tags = await ollama.list();
assert.ok(tags.models.some((m) => m.name === model), `tags lack ${model}`);

// Streaming chat: pieces, then one final object with the counts.
const parts = [];
let final = null;
for await (const part of await ollama.chat({
  model,
  messages: [{ role: "user", content: "Hello" }],
  stream: true,
  options: { temperature: 0, num_predict: 6 },
})) {
  if (part.done) final = part;
  else parts.push(part.message.content);
}
assert.ok(final, "no final object");
assert.equal(final.done_reason, "length");
assert.equal(final.eval_count, 6);
assert.ok(final.prompt_eval_count > 0);
assert.ok(final.total_duration > 0);

const whole = await ollama.chat({
  model,
  messages: [{ role: "user", content: "Hello" }],
  stream: false,
  options: { temperature: 0, num_predict: 6 },
});
assert.equal(whole.message.content, parts.join(""));

const gen = await ollama.generate({ model, prompt: "Once upon a time", options: { temperature: 0, num_predict: 5 } });
assert.equal(gen.done, true);
assert.equal(gen.eval_count, 5);
assert.equal(typeof gen.response, "string");

try {
  await ollama.generate({ model: "no-such-model", prompt: "x" });
  assert.fail("an unknown model was accepted");
} catch (e) {
  assert.equal(e.status_code, 404);
  assert.match(e.message, /no-such-model/);
}
console.log("ok");
