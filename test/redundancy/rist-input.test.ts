/**
 * RIST inputs (src/effects/ingest/rist-receiver.ts) against real senders: ristsender calling our listener in
 * the simple and the main profile, with AES-128 and AES-256 secrets, listening for our caller with EAP-SRP
 * (a ristsrppasswd file), and ffmpeg's and GStreamer's RIST senders. What arrives is the sent TS byte for byte,
 * every SCTE-35 section identical, no continuity error. Our listener checks EAP-SRP callers against a
 * ristsrppasswd file too (test/http/rist.test.ts: refusals in words).
 */
import { dirname } from "node:path";
import { it } from "@effect/vitest";
import { Effect, Exit, Scope } from "effect";
import { describe, expect } from "vitest";
import type { RistTarget } from "../../src/domain/url/rist.ts";
import { parseOutputUrl } from "../../src/domain/url/url.ts";
import { bindRistInput } from "../../src/effects/ingest/rist-receiver.ts";
import { eventually, freeUdpPort } from "../support/peers.ts";
import {
  foreignRistSender,
  freeEvenPort,
  type RistToolOptions,
  ristSenderPeer,
  srpFile,
} from "../support/rist-peers.ts";
import { collector, expectSame, primed, ristStreamWithCues } from "../support/rist-stream.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";

const target = (url: string): RistTarget => {
  const parsed = parseOutputUrl(url);
  if (parsed._tag === "Left" || parsed.right.protocol !== "rist") throw new Error(`not a RIST URL: ${url}`);
  return parsed.right;
};

/** Our input on `url`, a sender started by `sender` once it listens; the stream sent, compared, and the link. */
/** The directory of a URL's srpfile, which the input is told srpfiles may be in (DISTRIBUTARY_RIST_SRP_DIR). */
const srpDirOf = (url: string) => {
  const path = /[?&]srpfile=([^&]+)/.exec(url)?.[1];
  return path === undefined ? null : dirname(path);
};

const roundTrip = (
  url: (port: number) => string,
  sender: (port: number) => Effect.Effect<{ udpPort: number }, never, never>,
  seed: number,
  even = false,
) =>
  Effect.gen(function* () {
    const port = even ? yield* freeEvenPort : yield* freeUdpPort;
    const got = collector();
    const input = yield* bindRistInput(target(url(port)), got.onDatagram, "ts", srpDirOf(url(port)));
    const { udpPort } = yield* sender(port);
    yield* primed(udpPort, got.primed);
    const ts = ristStreamWithCues(seed);
    yield* sendPaced(chunkTs(ts), udpPort, 0.25);
    yield* eventually(`${ts.length} bytes`, () => (got.bytes().length >= ts.length ? true : undefined), {
      timeoutMs: 15_000,
      // How much came, and where it first differs from what was sent: a loss, or where the stream stopped.
      seen: () => {
        const bytes = got.bytes();
        let same = 0;
        while (same < bytes.length && bytes[same] === ts[same]) same++;
        return `${bytes.length} came, the first ${same} as sent`;
      },
    });
    expectSame(got.bytes(), ts);
    return input.link;
  });

const ristsender = (options: Omit<RistToolOptions, "port">) => (port: number) =>
  ristSenderPeer({ ...options, port }) as unknown as Effect.Effect<{ udpPort: number }, never, never>;

describe("RIST input", () => {
  it.scopedLive(
    "listener, main profile: ristsender calls; the TS arrives byte for byte, cues identical",
    () =>
      Effect.gen(function* () {
        const link = yield* roundTrip(
          (port) => `rist://@127.0.0.1:${port}`,
          ristsender({ mode: "connect" }),
          61,
        );
        // librist's readings add up: every data packet of the stream (and the primers) counted, none lost.
        const figures = yield* eventually("librist's readings", () =>
          link().packets >= 380 ? link() : undefined,
        );
        expect(figures).toMatchObject({ lost: 0, quality: 100, authenticated: null });
      }),
  );

  it.scopedLive("listener, simple profile: ristsender calls; byte for byte", () =>
    Effect.gen(function* () {
      yield* roundTrip(
        (port) => `rist://@127.0.0.1:${port}?profile=simple`,
        ristsender({ mode: "connect", profile: "simple" }),
        62,
        true,
      );
    }),
  );

  for (const aesType of [128, 256] as const) {
    it.scopedLive(`listener, main profile with an AES-${aesType} secret: byte for byte`, () =>
      Effect.gen(function* () {
        const secret = `rist-secret-${aesType}-0123`;
        const link = yield* roundTrip(
          (port) => `rist://@127.0.0.1:${port}?secret=${secret}&aes-type=${aesType}`,
          ristsender({ mode: "connect", secret, aesType }),
          63 + aesType,
        );
        yield* eventually("the peer authenticated", () => (link().authenticated === true ? true : undefined));
      }),
    );
  }

  it.scopedLive("caller with EAP-SRP: ristsender listens and checks us against its ristsrppasswd file", () =>
    Effect.gen(function* () {
      const file = yield* srpFile("distributary", "srp-password-42");
      yield* roundTrip(
        (port) => `rist://127.0.0.1:${port}?username=distributary&password=srp-password-42`,
        ristsender({ mode: "listen", srpFile: file }),
        64,
      );
    }),
  );

  it.scopedLive(
    "listener with EAP-SRP: ristsender authenticates with username and password against our ristsrppasswd file",
    () =>
      Effect.gen(function* () {
        const file = yield* srpFile("encoder-7", "srp-password-43");
        const link = yield* roundTrip(
          (port) => `rist://@127.0.0.1:${port}?srpfile=${file}`,
          ristsender({ mode: "connect", username: "encoder-7", password: "srp-password-43" }),
          67,
        );
        const figures = yield* eventually("the caller authenticated", () =>
          link().authenticated === true ? link() : undefined,
        );
        expect(figures.srpAttempt).toMatchObject({ user: "encoder-7", outcome: "asked" });
      }),
  );

  it.scopedLive(
    "listener with EAP-SRP: closed again and again while an unknown caller keeps being looked up, it closes at once",
    () =>
      Effect.gen(function* () {
        const file = yield* srpFile("encoder-7", "srp-password-43");
        const port = yield* freeUdpPort;
        const sender = yield* ristSenderPeer({
          mode: "connect",
          port,
          username: "intruder",
          password: "x-12345678",
        });
        const closes: Array<number> = [];
        for (let round = 0; round < 4; round++) {
          const scope = yield* Scope.make();
          const input = yield* bindRistInput(
            target(`rist://@127.0.0.1:${port}?srpfile=${file}`),
            () => {},
            "ts",
            dirname(file),
          ).pipe(Scope.extend(scope));
          yield* sendPaced([Buffer.alloc(1316, 0xff)], sender.udpPort);
          // librist asks about the caller on its own thread (every 0.5 s), waiting for this thread's answer.
          yield* eventually(
            "the caller looked up",
            () => (input.link().srpAttempt?.outcome === "unknown" ? true : undefined),
            { timeoutMs: 15_000 },
          );
          const started = performance.now();
          yield* Scope.close(scope, Exit.void);
          closes.push(Math.round(performance.now() - started));
        }
        console.log(`EAP-SRP listener closed in ${closes.join(", ")} ms while looked up`);
        expect(Math.max(...closes)).toBeLessThan(1000);
      }),
  );

  it.scopedLive(
    "listener with one EAP-SRP user (username and password on our URL): ristsender authenticates",
    () =>
      Effect.gen(function* () {
        const link = yield* roundTrip(
          (port) => `rist://@127.0.0.1:${port}?username=encoder-8&password=srp-password-44`,
          ristsender({ mode: "connect", username: "encoder-8", password: "srp-password-44" }),
          68,
        );
        yield* eventually("the caller authenticated", () =>
          link().authenticated === true ? true : undefined,
        );
      }),
  );

  it.scopedLive("listener: ffmpeg's RIST sender; byte for byte", () =>
    Effect.gen(function* () {
      yield* roundTrip(
        (port) => `rist://@127.0.0.1:${port}`,
        (port) =>
          foreignRistSender("ffmpeg", port) as unknown as Effect.Effect<{ udpPort: number }, never, never>,
        65,
      );
    }),
  );

  it.scopedLive("listener, simple profile: GStreamer's ristsink; byte for byte", () =>
    Effect.gen(function* () {
      yield* roundTrip(
        (port) => `rist://@127.0.0.1:${port}?profile=simple`,
        (port) =>
          foreignRistSender("gstreamer", port) as unknown as Effect.Effect<{ udpPort: number }, never, never>,
        66,
        true,
      );
    }),
  );
});
