/**
 * HLS outputs served by the service: `GET /hls/<channel>/<output>/index.m3u8` and the segments it lists.
 *
 * Who may read: a signed-in page session (any role: viewers watch), a token in the Authorization or X-API-Key
 * header (any role) or, with sign-on, the identity provider's JWT in the Authorization header, or, for players that cannot send headers, a viewer token in the URL (`?token=`): only a
 * read-only token may travel in a URL, where proxies and histories keep it. With a URL token the playlist's
 * segment URIs carry it too, so the player's segment requests pass the same check. A refused token counts
 * against the address as a wrong token at the API does, and any refused token (unknown, or not a viewer's in
 * the URL) gets the same answer, which names no token. A caller whose grants do not reach the channel gets 403
 * (see access.ts), as at the API.
 */

import type * as Option from "effect/Option";
import type { Context } from "hono";
import type { ChannelId } from "../domain/base/ids.ts";
import type { HlsSource } from "../effects/channel/channel-types.ts";
import type { Principal } from "../effects/control/auth.ts";
import { PLAYLIST_NAME } from "../effects/outputs/hls.ts";
import { refusalOn } from "./access.ts";
import {
  type AuthEnv,
  answerJwt,
  bearerToken,
  countFailure,
  type FailureLimiter,
  forbidden,
  headerToken,
  type JwtCheck,
  tooManyFailures,
} from "./auth.ts";
import { problemResponse } from "./problem.ts";

interface HlsAccess {
  /** The principal of the request's page session, if any. */
  readonly sessionPrincipal: (c: Context) => Principal | null;
  readonly authenticate: (token: string) => Option.Option<Principal>;
  /** The identity provider's JWTs, in the header only (sign-on configured); none by default. */
  readonly checkJwt?: JwtCheck;
  /** The failure limiter the API uses, so that guesses here count with guesses there. */
  readonly limiter: FailureLimiter;
  readonly served: (channel: ChannelId, output: string) => HlsSource | null | Promise<HlsSource | null>;
  /** How long a playlist request waits for the first segment (a preview just started); 0 answers at once. */
  readonly waitForPlaylistMs?: number;
}

const playlistWithin = async (served: HlsSource, ms: number): Promise<string | null> => {
  const deadline = Date.now() + ms;
  let playlist = await served.playlist();
  while (playlist === null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    playlist = await served.playlist();
  }
  return playlist;
};

const segmentFile = /^segment-\d+\.ts$/;

const NEEDS =
  "this needs a page session, a token in 'Authorization: Bearer <token>', or a viewer token as ?token= (only a read-only token may travel in a URL)";

const refused = (detail: string) =>
  problemResponse(
    { status: 401, title: "Unauthorized", detail },
    { "www-authenticate": 'Bearer realm="distributary"' },
  );

export const serveHls = (access: HlsAccess) => async (c: Context<AuthEnv>) => {
  const inHeader = headerToken(c);
  const urlToken = c.req.query("token");
  let principal = access.sessionPrincipal(c);
  if (principal === null) {
    const token = inHeader ?? urlToken;
    if (token === undefined) return refused(NEEDS);
    const fromToken = access.authenticate(token);
    const bearer = bearerToken(c);
    const jwt = fromToken._tag === "None" && bearer !== undefined ? access.checkJwt?.(bearer) : undefined;
    if (jwt !== undefined) {
      const refusal = await answerJwt(c, await jwt, access.limiter);
      if (refusal !== null) return refusal;
      principal = c.get("principal");
    } else {
      const allowed =
        fromToken._tag === "Some" && (inHeader !== undefined || fromToken.value.role === "viewer");
      if (!allowed) {
        const wait = countFailure(access.limiter, c);
        return wait > 0 ? tooManyFailures(wait) : refused(`the token is not valid here: ${NEEDS}`);
      }
      principal = fromToken.value;
    }
  }
  c.set("principal", principal);
  const channel = c.req.param("channel") as ChannelId;
  const outOfReach = refusalOn(c, c.get("access")?.channel(channel) ?? { id: channel }, "viewer");
  if (outOfReach !== null) return forbidden(outOfReach.message);
  const output = c.req.param("output") ?? "";
  const file = c.req.param("file") ?? "";
  const served = await access.served(channel, output);
  const notHere = (detail: string) => problemResponse({ status: 404, title: "Not found", detail });
  if (served === null) return notHere(`channel ${channel} runs no HLS output ${output}`);
  if (file === PLAYLIST_NAME) {
    const playlist = await playlistWithin(served, access.waitForPlaylistMs ?? 0);
    if (playlist === null) return notHere("no segment yet: the playlist appears after the first one");
    const text =
      urlToken === undefined
        ? playlist
        : playlist.replace(/^(segment-\d+\.ts)$/gm, `$1?token=${encodeURIComponent(urlToken)}`);
    return c.body(text, 200, {
      "content-type": "application/vnd.apple.mpegurl",
      "cache-control": "no-cache",
    });
  }
  if (!segmentFile.test(file))
    return notHere(`no file ${file}: HLS outputs serve index.m3u8 and segment-N.ts`);
  const segment = await served.segment(file);
  if (segment === null) return notHere(`segment ${file} has left the playlist`);
  return c.body(new Uint8Array(segment), 200, {
    "content-type": "video/mp2t",
    "cache-control": "private, max-age=60",
  });
};
