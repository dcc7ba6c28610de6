// The optional bearer token on the trickle port (trickle.requireAuth, with http.authToken): off by
// default so gateways that send no token keep working; when on, every trickle route needs it.
import { afterEach, describe, expect, it } from 'vitest';
import { TrickleConfigSchema } from '../src/config.ts';
import { tokenMatches } from '../src/bearer-token.ts';
import { createTrickleServer } from '../src/transport/trickle/server.ts';
import { openPost, openRequest, readAll, serverPool, trickleConfig, waitEvent } from './helpers/trickle.ts';

const TOKEN = 's3cret-token';
const auth = { authorization: `Bearer ${TOKEN}` };

const servers = serverPool();
const start = servers.start;
afterEach(() => servers.closeAll());

async function expect401(res: Response): Promise<void> {
  expect(res.status).toBe(401);
  expect(res.headers.get('www-authenticate')).toBe('Bearer');
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(await res.json()).toMatchObject({ error: 'Unauthorized', code: 'UNAUTHORIZED' });
}

describe('trickle server bearer token', () => {
  it('is off by default: a configured token is not asked for unless trickle.requireAuth is set', async () => {
    expect(TrickleConfigSchema.parse({}).requireAuth).toBe(false);
    const { base } = await start({}, '/', TOKEN);
    expect((await fetch(`${base}ch/0`, { method: 'POST', body: 'x' })).status).toBe(200);
    expect(await (await fetch(`${base}ch/0`)).text()).toBe('x');
  });

  it('with requireAuth answers 401 JSON to a missing or wrong token and changes nothing', async () => {
    const { base, server } = await start({ requireAuth: true }, '/', TOKEN);
    await expect401(await fetch(`${base}ch/0`, { method: 'POST', body: 'x' }));
    expect(server.channels()).toEqual([]);
    for (const authorization of ['Bearer s3cret-tokeX', 'Bearer s3cret', `Bearer ${TOKEN}${TOKEN}`, `Basic ${TOKEN}`, TOKEN, 'Bearer ']) {
      await expect401(await fetch(`${base}ch/0`, { method: 'POST', body: 'x', headers: { authorization } }));
    }
    expect(server.channels()).toEqual([]);
    expect(server.stats.unauthorized).toBe(7);

    expect((await fetch(`${base}ch/0`, { method: 'POST', body: 'x', headers: auth })).status).toBe(200);
    await expect401(await fetch(`${base}ch/0`));
    await expect401(await fetch(`${base}ch/next`));
    await expect401(await fetch(`${base}ch/0`, { method: 'DELETE' }));
    await expect401(await fetch(`${base}ch`, { method: 'DELETE' }));
    expect(server.channels()).toEqual(['ch']);
    const get = await fetch(`${base}ch/0`, { headers: { authorization: `bearer ${TOKEN}` } });
    expect(await get.text()).toBe('x');
  });

  it('with requireAuth refuses a preconnected or 100-continue POST without a token before it sends its body', async () => {
    const { base, server } = await start({ requireAuth: true }, '/', TOKEN);
    const pre = openPost(`${base}ch/0`);
    const res = await pre.response;
    expect(res.statusCode).toBe(401);
    expect(res.headers.connection).toBe('close');
    await readAll(res);
    pre.req.destroy();

    const exp = openRequest(`${base}ch/0`, 'POST', { expect: '100-continue' });
    let continued = false;
    exp.req.on('continue', () => (continued = true));
    exp.req.flushHeaders();
    const expRes = await exp.response;
    expect(expRes.statusCode).toBe(401);
    expect(continued).toBe(false);
    await readAll(expRes);
    exp.req.destroy();

    const ok = openRequest(`${base}ch/0`, 'POST', { expect: '100-continue', ...auth });
    ok.req.on('continue', () => ok.req.end('after continue'));
    ok.req.flushHeaders();
    const opened = waitEvent(server, 'post-open');
    expect((await ok.response).statusCode).toBe(200);
    await opened;
    expect(server.channels()).toEqual(['ch']);
  });

  it('refuses to start with requireAuth but no token', () => {
    expect(() => createTrickleServer({ config: trickleConfig({ requireAuth: true }) })).toThrow(/authToken/);
  });

  it('compares tokens of any length without throwing', () => {
    expect(tokenMatches(TOKEN, TOKEN)).toBe(true);
    expect(tokenMatches('', TOKEN)).toBe(false);
    expect(tokenMatches(TOKEN.slice(0, -1), TOKEN)).toBe(false);
    expect(tokenMatches(`${TOKEN}x`, TOKEN)).toBe(false);
    expect(tokenMatches('ü'.repeat(40), TOKEN)).toBe(false);
  });
});
