// Typed errors of the machine layer. Callers branch on `code`, never on message text.
import { CodedError, type CodeOf } from '../errors.ts';

export type MachineErrorCode = CodeOf<'machine'>;

export class MachineError extends CodedError<MachineErrorCode> {}

/**
 * Thrown by the placeholder actors of a machine definition: the machines are pure data and the host
 * (src/actors) must `.provide()` every effect. A forgotten one fails loudly through the machine's
 * normal error path (a worker crash, a failed stream) instead of silently doing nothing.
 */
export class ActorNotProvidedError extends MachineError {
  constructor(readonly actor: string) {
    super('ACTOR_NOT_PROVIDED', `actor ${actor} is not provided by the host`);
  }
}

/** Text of an unknown thrown value, for the reasons kept in machine context. */
/**
 * The worker refused the prompts themselves (they failed validation or could not be compiled): the
 * request's fault, not the service's. Read from the typed code the process replied with.
 */
export function isPromptRejection(err: unknown): boolean {
  const code = (err as { workerCode?: unknown } | null)?.workerCode;
  return code === 'PROMPT_INVALID' || code === 'PROMPT_REJECTED';
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : JSON.stringify(err) ?? String(err);
}
