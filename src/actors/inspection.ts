// XState inspection of every actor of this node: records go to a bounded ring buffer (the SSE replay),
// to live listeners (the SSE feed), to the bus (`sf.inspect.<node>`, for a cluster-wide view) and,
// when configured, to a @statelyai/inspect WebSocket inspector.
import { createWebSocketInspector } from '@statelyai/inspect';
import type { InspectionEvent, Observer } from 'xstate';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Bus } from '../transport/bus.ts';
import { subjects } from '../transport/subjects.ts';
import type { InspectionRecord } from './types.ts';

type Listener = (r: InspectionRecord) => void;

/** JSON-safe copy of an event (errors become their message; anything odd becomes its type). */
function plainEvent(e: unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(e, (_k, v: unknown) => (v instanceof Error ? { name: v.name, message: v.message } : v)));
  } catch {
    return { type: (e as { type?: unknown })?.type ?? 'unknown' };
  }
}

export class Inspection {
  private readonly ring: InspectionRecord[] = [];
  private readonly listeners = new Set<Listener>();
  private readonly ws: ReturnType<typeof createWebSocketInspector> | undefined;
  private seq = 0;
  private head = 0;

  constructor(
    private readonly config: Readonly<Config>,
    private readonly bus: Bus,
    private readonly log: Logger,
  ) {
    if (config.http.inspectUrl) {
      this.ws = createWebSocketInspector({ url: config.http.inspectUrl });
      this.ws.start();
    }
  }

  /** The `inspect` observer for one stream actor (its worker children report through it too). */
  observer(streamId: string): Observer<InspectionEvent> {
    return {
      next: (ev: InspectionEvent) => {
        try {
          this.ws?.inspect.next?.(ev);
        } catch (err) {
          this.log.debug({ err }, 'websocket inspector failed');
        }
        if (ev.type === '@xstate.microstep' || ev.type === '@xstate.action') return;
        const snap = ev.type === '@xstate.snapshot' ? (ev.snapshot as { value?: unknown; status?: string }) : undefined;
        this.record({
          seq: ++this.seq,
          time: Date.now(),
          type: ev.type,
          actor_id: (ev.actorRef as { id?: string }).id ?? ev.actorRef.sessionId,
          stream_id: streamId,
          ...('event' in ev && ev.event ? { event: plainEvent(ev.event) } : {}),
          ...(snap ? { snapshot: { value: snap.value, status: snap.status ?? 'active' } } : {}),
        });
      },
    };
  }

  private record(r: InspectionRecord): void {
    const cap = this.config.http.inspectBufferSize;
    if (this.ring.length < cap) this.ring.push(r);
    else {
      this.ring[this.head] = r;
      this.head = (this.head + 1) % cap;
    }
    for (const l of this.listeners) {
      try {
        l(r);
      } catch (err) {
        this.log.warn({ err }, 'inspection listener failed');
      }
    }
    if (!this.bus.isClosed()) {
      try {
        this.bus.publish(subjects.inspect(this.config.nodeId), r);
      } catch (err) {
        this.log.debug({ err }, 'inspection publish failed');
      }
    }
  }

  recent(filter: { streamId?: string } = {}): InspectionRecord[] {
    const ordered = [...this.ring.slice(this.head), ...this.ring.slice(0, this.head)];
    return filter.streamId ? ordered.filter((r) => r.stream_id === filter.streamId) : ordered;
  }

  on(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  close(): void {
    this.listeners.clear();
    this.ws?.stop();
  }
}
