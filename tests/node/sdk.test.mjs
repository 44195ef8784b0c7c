// The OpenAI Node SDK and LangChain's OpenAIEmbeddings, pointed at a running emr whose provider
// `voyage` (model voyage-3.5) is the fake provider. Every vector is compared bit for bit (as
// float32) with the fake's own deterministic vector for the same text.
//
// Environment: EMR_URL (e.g. http://127.0.0.1:3200), EMR_KEY (an emr caller key), FAKE_URL (the
// fake provider, for POST /_vectors). tests/node/run.sh sets all three up.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import OpenAI, { APIError, NotFoundError } from 'openai';
import { OpenAIEmbeddings } from '@langchain/openai';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run tests/node/run.sh BUILD_DIR`);
  return value.replace(/\/+$/, '');
}

const EMR_URL = required('EMR_URL');
const EMR_KEY = required('EMR_KEY');
const FAKE_URL = required('FAKE_URL');
const MODEL = 'voyage-3.5';

// No retries: a failure should show the first answer, not a later one.
const client = new OpenAI({ baseURL: `${EMR_URL}/v1`, apiKey: EMR_KEY, maxRetries: 0 });

// Texts without newlines (LangChain replaces them with spaces by default).
const TEXTS = [
  'The quick brown fox jumps over the lazy dog.',
  'emr merges concurrent embedding requests into full provider batches.',
  'Ünïcödé text, emoji 🚀 and "quotes" \\ backslashes\ttabs.',
];

// The fake's vectors for model voyage-3.5 and input_type null (what emr asks for when the caller
// gives no input_type), at the model's default dimensions.
async function expectedVectors(texts) {
  const res = await fetch(`${FAKE_URL}/_vectors`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: MODEL, input_type: null, texts, dimensions: null }),
  });
  assert.equal(res.status, 200, `POST ${FAKE_URL}/_vectors: ${res.status} ${await res.clone().text()}`);
  const body = await res.json();
  assert.ok(Array.isArray(body.vectors), 'fake /_vectors answer has no "vectors" array');
  assert.equal(body.vectors.length, texts.length);
  return body.vectors;
}

function assertSameVector(actual, expected, label) {
  assert.ok(Array.isArray(actual) || ArrayBuffer.isView(actual), `${label}: not an array: ${typeof actual}`);
  assert.equal(actual.length, expected.length, `${label}: ${actual.length} dims, expected ${expected.length}`);
  assert.ok(expected.length > 0, `${label}: expected vector is empty`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    assert.equal(typeof a, 'number', `${label}[${i}] is ${typeof a}, not a number`);
    if (Math.fround(a) !== Math.fround(expected[i])) {
      assert.fail(`${label}[${i}]: got ${a} (float32 ${Math.fround(a)}), expected ${expected[i]} (float32 ${Math.fround(expected[i])})`);
    }
  }
}

function assertVectors(actual, expected, label) {
  assert.equal(actual.length, expected.length, `${label}: ${actual.length} vectors, expected ${expected.length}`);
  actual.forEach((v, i) => assertSameVector(v, expected[i], `${label} vector ${i}`));
}

// Checks an SDK embeddings response against the fake's vectors for `texts`.
async function checkResponse(response, texts, label) {
  assert.equal(response.object, 'list', `${label}: object`);
  assert.ok(Array.isArray(response.data), `${label}: data is not an array`);
  assert.equal(response.data.length, texts.length, `${label}: data length`);
  response.data.forEach((item, i) => {
    assert.equal(item.object, 'embedding', `${label}: data[${i}].object`);
    assert.equal(item.index, i, `${label}: data[${i}].index`);
  });
  assert.equal(typeof response.model, 'string', `${label}: model`);
  assert.ok(response.usage && Number.isInteger(response.usage.prompt_tokens), `${label}: usage.prompt_tokens`);
  assert.ok(Number.isInteger(response.usage.total_tokens), `${label}: usage.total_tokens`);
  const expected = await expectedVectors(texts);
  assertVectors(response.data.map((d) => d.embedding), expected, label);
}

test('openai SDK default (base64, decoded by the SDK), three texts', async () => {
  const response = await client.embeddings.create({ model: 'voyage', input: TEXTS });
  await checkResponse(response, TEXTS, 'base64 default');
});

test("openai SDK encoding_format: 'float', three texts", async () => {
  const response = await client.embeddings.create({ model: 'voyage', input: TEXTS, encoding_format: 'float' });
  await checkResponse(response, TEXTS, 'float');
});

test("openai SDK encoding_format: 'base64' given explicitly returns base64 strings", async () => {
  const response = await client.embeddings.create({ model: 'voyage', input: TEXTS, encoding_format: 'base64' });
  assert.equal(response.data.length, TEXTS.length);
  const decoded = response.data.map((d, i) => {
    assert.equal(typeof d.embedding, 'string', `data[${i}].embedding is not a string`);
    const buf = Buffer.from(d.embedding, 'base64');
    assert.equal(buf.length % 4, 0, `data[${i}]: ${buf.length} bytes is not whole float32s`);
    return Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4));
  });
  assertVectors(decoded, await expectedVectors(TEXTS), 'explicit base64');
});

test('openai SDK single string input', async () => {
  const text = 'a single string, not an array';
  const base64 = await client.embeddings.create({ model: 'voyage', input: text });
  await checkResponse(base64, [text], 'single string (base64 default)');
  const float = await client.embeddings.create({ model: 'voyage', input: text, encoding_format: 'float' });
  await checkResponse(float, [text], 'single string (float)');
});

test("routing by 'voyage/voyage-3.5' and by 'voyage-3.5'", async () => {
  for (const model of ['voyage/voyage-3.5', 'voyage-3.5']) {
    const response = await client.embeddings.create({ model, input: TEXTS });
    await checkResponse(response, TEXTS, `model ${model}`);
  }
});

test('LangChain OpenAIEmbeddings embedDocuments and embedQuery', async () => {
  const embeddings = new OpenAIEmbeddings({
    model: 'voyage',
    apiKey: EMR_KEY,
    configuration: { baseURL: `${EMR_URL}/v1` },
    // LangChain sends no `dimensions` unless asked; batchSize only matters past 512 texts.
    maxRetries: 0,
  });
  const documents = await embeddings.embedDocuments(TEXTS);
  assertVectors(documents, await expectedVectors(TEXTS), 'embedDocuments');

  const query = 'what does emr do with concurrent requests?';
  const vector = await embeddings.embedQuery(query);
  const [expected] = await expectedVectors([query]);
  assertSameVector(vector, expected, 'embedQuery');
});

test("unknown model gives a 404 APIError with code 'model_not_found'", async () => {
  let caught;
  try {
    await client.embeddings.create({ model: 'no-such-model-anywhere', input: ['hello'] });
  } catch (e) {
    caught = e;
  }
  assert.ok(caught, 'the request did not fail');
  assert.ok(caught instanceof APIError, `not an APIError: ${caught}`);
  assert.ok(caught instanceof NotFoundError, `not a NotFoundError: ${caught}`);
  assert.equal(caught.status, 404);
  assert.equal(caught.code, 'model_not_found', `code: ${caught.code}; error: ${JSON.stringify(caught.error)}`);
  assert.equal(caught.param, 'model');
  assert.equal(caught.type, 'invalid_request_error');
  assert.match(caught.message, /no-such-model-anywhere/);
});
