// Reading the codes of typed errors (WorkerError, MediaError, TrickleError, BusError ...) and their
// causes. WorkerError itself lives with the worker protocol its codes travel in.

/** The `code` of an error if it has a string one (GraphError, MediaError, TrickleError, BusError ...). */
export function errorCode(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

/** Walks `cause` links (bounded) and returns the first error matching `pred`. */
export function findCause<T>(err: unknown, pred: (e: unknown) => e is T, depth = 8): T | undefined {
  let e: unknown = err;
  for (let i = 0; i < depth && e; i++) {
    if (pred(e)) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
