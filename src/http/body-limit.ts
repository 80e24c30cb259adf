/**
 * Request bodies are bounded before they are read: a declared Content-Length over the limit is refused at once,
 * a chunked body as soon as its bytes pass it, so nobody can make the service buffer more than a route needs —
 * not even before logging in.
 */
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { MAX_CHANNEL_JSON_BYTES } from "../domain/channel/channel.ts";
import { problemResponse } from "./problem.ts";

/**
 * Body limits follow the schema's own maximums. Any body but an import holds at most one channel, so it may
 * take what a channel with 64 outputs of the longest URLs, names and policies and a full schedule takes
 * (about 590 KiB). An import is bounded generously: 64 MiB holds 1000 channels at ordinary URL lengths. The
 * login form holds a token and a path.
 */
export const MAX_BODY_BYTES = MAX_CHANNEL_JSON_BYTES;
export const MAX_IMPORT_BODY_BYTES = 64 * 1024 * 1024;
export const MAX_LOGIN_BODY_BYTES = 4 * 1024;

const describeBytes = (bytes: number) =>
  bytes >= 1024 * 1024 ? `${bytes / (1024 * 1024)} MiB` : `${Math.round(bytes / 1024)} KiB`;

export const limitBody = (maxSize: number): MiddlewareHandler =>
  bodyLimit({
    maxSize,
    onError: () =>
      problemResponse({
        status: 413,
        title: "Body too large",
        detail: `the request body is over ${describeBytes(maxSize)}`,
      }),
  });
