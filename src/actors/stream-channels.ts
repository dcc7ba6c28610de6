// The lifetime of a stream's own trickle channels (the output and, when given, the events channel),
// owned by the node that hosts the stream, whatever its worker processes do:
// - at start they are created (`POST /{ch}` with `Expect-Content`, as an orchestrator does), so a
//   subscriber that opens them as soon as start answers finds them (a server that does not
//   auto-create channels answers 404, which is fine: its gateway made them);
// - at every end of the stream (stopped, failed, input ended, node shutdown) they are closed
//   (`DELETE /{ch}`), so downstream readers end at once, even when no worker process was left to
//   close them (a crash loop that ended `failed`).
// Requests go through the trickle client (node:http: no redirect is ever followed).
import type { TrickleConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { simpleRequest } from '../transport/trickle/http-client.ts';

export interface ChannelUrls {
  publishUrl: string;
  eventsUrl?: string | undefined;
}

function channels(urls: ChannelUrls): { url: string; contentType: string }[] {
  const out = [{ url: urls.publishUrl, contentType: 'video/MP2T' }];
  if (urls.eventsUrl) out.push({ url: urls.eventsUrl, contentType: 'application/json' });
  return out;
}

/** Creates the channels; never throws (a failure is logged: the worker's publisher still creates them on first write). */
export async function openStreamChannels(urls: ChannelUrls, config: TrickleConfig, log: Logger): Promise<void> {
  await Promise.all(
    channels(urls).map(async ({ url, contentType }) => {
      const r = await simpleRequest(url, 'POST', { headerTimeoutMs: config.headerTimeoutMs, headers: { 'expect-content': contentType } });
      if ('error' in r) log.warn({ err: r.error, url }, 'could not create the trickle channel');
      else if (r.status >= 500) log.warn({ status: r.status, url }, 'could not create the trickle channel');
    }),
  );
}

/** Closes the channels; never throws (404, or go-livepeer's 400 `Invalid stream`: already closed or never created). */
export async function closeStreamChannels(urls: ChannelUrls, config: TrickleConfig, log: Logger): Promise<void> {
  await Promise.all(
    channels(urls).map(async ({ url }) => {
      const r = await simpleRequest(url, 'DELETE', { headerTimeoutMs: config.headerTimeoutMs });
      if ('error' in r) log.warn({ err: r.error, url }, 'could not close the trickle channel');
      else if (r.status !== 200 && r.status !== 404 && r.status !== 400) log.warn({ status: r.status, url }, 'could not close the trickle channel');
    }),
  );
}
