// The machine definitions of streamfleet, pure data: the host provides their effects with `.provide()`.
// `machines` is what GET /inspect/machines/{name} serves (`machine.toJSON()`, drawable by Stately's visualizer).
import { streamMachine } from './stream.ts';
import { workerMachine } from './worker.ts';

export const machines = { stream: streamMachine, worker: workerMachine } as const;
export type MachineName = keyof typeof machines;

/** JSON definition of one machine (what Stately's visualizer reads). */
export function machineDefinition(name: MachineName): unknown {
  return JSON.parse(JSON.stringify(machines[name].toJSON()));
}

export * from './errors.ts';
export * from './limits.ts';
export * from './stream.ts';
export * from './worker.ts';
