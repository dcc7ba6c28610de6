// What a stream's runner tells the world: stream events on the bus (`sf.stream.<id>.evt`),
// heartbeats with the stats window for each of its workers, and the gateway's view on the
// stream's `-events` trickle channel (periodic status, first-segment traces).
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Bus } from '../transport/bus.ts';
import { subjects } from '../transport/subjects.ts';
import type { StreamEvent, WorkerHeartbeat } from '../transport/worker-protocol.ts';
import { EventsChannel } from './events-channel.ts';

/** The figures of a gateway status event, filled in by the runner. */
export interface StatusFigures {
  activePromptId: string;
  state: 'starting' | 'running' | 'input_ended' | 'stopped';
  degraded: boolean;
  fpsIn: number;
  fpsOut: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  framesOut: number;
  segmentsIn: number;
  segmentsOut: number;
  decodeErrors: number;
  discontinuities: number;
  lastInputAt: number | null;
  lastOutputAt: number | null;
  width: number;
  height: number;
}

export class StreamReporter {
  private readonly events: EventsChannel | null;
  private muted = false;

  constructor(
    private readonly streamId: string,
    eventsUrl: string | undefined,
    private readonly bus: Bus,
    config: Readonly<Config>,
    private readonly pid: number,
    private readonly log: Logger,
  ) {
    this.events = eventsUrl ? new EventsChannel(eventsUrl, config.trickle, config.actors.maxQueuedStreamEvents, log) : null;
  }

  get hasEventsChannel(): boolean {
    return this.events !== null;
  }

  /**
   * Another node owns the stream now: this copy says nothing more, on the bus (the new owner's actor
   * listens on the same subjects) or on the events channel (left to the new owner).
   */
  mute(): void {
    if (this.muted) return;
    this.muted = true;
    void this.events?.abandon().catch(() => undefined);
  }

  /** A stream event on the bus, for the stream actor. */
  emit(ev: StreamEvent): void {
    if (this.muted) return;
    try {
      this.bus.publish(subjects.streamEvt(this.streamId), ev);
    } catch (err) {
      this.log.warn({ err, event: ev.type }, 'stream event not published');
    }
  }

  heartbeat(workerIds: readonly string[], activePromptId: string, stats: WorkerHeartbeat['stats'], inputEnded?: WorkerHeartbeat['inputEnded']): void {
    if (this.muted) return;
    for (const workerId of workerIds) {
      const hb: WorkerHeartbeat = { pid: this.pid, streamId: this.streamId, workerId, activePromptId, stats, ...(inputEnded ? { inputEnded } : {}) };
      try {
        this.bus.publish(subjects.workerHb(this.streamId, workerId), hb);
      } catch (err) {
        this.log.debug({ err }, 'heartbeat not published');
      }
    }
  }

  status(f: StatusFigures): void {
    this.events?.send('ai_stream_events', {
      type: 'status',
      stream_id: this.streamId,
      pipeline: 'streamfleet',
      active_prompt_id: f.activePromptId,
      state: f.state,
      degraded: f.degraded,
      input_fps: f.fpsIn,
      output_fps: f.fpsOut,
      latency_p50_ms: f.latencyP50Ms,
      latency_p99_ms: f.latencyP99Ms,
      frames_out: f.framesOut,
      segments_in: f.segmentsIn,
      segments_out: f.segmentsOut,
      decode_errors: f.decodeErrors,
      timestamp_discontinuities: f.discontinuities,
      last_input_time: f.lastInputAt,
      last_output_time: f.lastOutputAt,
      width: f.width,
      height: f.height,
    });
  }

  /** An event of the gateway's own vocabulary on `-events` (discontinuities, errors). */
  streamEvent(type: string, extra: Record<string, unknown>): void {
    this.events?.send('ai_stream_events', { type, stream_id: this.streamId, ...extra });
  }

  trace(type: string, extra: Record<string, unknown>): void {
    this.events?.send('stream_trace', { type, stream_id: this.streamId, ...extra });
  }

  async close(): Promise<void> {
    if (this.muted) return;
    await this.events?.close().catch((err: unknown) => this.log.debug({ err }, 'events channel close failed'));
  }
}
