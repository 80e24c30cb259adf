/**
 * The fuzz of "only the broadcaster's bytes go on air": a million foreign datagrams of every kind — RTP that
 * is not whole TS, RTP of another SSRC or payload type, plain TS and noise after a sync byte on an RTP input,
 * noise without one, runts, and exact copies of the real datagrams from a sender outside the allow-list —
 * interleaved with a real RTP stream, pushed straight into the channel's receive path (what its socket calls;
 * loopback would drop some of a million datagrams sent this fast). The UDP output, received over a real
 * socket, must hold exactly the real stream's packets, with no continuity error, and the process's memory
 * must come back to its level. test/foreign/channel.test.ts sends the same kinds over the wire.
 */
import type { RemoteInfo } from "node:dgram";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Effect, Exit, Layer, Scope } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { PacketCore } from "../../src/core/packet-core.ts";
import { ChannelFaults } from "../../src/effects/channel/channel-types.ts";
import { eventually, freeUdpPort, json, useTestApp } from "../support/app.ts";
import {
  API_REASON_ON_RTP_INPUT,
  FOREIGN_KINDS,
  ForeignDatagrams,
  type ForeignKind,
  NO_REJECTIONS,
  REAL_SSRC,
} from "../support/foreign.ts";
import { udpReceiver } from "../support/peers.ts";
import { asRtp, chunkTs } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const FOREIGN = 1_000_000;
const REAL = 20_000;
const PER_REAL = FOREIGN / REAL;
const REASON: Readonly<Record<ForeignKind | "spoofed_sender", string>> = {
  ...API_REASON_ON_RTP_INPUT,
  spoofed_sender: "sender_not_allowed",
};

const sender = (address: string): RemoteInfo => ({ address, family: "IPv4", port: 5004, size: 1316 });
const broadcaster = sender("127.0.0.1");
const stranger = sender("127.0.0.9");

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const rssMiB = () => {
  gc();
  gc();
  return process.memoryUsage().rss / 2 ** 20;
};

let receive: ((datagram: Buffer, from: RemoteInfo) => void) | undefined;
const scope = Effect.runSync(Scope.make());
// Registered before the app's, so it runs after the app has closed (Vitest runs afterAll hooks as a stack).
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void));
});
const app = useTestApp({
  extra: Layer.succeed(ChannelFaults, {
    onListen: (channelId, role, receiveDatagram) => {
      if (channelId === "fuzz" && role === "primary") receive = receiveDatagram;
    },
  }),
});

describe("fuzz: foreign datagrams interleaved with a real stream", () => {
  it(`${FOREIGN.toLocaleString("en")} foreign datagrams of every kind: the output holds exactly the real stream, and memory comes back`, async () => {
    const ts = new TsGenerator({ seed: 41, bitrate: 8_000_000 }).packets(7 * REAL);
    const real = asRtp(chunkTs(ts), 60_000).map((datagram) => Buffer.from(datagram));
    const expected = Buffer.from(ts);

    // The output, checked as it arrives (nothing kept): bytes against the real stream, continuity on the way.
    let matched = 0;
    let mismatch: string | null = null;
    const continuity = PacketCore.load();
    const outputPort = await Effect.runPromise(
      Scope.extend(
        udpReceiver((datagram) => {
          if (mismatch !== null) return;
          const want = expected.subarray(matched, matched + datagram.length);
          if (datagram.length % 188 !== 0 || !want.equals(datagram)) {
            mismatch = `a datagram of ${datagram.length} bytes at output byte ${matched} is not the real stream's`;
            return;
          }
          matched += datagram.length;
          continuity.push(datagram);
          continuity.drainEvents(() => {});
        }),
        scope,
      ),
    );

    const created = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "fuzz",
        name: "fuzz",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
        rtp_allowed_sources: ["127.0.0.0/30"],
        outputs: [{ id: "playout", name: "playout", protocol: "udp", url: `udp://127.0.0.1:${outputPort}` }],
      }),
    });
    expect(created.status).toBe(201);
    expect((await app.request("/api/channels/fuzz/start", { method: "POST" })).status).toBe(200);
    const push = receive;
    if (push === undefined) throw new Error("the channel's receive path was not handed over");

    const foreign = new ForeignDatagrams({ ssrc: REAL_SSRC, seed: 4242 });
    const counts: Record<string, number> = {};
    const sentReal = (n: number) => n * 7 * 188;
    let sent = 0;
    /** Real datagram i, then its share of foreign ones: every tenth an exact copy from a stranger. */
    const slot = (i: number) => {
      const datagram = real[i] as Buffer;
      push(datagram, broadcaster);
      for (let k = 0; k < PER_REAL; k++) {
        const n = i * PER_REAL + k;
        if (n % 10 === 9) {
          push(datagram, stranger);
          counts.spoofed_sender = (counts.spoofed_sender ?? 0) + 1;
        } else {
          const { kind, datagram: bytes } = foreign.next(n);
          push(bytes as Buffer, broadcaster);
          counts[kind] = (counts[kind] ?? 0) + 1;
        }
        sent++;
      }
    };
    const drained = (i: number) =>
      eventually(
        "the output to catch up",
        () => (mismatch !== null || matched >= sentReal(i) - 2 * 2 ** 20 ? true : undefined),
        20_000,
      );
    const yieldToOutputs = () => new Promise<void>((resolve) => setImmediate(resolve));

    // A warm-up, so the baseline holds what a running channel holds.
    const WARM = 1000;
    for (let i = 0; i < WARM; i++) {
      slot(i);
      await yieldToOutputs();
    }
    await drained(WARM);
    const before = rssMiB();
    const started = performance.now();
    for (let i = WARM; i < REAL; i++) {
      slot(i);
      await yieldToOutputs();
      if (i % 1000 === 0) await drained(i);
    }
    const pushMs = performance.now() - started;
    await eventually(
      "the whole real stream at the output",
      () => (mismatch !== null || matched >= expected.length ? true : undefined),
      30_000,
    );
    const after = process.memoryUsage().rss / 2 ** 20;
    const afterGc = rssMiB();
    console.log(
      `fuzz: ${sent.toLocaleString("en")} foreign and ${REAL.toLocaleString("en")} real datagrams in ${(pushMs / 1000).toFixed(1)} s; ` +
        `RSS ${before.toFixed(0)} MiB before, ${after.toFixed(0)} MiB after, ${afterGc.toFixed(0)} MiB after gc`,
    );

    expect(sent).toBeGreaterThanOrEqual(FOREIGN);
    expect(mismatch).toBeNull();
    expect(matched).toBe(expected.length);
    expect(continuity.snapshot().tr101290.ccErrors).toBe(0);
    expect(continuity.snapshot().packets).toBe(7 * REAL);
    // Every kind was sent, and lands in its counter; the real stream is whole.
    expect(Object.keys(counts).sort()).toEqual([...FOREIGN_KINDS, "spoofed_sender"].sort());
    const expectedRejected: Record<string, number> = { ...NO_REJECTIONS };
    for (const [kind, count] of Object.entries(counts))
      expectedRejected[REASON[kind as ForeignKind]] =
        (expectedRejected[REASON[kind as ForeignKind]] ?? 0) + count;
    const stats = await json(await app.request("/api/channels/fuzz/stats"));
    const input = (stats.inputs as Array<Record<string, unknown>>)[0];
    expect(input?.rejected, JSON.stringify([input?.rejected, counts])).toEqual(expectedRejected);
    expect(input).toMatchObject({
      datagrams: REAL + sent,
      packets: 7 * REAL,
      continuity_errors: 0,
      input_kind: "rtp",
      rtp: { ssrc: REAL_SSRC, lost: 0, duplicate: 0, reordered: 0, restarts: 0, ssrc_changes: 0 },
    });
    expect((stats.outputs as Array<Record<string, unknown>>)[0]).toMatchObject({ queue_drops: 0 });
    // Memory comes back to its level: nothing per foreign datagram is kept.
    expect(afterGc - before).toBeLessThan(40);
  }, 240_000);
});
