/**
 * What the Channels service asks a channel's worker for because the mirror (mirror.ts) does not hold it: the
 * detailed status, a capture, and the HLS playlists and segments of an output or of the preview. A channel
 * that is not running, or a worker that does not answer, gives the empty answer.
 */
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Runtime from "effect/Runtime";
import type { ChannelId } from "../../../domain/base/ids.ts";
import { parseOutputUrl } from "../../../domain/url/url.ts";
import type { ChannelRuntimeStatus, HlsSource } from "../channel-types.ts";
import type { Entry } from "./mirror.ts";
import type { Command } from "./protocol.ts";
import { request, type Slot } from "./threads.ts";

export const makeRemoteReads = (
  runtime: Runtime.Runtime<never>,
  running: (id: ChannelId) => Entry | null,
  slotOf: (entry: Entry) => Slot,
) => {
  const remoteHls = (id: ChannelId, output: string | null): HlsSource => {
    const ask = <A>(file: Extract<Command, { op: "hls" }>["file"]) => {
      const entry = running(id);
      if (entry === null) return Promise.resolve(null);
      return Runtime.runPromise(runtime)(
        Effect.orElseSucceed(
          request<A | null>(slotOf(entry), { op: "hls", channel: id, output, file }),
          () => null,
        ),
      );
    };
    return {
      playlist: () => ask<string>({ kind: "playlist" }),
      segment: (name) => ask<Uint8Array>({ kind: "segment", name }),
    };
  };

  return {
    status: (id: ChannelId) =>
      Effect.suspend(() => {
        const entry = running(id);
        if (entry === null) return Effect.succeed(null);
        return Effect.orElseSucceed(
          request<ChannelRuntimeStatus | null>(slotOf(entry), { op: "status", channel: id }),
          () => null,
        );
      }),
    capture: (id: ChannelId, ms: number, maxBytes: number) =>
      Effect.suspend(() => {
        const entry = running(id);
        if (entry === null) return Effect.succeed(new Uint8Array(0));
        return Effect.orElseSucceed(
          request<Uint8Array>(slotOf(entry), { op: "capture", channel: id, ms, maxBytes }),
          () => new Uint8Array(0),
        );
      }),
    hls: (id: ChannelId, outputId: string) => {
      const output = running(id)?.spec.outputs.find((o) => o.id === outputId);
      if (output === undefined || !output.enabled) return null;
      const target = parseOutputUrl(output.url);
      return Either.isRight(target) && target.right.protocol === "hls" ? remoteHls(id, outputId) : null;
    },
    preview: (id: ChannelId) =>
      Effect.suspend(() => {
        const entry = running(id);
        if (entry === null) return Effect.succeed(null);
        return request<true | null>(slotOf(entry), {
          op: "hls",
          channel: id,
          output: null,
          file: null,
        }).pipe(
          Effect.map((there) => {
            if (there === null) return null;
            entry.previewActive = true;
            return remoteHls(id, null);
          }),
          Effect.orElseSucceed(() => null),
        );
      }),
  };
};
