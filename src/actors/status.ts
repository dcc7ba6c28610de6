// The status JSON of a stream (`StreamStatus` of src/stream-spec.ts), from its machine's snapshot.
import { streamStatus, type StreamSnapshot, type WorkerRecord } from '../machines/index.ts';
import { ARCHITECTURE_NAMES, type StreamStats, type StreamStatus, type WorkerStatus } from '../stream-spec.ts';

const ZERO_STATS: StreamStats = { fps_in: 0, fps_out: 0, latency_p50_ms: 0, latency_p99_ms: 0, frames_dropped: 0 };

function workerJson(w: WorkerRecord, failReason: string | undefined): WorkerStatus {
  // The worker whose failure failed the stream keeps showing `failed` after it was reaped.
  const failedIt = failReason !== undefined && w.lastError === failReason;
  const state = failedIt && w.state === 'terminated' ? 'failed' : w.state;
  return {
    worker_id: w.workerId,
    pid: w.pid ?? null,
    state,
    restart_count: w.restartCount,
    ...(w.promptId !== undefined ? { prompt_id: w.promptId } : {}),
    ...(state === 'failed' ? { fail_reason: w.lastError ?? failReason ?? 'failed' } : {}),
  };
}

/**
 * The API shows the states spawning / warmup / running / restarting / terminated / failed; the
 * machine's short `stopping` step shows as the state it is heading for.
 */
export function toStreamStatus(snapshot: StreamSnapshot): StreamStatus {
  const d = streamStatus(snapshot);
  const state = d.state === 'stopping' ? (d.failReason !== undefined ? 'failed' : 'terminated') : d.state;
  const names = ARCHITECTURE_NAMES[d.architecture];
  const workers = d.workers.filter((w) => !w.retiring).map((w) => workerJson(w, d.failReason));
  const first: WorkerStatus = workers[0] ?? { worker_id: '', pid: null, state: state === 'failed' ? 'failed' : 'terminated', restart_count: 0 };
  const s = d.stats;
  return {
    request_id: d.id,
    running: d.running,
    state,
    subscribe_url: d.subscribeUrl,
    publish_url: d.publishUrl,
    ...(d.controlUrl !== undefined ? { control_url: d.controlUrl } : {}),
    ...(d.eventsUrl !== undefined ? { events_url: d.eventsUrl } : {}),
    width: d.width,
    height: d.height,
    frame_count: d.frameCount,
    pipeline_type: names.pipeline_type,
    architecture: names.architecture,
    degraded: d.degraded,
    ...(d.endReason !== undefined ? { end_reason: d.endReason } : {}),
    ...(d.failReason !== undefined ? { fail_reason: d.failReason } : {}),
    restart_count: d.restartCount,
    active_prompt_id: d.activePromptId ?? null,
    prompt_ids: d.promptIds,
    stats: s
      ? { fps_in: s.fpsIn, fps_out: s.fpsOut, latency_p50_ms: s.latencyP50, latency_p99_ms: s.latencyP99, frames_dropped: s.drops }
      : { ...ZERO_STATS },
    worker_status: workers.length > 1 ? { ...first, workers } : first,
  };
}
