// FFmpeg writes its own messages to stderr, outside pino. Its level is process-wide, so every media
// entry point applies the configured one (a cheap native call); the default keeps it quiet, since
// every condition it would report reaches us as a typed error anyway.
import '../polyfill.ts';
import { Log } from 'node-av';
import { AV_LOG_ERROR, AV_LOG_FATAL, AV_LOG_INFO, AV_LOG_QUIET, AV_LOG_WARNING, type AVLogLevel } from 'node-av/constants';
import type { MediaConfig } from '../config.ts';

const LEVELS: Record<MediaConfig['ffmpegLogLevel'], AVLogLevel> = {
  quiet: AV_LOG_QUIET,
  fatal: AV_LOG_FATAL,
  error: AV_LOG_ERROR,
  warning: AV_LOG_WARNING,
  info: AV_LOG_INFO,
};

let applied: AVLogLevel | null = null;

export function applyFfmpegLogLevel(media: MediaConfig): void {
  const level = LEVELS[media.ffmpegLogLevel];
  if (applied === level) return;
  Log.setLevel(level);
  applied = level;
}
