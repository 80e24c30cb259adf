/**
 * The preview rendition exists only while asked for: the first request starts it (its playlist fills from the
 * live input), it ends once nobody has asked for the idle time, and the next request starts a fresh one.
 */
import { expect, layer } from "@effect/vitest";
import { Effect, Layer } from "effect";
import { ChannelId } from "../../src/domain/base/ids.ts";
import { PreviewSettings } from "../../src/effects/channel/channel-types.ts";
import { Channels } from "../../src/effects/channel/channels.ts";
import { eventually, freeUdpPort } from "../support/peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const services = Channels.Test.pipe(Layer.provide(Layer.succeed(PreviewSettings, { idleMs: 1500 })));

layer(services, { excludeTestServices: true })("the preview rendition", (it) => {
  it.scoped("starts when asked for, ends when no longer asked for, and starts afresh", () =>
    Effect.gen(function* () {
      const channels = yield* Channels;
      const id = ChannelId.make("peek");
      const input = yield* freeUdpPort;
      yield* channels.start({
        id,
        name: "peek",
        primary: { ip: "127.0.0.1", port: input },
        backup: null,
        outputs: [],
      });
      expect(channels.previewActive(id)).toBe(false);
      // Twelve seconds of stream at 1 Mbit/s, sent at its own pace while the test runs.
      const ts = new TsGenerator({ seed: 2, bitrate: 1_000_000 }).packets(
        Math.round((12 * 1_000_000) / 1504),
      );
      const datagrams = chunkTs(ts);
      yield* Effect.forkScoped(sendPaced(datagrams, input, datagrams.length / 12_000));

      yield* channels.preview(id);
      expect(channels.previewActive(id)).toBe(true);
      // Asked for again and again (as a playing page does), it keeps going and its playlist fills.
      const playlist = yield* eventually("the preview playlist with two segments", () =>
        Effect.runPromise(channels.preview(id)).then(async (served) => {
          const text = (await served?.playlist()) ?? null;
          return served !== null && text !== null && (text.match(/#EXTINF/g)?.length ?? 0) >= 2
            ? text
            : undefined;
        }),
      );
      expect(playlist).toContain("#EXT-X-TARGETDURATION:1");

      // Nobody asks: it ends within the idle time (plus a check), while the input still flows.
      yield* eventually(
        "the preview to end",
        () => Effect.runPromise(channels.sync).then(() => (channels.previewActive(id) ? undefined : true)),
        { timeoutMs: 4_000 },
      );
      const again = yield* channels.preview(id);
      expect(again).not.toBeNull();
      expect(yield* Effect.promise(async () => again?.playlist())).toBeNull();
      expect(channels.previewActive(id)).toBe(true);
    }),
  );
});
