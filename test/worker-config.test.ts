// A worker process gets the configuration it reads, not all of the node's: the HTTP section (its
// bearer token above all) never reaches a worker's environment. Read from /proc of a real worker.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_PROMPT, validateStreamPrompts } from '../src/inference/stream-prompts.ts';
import { startNode, type TestNode } from './helpers/runtime-node.ts';

const TOKEN = 'node-secret-token-0123456789';
let node: TestNode;

beforeAll(async () => {
  node = await startNode({ http: { authToken: TOKEN } });
}, 60_000);

afterAll(async () => {
  const { orphans } = await node.close();
  expect(orphans).toEqual([]);
});

it("keeps the node's HTTP settings (its token) out of worker processes", async () => {
  const prompts = validateStreamPrompts([DEFAULT_PROMPT], { workspace: node.runtime.workspace, maxNodes: 64, maxPrompts: 4 });
  await node.runtime.startStream({
    id: 'cfg',
    subscribeUrl: `${node.trickleBase}/cfg-in`,
    publishUrl: `${node.trickleBase}/cfg-out`,
    width: 64,
    height: 64,
    architecture: 'dedicated',
    prompts,
  });
  const [proc] = node.runtime.processes();
  expect(proc).toBeDefined();
  const environ = readFileSync(`/proc/${proc!.pid}/environ`, 'utf8').split('\0');
  const config = JSON.parse(environ.find((e) => e.startsWith('SF_CONFIG='))!.slice('SF_CONFIG='.length)) as Record<string, unknown>;
  expect(Object.keys(config)).not.toContain('http');
  expect(config).toHaveProperty('media');
  expect(environ.join('\n')).not.toContain(TOKEN);
  await node.runtime.stopStream('cfg');
}, 120_000);
