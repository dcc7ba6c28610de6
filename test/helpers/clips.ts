// Test clips made on the spot with Debian's ffmpeg (lavfi sources), and ffprobe readers to check
// outputs. Every ffmpeg/ffprobe process started here is awaited to its exit.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export function tempDir(prefix = 'sf-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface ClipOptions {
  seconds?: number;
  width?: number;
  height?: number;
  fps?: number;
  audio?: boolean;
  /** Keyframe interval in frames (default: 2 s worth). */
  gop?: number;
  /** Irregular timestamps: drop/jitter frames with setpts so the frame rate varies. */
  vfr?: boolean;
  /** Text drawn on the picture (drawtext). */
  text?: string;
  format?: 'mpegts' | 'mp4';
  /** x264 preset (default ultrafast) and constant rate factor (default x264's 23): bitrate knobs. */
  x264Preset?: string;
  crf?: number;
}

/** Writes an H.264 (+AAC) clip and returns its path. */
export async function makeClip(path: string, o: ClipOptions = {}): Promise<string> {
  const seconds = o.seconds ?? 4;
  const width = o.width ?? 320;
  const height = o.height ?? 240;
  const fps = o.fps ?? 30;
  const gop = o.gop ?? fps * 2;
  const args = ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${width}x${height}:rate=${fps}:duration=${seconds}`];
  if (o.audio) args.push('-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`);
  const vf: string[] = [];
  // A non-linear time warp makes every frame interval different while keeping pts increasing.
  if (o.vfr) vf.push("setpts='N/FRAME_RATE/TB+0.012*sin(N)/TB'");
  if (o.text) vf.push(`drawtext=text='${o.text}':fontsize=48:fontcolor=white:box=1:boxcolor=black:x=20:y=20`);
  if (vf.length) args.push('-vf', vf.join(','));
  args.push('-c:v', 'libx264', '-preset', o.x264Preset ?? 'ultrafast', ...(o.crf !== undefined ? ['-crf', String(o.crf)] : []), '-bf', '0', '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0', '-pix_fmt', 'yuv420p');
  if (o.vfr) args.push('-fps_mode', 'passthrough');
  if (o.audio) args.push('-c:a', 'aac', '-b:a', '64k', '-shortest');
  args.push('-f', o.format ?? 'mpegts', path);
  await run('ffmpeg', args);
  return path;
}

export interface ProbedPacket {
  stream: 'video' | 'audio';
  pts: number;
  dts: number;
  flags: string;
  size: number;
}

/** Every packet of a file with its raw pts (in the stream's time base). */
export async function probePackets(path: string): Promise<ProbedPacket[]> {
  const { stdout } = await run(
    'ffprobe',
    ['-v', 'error', '-show_entries', 'packet=codec_type,pts,dts,flags,size', '-of', 'json', path],
    { maxBuffer: 256 * 1024 * 1024 },
  );
  const parsed = JSON.parse(stdout) as { packets?: Array<{ codec_type: string; pts?: string | number; dts?: string | number; flags: string; size: string | number }> };
  return (parsed.packets ?? []).map((p) => ({
    stream: p.codec_type === 'audio' ? 'audio' : 'video',
    pts: Number(p.pts),
    dts: Number(p.dts),
    flags: p.flags,
    size: Number(p.size),
  }));
}

/** Every decoded video frame's pts (stream time base) of a file. */
export async function probeFramePts(path: string): Promise<number[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts', '-of', 'csv=p=0', path], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout
    .split('\n')
    .map((l) => l.trim().replace(/,$/, ''))
    .filter(Boolean)
    .map(Number);
}

/** Decodes the first video frame at `index` to raw RGB24 at the file's size. */
export async function grabRgbFrame(path: string, index = 0): Promise<{ data: Buffer; width: number; height: number }> {
  const { stdout: info } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'csv=p=0', path]);
  // MPEG-TS files list the stream once per program too: read the first line only.
  const [width, height] = info.trim().split('\n')[0].split(',').map(Number);
  const { stdout } = await run(
    'ffmpeg',
    ['-v', 'error', '-i', path, '-vf', `select=eq(n\\,${index})`, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
    { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
  );
  return { data: stdout as unknown as Buffer, width, height };
}
