// The trickle server's optional bearer token (trickle.requireAuth): the HTTP API's token
// (http.authToken), asked of every trickle request. Off by default, since go-livepeer gateways and
// orchestrators send none.
import type { IncomingMessage } from 'node:http';
import type { TrickleConfig } from '../../config.ts';
import { bearerToken, tokenMatches } from '../../bearer-token.ts';

/** Says whether a request may be served; null when the server asks for no token. Throws when a
 *  token is required but none is configured (a server nobody could use). */
export function requestAuthoriser(cfg: TrickleConfig, token: string | undefined): ((req: IncomingMessage) => boolean) | null {
  if (!cfg.requireAuth) return null;
  if (!token) throw new Error('trickle.requireAuth needs a bearer token (http.authToken, --auth-token or SF_AUTH_TOKEN)');
  return (req) => {
    const given = bearerToken(req.headers.authorization);
    return given !== null && tokenMatches(given, token);
  };
}
