// The stream resource: every route of docs/api-and-prompts.md. Handlers parse, check the URL
// allow-list and prompts, call the runtime, and shape its answer; nothing else.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { StreamRuntime } from '../../actors/types.ts';
import { ARCHITECTURE_NAMES, architectureOf, StreamStatus } from '../../stream-spec.ts';
import type { Config } from '../../config.ts';
import { SfError } from '../../errors.ts';
import { assertHostsAllowed } from '../allowed-hosts.ts';
import { DEFAULT_PROMPT, promptLimits, promptsOf, validateStreamPrompts } from '../../inference/stream-prompts.ts';
import {
  ErrorBody,
  GlobalStatusResponse,
  PromptsResponse,
  StartResponse,
  StopAllResponse,
  StreamsResponse,
  SuccessMessage,
  SwitchPromptBody,
  SwitchPromptResponse,
  UpdatePromptsResponse,
  WorkerResponse,
  WorkspaceInfoResponse,
  idParamsSchema,
  startBodySchema,
  updatePromptsBodySchema,
} from '../schemas.ts';

export interface StreamRoutesOptions {
  config: Readonly<Config>;
  runtime: StreamRuntime;
}

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody, 504: ErrorBody };

export const streamRoutes: FastifyPluginAsync<StreamRoutesOptions> = async (base, { config, runtime }) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const idParams = idParamsSchema(config.http);
  const limits = promptLimits(config.inference, runtime.workspace);

  async function mustGet(id: string): Promise<StreamStatus> {
    const s = await runtime.getStream(id);
    if (!s) throw new SfError('STREAM_NOT_FOUND', `Stream ${id} not found`);
    return s;
  }

  const startSchema = {
    tags: ['streams'],
    summary: 'Start a stream (aliases: POST /stream, POST /live-video-to-video)',
    body: startBodySchema(config.http),
    response: { 200: StartResponse, ...errors },
  };
  const start = async (req: { body: z.infer<typeof startSchema.body> }) => {
    const b = req.body;
    const id = b.gateway_request_id ?? b.request_id ?? b.stream_id;
    if (!id) throw new SfError('BAD_REQUEST', 'body.gateway_request_id: required (or request_id / stream_id)');
    const raw = promptsOf(b.params);
    const prompts = validateStreamPrompts(raw.length ? raw : [DEFAULT_PROMPT], limits);
    assertHostsAllowed(
      { subscribe_url: b.subscribe_url, publish_url: b.publish_url, control_url: b.control_url, events_url: b.events_url },
      config.http.allowedHosts,
    );
    const architecture = architectureOf(b.params.dedicated_worker, b.params.use_prompt_worker);
    await runtime.startStream({
      id,
      subscribeUrl: b.subscribe_url,
      publishUrl: b.publish_url,
      controlUrl: b.control_url,
      eventsUrl: b.events_url,
      width: b.params.width,
      height: b.params.height,
      architecture,
      prompts,
    });
    return {
      status: 'success' as const,
      message: `Stream ${id} started successfully`,
      request_id: id,
      config: {
        subscribe_url: b.subscribe_url,
        publish_url: b.publish_url,
        width: b.params.width,
        height: b.params.height,
        dedicated_worker: architecture === 'dedicated',
        use_prompt_worker: architecture === 'prompt_worker',
        ...ARCHITECTURE_NAMES[architecture],
        prompts_set: raw.length > 0,
        prompt_count: prompts.length,
      },
    };
  };
  for (const url of ['/stream/start', '/stream', '/live-video-to-video']) {
    app.post(url, { schema: startSchema }, start);
  }

  const statusSchema = { tags: ['streams'], params: idParams, response: { 200: StreamStatus, ...errors } };
  for (const url of ['/stream/:id', '/stream/:id/status']) {
    app.get(url, { schema: statusSchema }, async (req) => mustGet(req.params.id));
  }

  const stopSchema = { tags: ['streams'], params: idParams, response: { 200: SuccessMessage, ...errors } };
  // Commands go to the stream once: its own answer says 404 when there is no such stream.
  const stop = async (req: { params: { id: string } }) => {
    await runtime.stopStream(req.params.id);
    return { status: 'success' as const, message: `Stream ${req.params.id} stopped successfully` };
  };
  app.delete('/stream/:id', { schema: stopSchema }, stop);
  app.post('/stream/:id/stop', { schema: stopSchema }, stop);

  app.get('/streams', { schema: { tags: ['streams'], response: { 200: StreamsResponse } } }, async () => {
    const all = await runtime.listStreams();
    return { streams: Object.fromEntries(all.map((s) => [s.request_id, s])), count: all.length };
  });

  app.post('/stream/stop', { schema: { tags: ['streams'], response: { 200: StopAllResponse, ...errors } } }, async () => {
    const n = await runtime.stopAll();
    if (n === 0) throw new SfError('NO_STREAMS', 'No streams are running');
    return { status: 'stopped' as const, message: `Stopped ${n} stream(s)` };
  });

  app.get('/stream/status', { schema: { tags: ['streams'], response: { 200: GlobalStatusResponse } } }, async () => {
    const all = await runtime.listStreams();
    const active = all.filter((s) => s.running);
    return {
      processing_active: active.length > 0,
      stream_count: all.length,
      current_stream: active[0] ?? all[0] ?? null,
      all_streams: Object.fromEntries(all.map((s) => [s.request_id, s])),
    };
  });

  app.post(
    '/stream/:id/update-prompts',
    {
      schema: {
        tags: ['streams'],
        params: idParams,
        body: updatePromptsBodySchema(config.http),
        response: { 200: UpdatePromptsResponse, ...errors },
      },
    },
    async (req) => {
      const { id } = req.params;
      const raw = promptsOf(req.body);
      if (!raw.length) throw new SfError('PROMPT_MISSING', 'Either "prompt" or "prompts" is required');
      const r = await runtime.updatePrompts(id, { prompts: raw, parameters: req.body.parameters });
      return { status: 'success' as const, message: `Prompts updated for stream ${id}`, request_id: id, ...r };
    },
  );

  const workerSchema = { tags: ['workers'], params: idParams, response: { 200: WorkerResponse, ...errors } };
  for (const url of ['/stream/:id/worker', '/stream/:id/workers']) {
    app.get(url, { schema: workerSchema }, async (req) => {
      const s = await mustGet(req.params.id);
      return { request_id: s.request_id, worker_status: s.worker_status, architecture: s.architecture };
    });
  }

  const restartSchema = { tags: ['workers'], params: idParams, response: { 200: SuccessMessage, ...errors } };
  for (const url of ['/stream/:id/restart-worker', '/stream/:id/restart-workers']) {
    app.post(url, { schema: restartSchema }, async (req) => {
      await runtime.restartWorker(req.params.id);
      return { status: 'success' as const, message: `Dedicated worker restarted for stream ${req.params.id}` };
    });
  }

  app.post(
    '/stream/:id/switch-prompt',
    { schema: { tags: ['prompts'], params: idParams, body: SwitchPromptBody, response: { 200: SwitchPromptResponse, ...errors } } },
    async (req) => {
      const { id } = req.params;
      if (!req.body.prompt_id) throw new SfError('BAD_REQUEST', 'body.prompt_id: required');
      const active = await runtime.switchPrompt(id, req.body.prompt_id);
      return { status: 'success' as const, message: `Switched stream ${id} to prompt ${active}`, request_id: id, active_prompt_id: active };
    },
  );

  app.get(
    '/stream/:id/prompts',
    { schema: { tags: ['prompts'], params: idParams, response: { 200: PromptsResponse, ...errors } } },
    async (req) => {
      const s = await mustGet(req.params.id);
      if (s.architecture !== ARCHITECTURE_NAMES.prompt_worker.architecture) {
        throw new SfError('NOT_PROMPT_WORKER', `Stream ${req.params.id} is not a prompt-worker stream`);
      }
      return {
        status: 'success' as const,
        request_id: s.request_id,
        prompts: s.prompt_ids,
        active_prompt_id: s.active_prompt_id,
        total_prompts: s.prompt_ids.length,
      };
    },
  );

  app.get(
    '/stream/:id/workspace-info',
    { schema: { tags: ['streams'], params: idParams, response: { 200: WorkspaceInfoResponse, ...errors } } },
    async (req) => ({ success: true as const, stream_id: req.params.id, workspace_info: await runtime.workspaceInfo(req.params.id) }),
  );
};
