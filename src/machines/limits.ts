// Supervision limits of a worker and the pure arithmetic the machines derive from them. The numbers
// come from `ActorConfig` (src/config.ts); this module only renames them for the machine input.
import { z } from 'zod';
import { defaultConfig, type ActorConfig } from '../config.ts';

export const WorkerLimitsSchema = z.object({
  /** Longest a spawn (join the bus) or a warmup may take; each stage gets the full budget. */
  startTimeoutMs: z.number().int().positive(),
  heartbeatIntervalMs: z.number().int().positive(),
  /** Heartbeats missed in a row (while running) before the worker counts as hung. */
  heartbeatMisses: z.number().int().positive(),
  restartBackoffBaseMs: z.number().int().min(0),
  restartBackoffMaxMs: z.number().int().positive(),
  /** Crash restarts allowed within restartWindowMs; one more and the worker is `failed`. */
  maxRestarts: z.number().int().min(0),
  restartWindowMs: z.number().int().positive(),
  /** A stream whose input ended waits this long at most for its last frames (default: none). */
  inputEndDrainMs: z.number().int().min(0).optional(),
});
export type WorkerLimits = z.infer<typeof WorkerLimitsSchema>;

/** The worker limits of an actor configuration (default: `defaultConfig.actors`). */
export function workerLimitsFrom(actors: ActorConfig = defaultConfig.actors): WorkerLimits {
  return {
    startTimeoutMs: actors.workerStartTimeoutMs,
    heartbeatIntervalMs: actors.heartbeatIntervalMs,
    heartbeatMisses: actors.heartbeatMisses,
    restartBackoffBaseMs: actors.restartBackoffBaseMs,
    restartBackoffMaxMs: actors.restartBackoffMaxMs,
    maxRestarts: actors.maxRestarts,
    restartWindowMs: actors.restartWindowMs,
    inputEndDrainMs: actors.inputEndDrainMs,
  };
}

/** Silence after which a running worker counts as hung. */
export function heartbeatTimeoutMs(limits: WorkerLimits): number {
  return limits.heartbeatIntervalMs * limits.heartbeatMisses;
}

/**
 * Delay before restart number `attempt` (0-based, counted within the restart window):
 * `min(base * 2^attempt, max)`, then "equal jitter": uniformly in [capped/2, capped), so restarts of
 * many workers that crashed together spread out, yet never exceed the cap nor drop below half of it.
 * `random` returns a number in [0, 1) (Math.random in production, a fixed source in tests).
 */
export function backoffDelayMs(limits: WorkerLimits, attempt: number, random: () => number): number {
  const exponential = limits.restartBackoffBaseMs * 2 ** Math.max(0, attempt);
  const capped = Math.min(limits.restartBackoffMaxMs, exponential);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.floor(capped / 2 + (r * capped) / 2);
}

/** Restart timestamps still inside the window ending at `now`: the list never outgrows maxRestarts + 1. */
export function restartsInWindow(times: readonly number[], now: number, limits: WorkerLimits): number[] {
  return times.filter((t) => now - t < limits.restartWindowMs).slice(-(limits.maxRestarts + 1));
}

/** Time and randomness the machines read; injected so tests run on xstate's SimulatedClock. */
export interface MachineEnv {
  now: () => number;
  random: () => number;
}

export const defaultEnv: MachineEnv = { now: () => Date.now(), random: () => Math.random() };
