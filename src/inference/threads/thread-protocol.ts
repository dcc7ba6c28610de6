// Messages between the worker process's main thread and an inference thread. Frames travel as
// ArrayBuffers in the transfer list (moved, never copied); everything else is plain structured data.
import type { InferenceConfig } from '../../config.ts';
import type { ResolvedPrompt } from '../types.ts';

export interface ThreadInit {
  /** The node's inference settings; its `workspace` is where models resolve. */
  config: InferenceConfig;
  provider: InferenceConfig['provider'];
  logLevel: string;
  name: string;
}

export type ToThread =
  | { op: 'compile'; id: number; prompt: ResolvedPrompt; width: number; height: number }
  | { op: 'run'; id: number; handle: number; buf: ArrayBuffer; byteOffset: number; byteLength: number }
  | { op: 'release'; id: number; handle: number };

export type FromThread =
  | { op: 'ready' }
  | { op: 'compiled'; id: number; handle: number; ms: number; outWidth: number; outHeight: number; shared: boolean }
  | { op: 'ran'; id: number; buf: ArrayBuffer; byteOffset: number; byteLength: number; width: number; height: number }
  | { op: 'released'; id: number }
  | { op: 'failed'; id: number; code: string; message: string };
