// Request and response schemas of the REST API (docs/api-and-prompts.md). One zod schema per
// shape; the handlers' types and the OpenAPI document are both derived from them. Unknown fields
// are accepted and ignored (gateways send more than we read); the fields we read are strict.
import { z } from 'zod';
import { UpdatePromptsResult, WorkspaceInfo } from '../actors/commands.ts';
import type { HttpConfig } from '../config.ts';
import { StreamStatus } from '../stream-spec.ts';

export function streamIdSchema(http: HttpConfig) {
  return z
    .string()
    .min(1)
    .max(http.maxIdLength)
    .regex(/^[A-Za-z0-9_-]+$/, 'may contain only letters, digits, "_" and "-"');
}

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** A prompt as gateways send it: a JSON string, or an object in ComfyUI's API format. */
const PromptValue = z.union([z.string(), z.record(z.string(), z.unknown())]);

/** A frame width or height: even (4:2:0 video), at most http.maxFrameSize. */
function frameSizeSchema(http: HttpConfig) {
  return z
    .number()
    .int()
    .min(2)
    .max(http.maxFrameSize)
    .refine((v) => v % 2 === 0, 'must be a multiple of 2');
}

export function startBodySchema(http: HttpConfig) {
  const size = frameSizeSchema(http);
  return z.object({
    subscribe_url: httpUrl,
    publish_url: httpUrl,
    control_url: httpUrl.optional(),
    events_url: httpUrl.optional(),
    gateway_request_id: streamIdSchema(http).optional(),
    request_id: streamIdSchema(http).optional(),
    stream_id: streamIdSchema(http).optional(),
    params: z
      .object({
        width: size.default(512),
        height: size.default(512),
        prompt: PromptValue.optional(),
        prompts: z.union([z.array(PromptValue), PromptValue]).optional(),
        dedicated_worker: z.boolean().default(true),
        use_prompt_worker: z.boolean().default(false),
      })
      .default({ width: 512, height: 512, dedicated_worker: true, use_prompt_worker: false }),
  });
}
export type StartBody = z.infer<ReturnType<typeof startBodySchema>>;

export function updatePromptsBodySchema(http: HttpConfig) {
  const size = frameSizeSchema(http);
  return z.object({
    prompt: PromptValue.optional(),
    prompts: z.union([z.array(PromptValue), PromptValue]).optional(),
    parameters: z
      .object({ width: size.optional(), height: size.optional(), warmup: z.boolean().optional() })
      .optional(),
  });
}
export type UpdatePromptsBody = z.infer<ReturnType<typeof updatePromptsBodySchema>>;

export const SwitchPromptBody = z.object({ prompt_id: z.string().min(1).max(64).optional() });

export function idParamsSchema(http: HttpConfig) {
  return z.object({ id: streamIdSchema(http) });
}

export const ErrorBody = z.looseObject({ error: z.string(), message: z.string() });

export const StartResponse = z.object({
  status: z.literal('success'),
  message: z.string(),
  request_id: z.string(),
  config: z.object({
    subscribe_url: z.string(),
    publish_url: z.string(),
    width: z.number(),
    height: z.number(),
    dedicated_worker: z.boolean(),
    use_prompt_worker: z.boolean(),
    pipeline_type: z.string(),
    architecture: z.string(),
    prompts_set: z.boolean(),
    prompt_count: z.number(),
  }),
});

export const SuccessMessage = z.object({ status: z.literal('success'), message: z.string() });

export const UpdatePromptsResponse = UpdatePromptsResult.extend({
  status: z.literal('success'),
  message: z.string(),
  request_id: z.string(),
});

export const WorkerResponse = z.object({
  request_id: z.string(),
  worker_status: StreamStatus.shape.worker_status,
  architecture: z.string(),
});

export const SwitchPromptResponse = z.object({
  status: z.literal('success'),
  message: z.string(),
  request_id: z.string(),
  active_prompt_id: z.string(),
});

export const PromptsResponse = z.object({
  status: z.literal('success'),
  request_id: z.string(),
  prompts: z.array(z.string()),
  active_prompt_id: z.string().nullable(),
  total_prompts: z.number(),
});

export const WorkspaceInfoResponse = z.object({
  success: z.literal(true),
  stream_id: z.string(),
  workspace_info: WorkspaceInfo,
});

export const StreamsResponse = z.object({ streams: z.record(z.string(), StreamStatus), count: z.number() });

export const StopAllResponse = z.object({ status: z.literal('stopped'), message: z.string() });

export const GlobalStatusResponse = z.object({
  processing_active: z.boolean(),
  stream_count: z.number(),
  current_stream: StreamStatus.nullable(),
  all_streams: z.record(z.string(), StreamStatus),
});

export const HealthResponse = z.object({
  status: z.literal('healthy'),
  service: z.literal('trickle-stream-processor'),
  version: z.string(),
  stream_manager_ready: z.boolean(),
});
