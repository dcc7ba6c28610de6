// What the real effects (spawn-worker.ts, warmup-worker.ts, ...) need from the runtime: the node's
// processes, the bus, the stream registry's view of each stream, and the runtime event sink.
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Bus } from '../transport/bus.ts';
import type { PipelineSpec } from '../stream-spec.ts';
import type { WorkerProcesses } from './processes.ts';
import type { RuntimeEvent } from './types.ts';

export interface StreamDirectory {
  /** What `open_stream` sends for this stream now (URLs, size, active prompt, resume point). */
  pipelineConfig(streamId: string, size: { width: number; height: number }): PipelineSpec;
  /** The stream is stopping or over: its workers' processes close the stream, not just a worker. */
  isEnding(streamId: string): boolean;
}

export interface EffectDeps {
  config: Readonly<Config>;
  bus: Bus;
  logger: Logger;
  procs: WorkerProcesses;
  streams: StreamDirectory;
  emit(e: RuntimeEvent): void;
}

/** Which process a worker actor's effects use: the stream's own, or the node's shared one. */
export interface ProcessPlacement {
  key(streamId: string): string;
  shared: boolean;
}

/** Process key of a stream's own process (dedicated and prompt_worker: its workers share it). */
export const streamProcKey = (streamId: string) => `stream:${streamId}`;
/** Process key of the node's shared process. */
export const sharedProcKey = (nodeId: string) => `shared:${nodeId}`;
