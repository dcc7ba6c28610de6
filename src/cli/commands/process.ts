// `streamfleet process <in-file> <out.ts> [--width W --height H] [--prompt prompt.json]`: runs a file
// through the runner's own input and processing parts offline (src/runner/offline.ts), as fast as
// they go: cut into its GOP segments, read as one TS stream, decoded, run through the prompt's
// compiled graph (none without --prompt) and encoded into one output segment per input segment,
// written back to back as one TS file.
import '../../polyfill.ts';
import { readFileSync } from 'node:fs';
import { loadConfig, type Config } from '../../config.ts';
import { createLogger } from '../../log.ts';
import { MediaError } from '../../media/errors.ts';
import { mediaSelfTest } from '../../media/selftest.ts';
import { compiledGraphRunner, processFile, type ProcessFileResult } from '../../runner/offline.ts';
import type { FrameGraphRunner } from '../../runner/processing.ts';
import { compileGraph } from '../../inference/compile.ts';
import { validatePrompt } from '../../inference/validate.ts';
import { ensureWorkspace } from '../../inference/workspace.ts';
import type { FrameGraph } from '../../inference/types.ts';
import { parseCommandArgs, usageError } from '../args.ts';

export const usage =
  'process <in-file> <out.ts> [--width W --height H] [--max-fps N] [--prompt prompt.json] [--workspace DIR]   run a file through decode -> graph -> encode';

/** A compiled graph as the runner's processing part runs it (every frame through it, keeping its pts). */
export function graphTransform(graph: FrameGraph): FrameGraphRunner {
  return compiledGraphRunner(graph);
}

/** Validates and compiles a prompt file for frames of the configured size; a readable error when it cannot run. */
export async function loadPromptGraph(path: string, config: Readonly<Config>): Promise<FrameGraph> {
  const workspace = ensureWorkspace(config.inference.workspace);
  const r = validatePrompt(readFileSync(path, 'utf8'), { workspace, maxNodes: config.inference.maxPromptNodes, testNodes: config.inference.testNodes });
  if (!r.valid) throw new PromptFileError(r.validation_errors);
  return compileGraph(r.prompt, {
    width: config.media.width,
    height: config.media.height,
    workspace,
    provider: config.inference.provider,
    config: config.inference,
  });
}

export class PromptFileError extends Error {
  readonly code = 'PROMPT_INVALID';
  constructor(readonly validationErrors: unknown[]) {
    super('Prompt validation failed');
  }
}

/** What the command does once flags are parsed; `graph` is where a compiled prompt plugs in (none: frames as decoded). */
export async function processCommand(inPath: string, outPath: string, config: Readonly<Config>, graph?: FrameGraphRunner): Promise<ProcessFileResult> {
  await mediaSelfTest(config.media);
  return processFile(inPath, outPath, config, { graph, log: createLogger(config.logLevel) });
}

function positiveInt(s: string | undefined): number | undefined | null {
  if (s === undefined) return undefined;
  return /^\d+$/.test(s) ? Number(s) : null;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('process', usage, argv, {
    width: { type: 'string' },
    height: { type: 'string' },
    'max-fps': { type: 'string' },
    prompt: { type: 'string' },
    workspace: { type: 'string' },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const width = positiveInt(values.width);
  const height = positiveInt(values.height);
  const maxFps = values['max-fps'] === undefined ? undefined : Number(values['max-fps']);
  if (positionals.length !== 2 || width === null || height === null || (maxFps !== undefined && !(maxFps >= 0))) {
    return usageError('process', usage);
  }
  let config: Readonly<Config>;
  try {
    config = loadConfig({
      media: { width, height, maxInputFps: maxFps },
      inference: values.workspace ? { workspace: values.workspace } : {},
    });
  } catch (err) {
    process.stderr.write(`streamfleet process: bad option: ${(err as Error).message}\n`);
    return 2;
  }
  const [inPath, outPath] = positionals;
  let graph: FrameGraph | undefined;
  try {
    if (values.prompt) graph = await loadPromptGraph(values.prompt, config);
  } catch (err) {
    if (err instanceof PromptFileError) {
      process.stdout.write(`${JSON.stringify({ valid: false, validation_errors: err.validationErrors })}\n`);
      return 1;
    }
    process.stderr.write(`streamfleet process: cannot load ${values.prompt}: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    const r = await processCommand(inPath, outPath, config, graph ? graphTransform(graph) : undefined);
    process.stdout.write(
      `${JSON.stringify({ segments: r.segments, videoFrames: r.videoFrames, audioPackets: r.audioPackets, bytes: r.bytes, droppedByFpsCap: r.droppedByFpsCap, damagedSegments: r.damagedSegments })}\n`,
    );
    return 0;
  } catch (err) {
    const code = err instanceof MediaError ? err.code : 'ERROR';
    process.stderr.write(`streamfleet process: ${code}: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await graph?.dispose();
  }
}
