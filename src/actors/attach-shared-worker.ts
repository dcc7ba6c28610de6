// Effect `attachSharedWorker`: attaches a stream to the node's one shared worker process (forked on
// first use, kept for the node's life). Sends the stream machine the WORKER_* notifications a worker
// actor would; a crash of the shared process re-attaches every stream on it with backoff, within the
// same restart budget as a dedicated worker, then reports WORKER_FAILED.
import { fromCallback } from 'xstate';
import {
  backoffDelayMs,
  errorMessage,
  restartsInWindow,
  workerLimitsFrom,
  type SharedWorkerInput,
  type StreamPrompt,
  type WorkerEvent,
  type WorkerNotification,
} from '../machines/index.ts';
import { subjects } from '../transport/subjects.ts';
import { WorkerHeartbeat } from '../transport/worker-protocol.ts';
import { sharedProcKey, type EffectDeps } from './deps.ts';
import { describeExit, type ProcHandle } from './processes.ts';

export function attachSharedWorkerLogic(deps: EffectDeps) {
  return fromCallback<WorkerEvent, SharedWorkerInput>(({ input, sendBack, receive }) => {
    const { streamId, workerId } = input;
    const limits = workerLimitsFrom(deps.config.actors);
    const log = deps.logger.child({ streamId, workerId });
    const notify = (n: WorkerNotification) => sendBack(n as unknown as WorkerEvent);
    let prompts: StreamPrompt[] = input.prompts;
    let size = { width: input.width, height: input.height };
    let proc: ProcHandle | undefined;
    let running = false;
    let stopped = false;
    let restartCount = 0;
    let recent: number[] = [];
    let retry: NodeJS.Timeout | undefined;
    const abort = new AbortController();
    const sub = deps.bus.subscribe(subjects.workerHb(streamId, workerId));


    const attach = async (): Promise<void> => {
      try {
        const h = await deps.procs.ensure(sharedProcKey(deps.config.nodeId), { shared: true, signal: abort.signal });
        proc = h;
        const timeout = deps.config.actors.workerStartTimeoutMs;
        await deps.procs.request(h, { type: 'open_stream', stream: deps.streams.pipelineConfig(streamId, size) }, timeout, abort.signal);
        notify({ type: 'WORKER_WARMING', workerId, pid: h.pid });
        const t0 = performance.now();
        await deps.procs.request(h, { type: 'add_worker', streamId, workerId, prompts: prompts }, timeout, abort.signal);
        deps.procs.addWorker(h, streamId, workerId);
        deps.emit({ type: 'warmup', streamId, durationMs: performance.now() - t0 });
        if (stopped) return;
        running = true;
        notify({ type: 'WORKER_RUNNING', workerId, pid: h.pid });
        void h.exited.then((e) => {
          if (proc === h && !stopped) crashed(`shared worker process ${describeExit(e)}`);
        });
      } catch (err) {
        if (!stopped) crashed(`attach failed: ${errorMessage(err)}`);
      }
    };

    const crashed = (reason: string): void => {
      running = false;
      proc = undefined;
      const now = Date.now();
      recent = restartsInWindow(recent, now, limits);
      if (recent.length >= limits.maxRestarts) {
        notify({ type: 'WORKER_FAILED', workerId, reason, restartCount });
        return;
      }
      const delayMs = backoffDelayMs(limits, recent.length, Math.random);
      recent = [...recent, now];
      restartCount += 1;
      log.warn({ reason, delayMs }, 'shared worker lost: re-attaching');
      notify({ type: 'WORKER_RESTARTING', workerId, reason, restartCount, delayMs });
      retry = setTimeout(() => void attach(), delayMs);
    };

    void (async () => {
      try {
        for await (const m of sub) {
          const hb = WorkerHeartbeat.safeParse(m.json());
          if (!hb.success || !running || hb.data.pid !== proc?.pid) continue;
          notify({ type: 'WORKER_STATS', workerId, stats: hb.data.stats });
        }
      } catch (err) {
        if (!stopped) log.warn({ err }, 'heartbeat subscription ended');
      }
    })();

    receive((event) => {
      if (event.type === 'UPDATE_PROMPTS') {
        const sizeChanged = (event.width ?? size.width) !== size.width || (event.height ?? size.height) !== size.height;
        prompts = event.prompts;
        size = { width: event.width ?? size.width, height: event.height ?? size.height };
        const h = proc;
        if (!running || !h) {
          // The next attach warms these prompts up.
          notify({ type: 'WORKER_PROMPTS_APPLIED', workerId, warmupPerformed: false });
          return;
        }
        deps.procs
          .request(
            h,
            { type: 'update_prompts', streamId, workerId, prompts: prompts, ...(sizeChanged ? size : {}) },
            deps.config.actors.workerStartTimeoutMs,
          )
          .then(
            (r) => notify({ type: 'WORKER_PROMPTS_APPLIED', workerId, warmupPerformed: r.warmupPerformed === true || sizeChanged }),
            (err: unknown) => notify({ type: 'WORKER_PROMPTS_APPLIED', workerId, warmupPerformed: false, error: errorMessage(err) }),
          );
      } else if (event.type === 'STOP') {
        stopped = true;
        running = false;
        if (retry) clearTimeout(retry);
        abort.abort();
        const h = proc;
        void (async () => {
          if (h?.alive()) {
            const timeout = deps.config.actors.workerStopGraceMs;
            deps.procs.removeWorker(h, streamId, workerId);
            h.streams.delete(streamId);
            await deps.procs.request(h, { type: 'remove_worker', streamId, workerId }, timeout).catch(() => undefined);
            await deps.procs.request(h, { type: 'close_stream', streamId }, timeout).catch(() => undefined);
          }
          notify({ type: 'WORKER_TERMINATED', workerId });
        })();
      }
    });

    void attach();
    return () => {
      stopped = true;
      abort.abort();
      if (retry) clearTimeout(retry);
      sub.unsubscribe();
    };
  });
}
