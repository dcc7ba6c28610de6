// The machine definitions of streamfleet, pure data: the host provides their effects with `.provide()`.
// GET /inspect/machines/{name} serves `machineDefinition(name)`: `machine.toJSON()` (drawable by
// Stately's visualizer) plus the eventless transitions it leaves out.
import { streamMachine } from './stream.ts';
import { workerMachine } from './worker.ts';

export const machines = { stream: streamMachine, worker: workerMachine } as const;
export type MachineName = keyof typeof machines;

interface NodeLike {
  id: string;
  states?: Record<string, NodeLike>;
  always?: Array<{ target?: Array<{ id: string }>; guard?: unknown; reenter?: boolean }>;
}

function guardJson(g: unknown): unknown {
  if (g === undefined || g === null) return undefined;
  if (typeof g === 'string') return g;
  if (typeof g === 'object' && 'type' in (g as object)) return { type: (g as { type: unknown }).type };
  return typeof g === 'function' ? (g.name || 'guard') : String(g);
}

/** Adds each state's eventless (`always`) transitions, which `toJSON()` leaves out, in the shape of
 *  its `transitions` entries (eventType ''), so a drawing shows every way between states. */
function withAlways(node: NodeLike, json: Record<string, unknown>): void {
  if (node.always?.length) {
    json.always = node.always.map((t) => ({
      target: (t.target ?? []).map((x) => `#${x.id}`),
      ...(t.guard !== undefined ? { guard: guardJson(t.guard) } : {}),
      source: `#${node.id}`,
      reenter: t.reenter ?? false,
      eventType: '',
    }));
  }
  const states = json.states as Record<string, Record<string, unknown>> | undefined;
  for (const [key, child] of Object.entries(node.states ?? {})) if (states?.[key]) withAlways(child, states[key]);
}

/** JSON definition of one machine (what Stately's visualizer reads), with the `always` transitions. */
export function machineDefinition(name: MachineName): unknown {
  const m = machines[name];
  const json = JSON.parse(JSON.stringify(m.toJSON())) as Record<string, unknown>;
  withAlways(m.root as unknown as NodeLike, json);
  return json;
}

export * from './errors.ts';
export * from './limits.ts';
export * from './stream.ts';
export * from './worker.ts';
