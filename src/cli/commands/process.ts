// `streamfleet process <in-file> <out.ts> [--width W --height H]`: runs a file through the live
// media path offline, as fast as it goes: cut into its GOP segments, each decoded, transformed
// (identity for now) and encoded into its own output segment, written back to back as one TS file.
import '../../polyfill.ts';
import { parseArgs } from 'node:util';
import { loadConfig, type Config } from '../../config.ts';
import { createLogger } from '../../log.ts';
import { MediaError } from '../../media/errors.ts';
import { processFile, type ProcessFileResult } from '../../media/process-file.ts';
import { mediaSelfTest } from '../../media/selftest.ts';
import { identityTransform, type FrameTransform } from '../../media/transcode.ts';

export const usage = 'process <in-file> <out.ts> [--width W --height H] [--max-fps N]   run a file through decode -> transform -> encode';

/** What the command does once flags are parsed; `transform` is where a graph plugs in. */
export async function processCommand(
  inPath: string,
  outPath: string,
  config: Readonly<Config>,
  transform: FrameTransform = identityTransform,
): Promise<ProcessFileResult> {
  await mediaSelfTest(config.media);
  return processFile(inPath, outPath, { media: config.media, transform, log: createLogger(config.logLevel) });
}

function positiveInt(s: string | undefined): number | undefined | null {
  if (s === undefined) return undefined;
  return /^\d+$/.test(s) ? Number(s) : null;
}

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        width: { type: 'string' },
        height: { type: 'string' },
        'max-fps': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`streamfleet process: ${(err as Error).message}\nusage: streamfleet ${usage}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`usage: streamfleet ${usage}\n`);
    return 0;
  }
  const width = positiveInt(values.width);
  const height = positiveInt(values.height);
  const maxFps = values['max-fps'] === undefined ? undefined : Number(values['max-fps']);
  if (positionals.length !== 2 || width === null || height === null || (maxFps !== undefined && !(maxFps >= 0))) {
    process.stderr.write(`usage: streamfleet ${usage}\n`);
    return 2;
  }
  let config: Readonly<Config>;
  try {
    config = loadConfig({ media: { width, height, maxInputFps: maxFps } });
  } catch (err) {
    process.stderr.write(`streamfleet process: bad option: ${(err as Error).message}\n`);
    return 2;
  }
  const [inPath, outPath] = positionals;
  try {
    const r = await processCommand(inPath, outPath, config);
    process.stdout.write(
      `${JSON.stringify({ segments: r.segments, videoFrames: r.videoFrames, audioPackets: r.audioPackets, bytes: r.bytes, droppedByFpsCap: r.droppedByFpsCap, damagedSegments: r.inputErrors.length })}\n`,
    );
    return 0;
  } catch (err) {
    const code = err instanceof MediaError ? err.code : 'ERROR';
    process.stderr.write(`streamfleet process: ${code}: ${(err as Error).message}\n`);
    return 1;
  }
}
