// Prometheus metrics, derived from the runtime's operational events and its stream list at scrape
// time. One registry per app, so tests and several apps in one process never share counters.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RuntimeEvent, StreamRuntime } from '../actors/types.ts';

export interface HttpMetrics {
  readonly contentType: string;
  render(): Promise<string>;
  /** Records one answered HTTP request (an onResponse hook). */
  observeRequest(req: FastifyRequest, reply: FastifyReply): void;
  close(): void;
}

const LATENCY_BUCKETS_S = [0.001, 0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5];
const DURATION_BUCKETS_S = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];

export function createHttpMetrics(runtime: StreamRuntime): HttpMetrics {
  const registry = new Registry();
  // Each node serves its own figures; the label tells them apart when a cluster is scraped.
  registry.setDefaultLabels({ node: runtime.nodeId });
  collectDefaultMetrics({ register: registry, prefix: 'sf_process_' });

  new Gauge({
    name: 'sf_streams',
    help: 'Streams on this node by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const s of await runtime.listStreams()) if ((s.node_id ?? runtime.nodeId) === runtime.nodeId) this.inc({ state: s.state });
    },
  });
  const fpsIn = new Gauge({ name: 'sf_stream_input_fps', help: 'Input frames per second', labelNames: ['stream'], registers: [registry] });
  const fpsOut = new Gauge({ name: 'sf_stream_output_fps', help: 'Output frames per second', labelNames: ['stream'], registers: [registry] });
  const latency = new Histogram({
    name: 'sf_frame_latency_seconds',
    help: "A frame's latency through the service: from the arrival of its last input byte to the write of its last output byte",
    labelNames: ['stream'],
    buckets: LATENCY_BUCKETS_S,
    registers: [registry],
  });
  const dropped = new Counter({
    name: 'sf_frames_dropped_total',
    help: 'Input frames dropped, by reason',
    labelNames: ['stream', 'reason'],
    registers: [registry],
  });
  const frames = new Counter({ name: 'sf_frames_processed_total', help: 'Frames processed', labelNames: ['stream'], registers: [registry] });
  const restarts = new Counter({
    name: 'sf_worker_restarts_total',
    help: 'Worker process restarts',
    labelNames: ['stream', 'reason'],
    registers: [registry],
  });
  const warmup = new Histogram({
    name: 'sf_warmup_duration_seconds',
    help: 'Graph compile + warmup duration',
    buckets: DURATION_BUCKETS_S,
    registers: [registry],
  });
  const promptUpdate = new Histogram({
    name: 'sf_prompt_update_duration_seconds',
    help: 'Prompt update duration, request to swap',
    labelNames: ['warmup'],
    buckets: DURATION_BUCKETS_S,
    registers: [registry],
  });
  const http = new Histogram({
    name: 'sf_http_request_duration_seconds',
    help: 'HTTP requests by route, method and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [registry],
  });

  const lastFrameCount = new Map<string, number>();
  const off = runtime.onRuntimeEvent((e: RuntimeEvent) => {
    switch (e.type) {
      case 'stats': {
        fpsIn.set({ stream: e.streamId }, e.stats.fps_in);
        fpsOut.set({ stream: e.streamId }, e.stats.fps_out);
        for (const ms of e.latenciesMs) latency.observe({ stream: e.streamId }, ms / 1000);
        for (const [reason, n] of Object.entries(e.dropsByReason)) if (n > 0) dropped.inc({ stream: e.streamId, reason }, n);
        const before = lastFrameCount.get(e.streamId) ?? 0;
        if (e.frameCount > before) frames.inc({ stream: e.streamId }, e.frameCount - before);
        lastFrameCount.set(e.streamId, e.frameCount);
        break;
      }
      case 'worker_restart':
        restarts.inc({ stream: e.streamId, reason: e.reason });
        break;
      case 'warmup':
        warmup.observe(e.durationMs / 1000);
        break;
      case 'prompt_update':
        promptUpdate.observe({ warmup: String(e.warmupPerformed) }, e.durationMs / 1000);
        break;
      case 'state':
        if (e.actor === 'stream' && (e.state === 'terminated' || e.state === 'failed')) {
          fpsIn.remove({ stream: e.streamId });
          fpsOut.remove({ stream: e.streamId });
          lastFrameCount.delete(e.streamId);
        }
        break;
    }
  });

  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),
    observeRequest(req, reply) {
      const route = req.routeOptions.url ?? 'unmatched';
      http.observe({ method: req.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    },
    close: off,
  };
}
