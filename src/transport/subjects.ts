// Every subject name on the bus, in one place (style #4). Whoever hosts an actor subscribes to its
// subject; the address never says where the actor lives.
import { BusError } from './bus.ts';

/** An id that would change the shape of a subject (empty, `.`, `*`, `>`, whitespace). */
export class InvalidSubjectTokenError extends BusError {
  constructor(readonly kind: string, readonly value: string) {
    super('BUS_INVALID_SUBJECT', `${kind} ${JSON.stringify(value)} is not subject-safe (no '.', '*', '>', whitespace; not empty)`);
  }
}

const UNSAFE = /[.*>\s]/u;

/** Returns `value` if it can stand as one subject token; else throws InvalidSubjectTokenError. */
export function subjectToken(kind: string, value: string | number): string {
  const s = String(value);
  if (s.length === 0 || UNSAFE.test(s)) throw new InvalidSubjectTokenError(kind, s);
  return s;
}

export function isSubjectToken(value: string): boolean {
  return value.length > 0 && !UNSAFE.test(value);
}

const ROOT = 'sf';

/** Which frames a thumbnail shows: the stream's input (decoded) or its output (the graph's result). */
export type ThumbnailSide = 'input' | 'output';
export const THUMBNAIL_SIDES: readonly ThumbnailSide[] = ['input', 'output'];

/** The stream id and side of a thumbnail subject, or null if it is not one. */
export function parseThumbSubject(subject: string): { streamId: string; side: ThumbnailSide } | null {
  const parts = subject.split('.');
  if (parts.length !== 5 || parts[0] !== ROOT || parts[1] !== 'stream' || parts[3] !== 'thumb') return null;
  const side = parts[4];
  if (side !== 'input' && side !== 'output') return null;
  return { streamId: parts[2], side };
}

export const subjects = {
  /** A stream actor's inbox (request/reply): start, stop, status, prompt updates. */
  streamCmd: (streamId: string) => `${ROOT}.stream.${subjectToken('stream id', streamId)}.cmd`,
  /** Events of one stream: state changes, stats, errors. */
  streamEvt: (streamId: string) => `${ROOT}.stream.${subjectToken('stream id', streamId)}.evt`,
  /** A worker process's heartbeats and stats. */
  workerHb: (streamId: string, worker: string | number) =>
    `${ROOT}.stream.${subjectToken('stream id', streamId)}.worker.${subjectToken('worker', worker)}.hb`,
  /** The latest small JPEG of a stream's input or output frames, published by its worker process a
   *  few times a second (payload: the JPEG bytes alone; never a raw frame). */
  streamThumb: (streamId: string, side: ThumbnailSide) =>
    `${ROOT}.stream.${subjectToken('stream id', streamId)}.thumb.${subjectToken('thumbnail side', side)}`,
  /** A worker process's inbox (request/reply, ProcCommand -> Reply). */
  procCmd: (procId: string) => `${ROOT}.proc.${subjectToken('proc id', procId)}.cmd`,
  /** Published once by a worker process when its inbox is subscribed (the parent stops pinging). */
  procReady: (procId: string) => `${ROOT}.proc.${subjectToken('proc id', procId)}.ready`,
  /** A node's inbox (request/reply, NodeCommand -> Reply): start a stream placed here, adopt one, drain. */
  nodeCmd: (nodeId: string) => `${ROOT}.node.${subjectToken('node id', nodeId)}.cmd`,
  /** A node's broadcast of its streams' status (each heartbeat and on every state change). */
  nodeStreams: (nodeId: string) => `${ROOT}.node.${subjectToken('node id', nodeId)}.streams`,
  /** XState inspection events of one node. */
  inspect: (nodeId: string) => `${ROOT}.inspect.${subjectToken('node id', nodeId)}`,
} as const;

/** Patterns for subscribers. */
export const subjectPatterns = {
  /** Thumbnails of every stream, both sides (`sf.stream.<id>.thumb.<side>`). */
  allThumbnails: `${ROOT}.stream.*.thumb.*`,
  /** Every node's stream broadcast. */
  allNodeStreams: `${ROOT}.node.*.streams`,
} as const;
