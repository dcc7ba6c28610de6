// The models list is read from the folder once and kept until the folder changes: adding, removing
// or renaming a model is seen by the next call.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { ensureWorkspace, listModels, modelsDir } from '../src/inference/workspace.ts';
import { tempDir } from './helpers/clips.ts';

test('listModels follows the models folder as it changes', () => {
  const tmp = tempDir('sf-models-');
  const ws = ensureWorkspace(join(tmp.path, 'ws'));
  const dir = modelsDir(ws);
  const before = listModels(ws);
  expect(listModels(ws)).toEqual(before);
  writeFileSync(join(dir, 'zz-new.onnx'), 'x');
  expect(listModels(ws)).toEqual([...before, 'zz-new.onnx'].sort());
  renameSync(join(dir, 'zz-new.onnx'), join(dir, 'zz-renamed.onnx'));
  expect(listModels(ws)).toEqual([...before, 'zz-renamed.onnx'].sort());
  rmSync(join(dir, 'zz-renamed.onnx'));
  expect(listModels(ws)).toEqual(before);
  // What a caller does to its list does not change the next answer.
  listModels(ws).push('mutated.onnx');
  expect(listModels(ws)).toEqual(before);
  tmp.remove();
});
