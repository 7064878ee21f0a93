// The official `openai` client against a running `strata serve`:
//   node openai_client.mjs BASE_URL MODEL
// Exits non-zero with a message on the first check that fails.
import OpenAI from "openai";
import assert from "node:assert/strict";

const [base, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });

const models = await client.models.list();
assert.ok(models.data.some((m) => m.id === model), `models list lacks ${model}`);

const chat = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Hello" }],
  max_tokens: 8,
  temperature: 0,
});
assert.equal(chat.object, "chat.completion");
assert.equal(chat.choices[0].message.role, "assistant");
assert.equal(typeof chat.choices[0].message.content, "string");
assert.ok(["stop", "length"].includes(chat.choices[0].finish_reason));
assert.ok(chat.usage.prompt_tokens > 0);
assert.equal(chat.usage.total_tokens, chat.usage.prompt_tokens + chat.usage.completion_tokens);

// Streaming gives the same text as the same greedy request without streaming.
const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Hello" }],
  max_tokens: 8,
  temperature: 0,
  stream: true,
  stream_options: { include_usage: true },
});
let text = "", role = null, finish = null, usage = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  const c = chunk.choices[0];
  if (!c) continue;
  if (c.delta.role) role = c.delta.role;
  if (c.delta.content) text += c.delta.content;
  if (c.finish_reason) finish = c.finish_reason;
}
assert.equal(role, "assistant");
assert.equal(text, chat.choices[0].message.content);
assert.equal(finish, chat.choices[0].finish_reason);
assert.deepEqual(usage, chat.usage);

const completion = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 4, temperature: 0 });
assert.equal(completion.choices[0].finish_reason, "length");
assert.equal(completion.usage.completion_tokens, 4);

// A prompt of token ids is fed as those ids: the usage counts exactly them.
const byIds = await client.completions.create({ model, prompt: [1, 2, 3], max_tokens: 2, temperature: 0 });
assert.equal(byIds.usage.prompt_tokens, 3);
assert.equal(typeof byIds.choices[0].text, "string");

// Errors surface as the client's typed errors, with the status and message.
try {
  await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] });
  assert.fail("an unknown model was accepted");
} catch (e) {
  assert.ok(e instanceof OpenAI.NotFoundError, `expected NotFoundError, got ${e}`);
  assert.match(e.message, /no-such-model/);
}
try {
  await client.chat.completions.create({ model, messages: [] });
  assert.fail("empty messages were accepted");
} catch (e) {
  assert.ok(e instanceof OpenAI.BadRequestError, `expected BadRequestError, got ${e}`);
  assert.equal(e.param, "messages");
}
try {
  await client.completions.create({ model, prompt: [1, 2147483647], max_tokens: 1 });
  assert.fail("an out-of-vocabulary token id was accepted");
} catch (e) {
  assert.ok(e instanceof OpenAI.BadRequestError, `expected BadRequestError, got ${e}`);
  assert.equal(e.param, "prompt[1]");
}
console.log("ok");
