// `streamfleet validate <prompt.json> [--workspace DIR]`, run as a real process: JSON on stdout and
// exit 0 (valid), 1 (invalid), 2 (usage / unreadable file).
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/clips.ts';

const bin = join(import.meta.dirname, '..', 'bin', 'streamfleet.js');

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, 'validate', ...args], (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let dir: { path: string; remove(): void };
let ws: string;
const file = (name: string, body: unknown) => {
  const p = join(dir.path, name);
  writeFileSync(p, typeof body === 'string' ? body : JSON.stringify(body));
  return p;
};
const chain = (middle: Record<string, unknown>) => ({
  '1': { class_type: 'LoadTensor', inputs: {} },
  '2': { ...middle },
  '3': { class_type: 'SaveTensor', inputs: { images: ['2', 0] } },
});

beforeAll(() => {
  dir = tempDir('sf-validate-cli-');
  ws = join(dir.path, 'ws');
  mkdirSync(join(ws, 'models'), { recursive: true });
  writeFileSync(join(ws, 'models', 'style.onnx'), 'x');
});
afterAll(() => dir.remove());

describe('streamfleet validate', () => {
  it('prints the prompt id and exits 0 for a valid prompt', async () => {
    const p = file('ok.json', chain({ class_type: 'OnnxModel', inputs: { image: ['1', 0], model_name: 'style.onnx' } }));
    const r = await cli([p, '--workspace', ws]);
    expect(r.code).toBe(0);
    const body = JSON.parse(r.stdout);
    expect(body).toEqual({ valid: true, prompt_id: expect.stringMatching(/^[0-9a-f]{12}$/) });
  });

  it('prints the flattened validation errors and exits 1 for an invalid prompt', async () => {
    const p = file('bad.json', chain({ class_type: 'ImageBlur', inputs: { image: ['1', 0], blur_radius: 50 } }));
    const r = await cli([p, '--workspace', ws]);
    expect(r.code).toBe(1);
    const body = JSON.parse(r.stdout);
    expect(body.valid).toBe(false);
    expect(body.validation_errors.map((e: { error_type: string }) => e.error_type).sort()).toEqual(['required_input_missing', 'value_bigger_than_max']);
    const notJson = await cli([file('garbage.json', '{"1": '), '--workspace', ws]);
    expect(notJson.code).toBe(1);
    expect(JSON.parse(notJson.stdout).validation_errors[0].message).toBe('Prompt is not valid JSON');
  });

  it('validates a list of prompts', async () => {
    const good = chain({ class_type: 'ImageInvert', inputs: { image: ['1', 0] } });
    const r = await cli([file('list.json', [good, good]), '--workspace', ws]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).prompt_ids).toHaveLength(2);
  });

  it('exits 2 for a missing file or bad usage', async () => {
    expect((await cli([join(dir.path, 'nope.json')])).code).toBe(2);
    expect((await cli([])).code).toBe(2);
    expect((await cli(['a.json', 'b.json'])).code).toBe(2);
    expect((await cli(['--bogus-flag', 'a.json'])).code).toBe(2);
  });
});
