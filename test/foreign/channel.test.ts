/**
 * Only the broadcaster's bytes go on air: through a real channel, while strangers send datagrams of every
 * foreign kind to the same input port from other sockets, the UDP output carries exactly the real stream.
 * Also: an encoder restart (new SSRC, or the same SSRC with a new sequence) is taken, plain UDP after RTP
 * drops the rtp block, and the sender allow-list keeps another loopback address out (127.0.0.2 vs 127.0.0.1,
 * then a CIDR block). Counters are read where a user reads them: the stats, the channel and /metrics.
 */
import { Effect, Exit, Scope } from "effect";
import { afterEach, describe, expect, it } from "vitest";
import { analyse } from "../support/analyse.ts";
import { eventually, freeUdpPort, json, useTestApp } from "../support/app.ts";
import {
  API_REASON_ON_RTP_INPUT,
  FOREIGN_KINDS,
  ForeignDatagrams,
  type ForeignKind,
  NO_REJECTIONS,
  REAL_SSRC,
} from "../support/foreign.ts";
import * as peers from "../support/peers.ts";
import { asRtp, chunkTs, sendInterleaved, sendPaced } from "../support/sender.ts";
import { RtpWrapper, TsGenerator } from "../support/ts-generator.ts";

const REASON = API_REASON_ON_RTP_INPUT;

const app = useTestApp();
let scope: Scope.CloseableScope;
afterEach(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void));
});

const sink = async () => {
  scope = await Effect.runPromise(Scope.make());
  return Effect.runPromise(Scope.extend(peers.udpSink, scope));
};

const send = async (method: string, path: string, body?: unknown) => {
  const response = await app.request(path, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: await json(response) };
};

/** A running channel with one UDP output to `outputPort`; returns its input port. */
const runChannel = async (id: string, outputPort: number, extra: Record<string, unknown> = {}) => {
  const inputPort = await freeUdpPort();
  const created = await send("POST", "/api/channels", {
    id,
    name: id,
    rtp_ip: "127.0.0.1",
    rtp_port: inputPort,
    outputs: [{ name: "playout", protocol: "udp", url: `udp://127.0.0.1:${outputPort}` }],
    ...extra,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expect((await send("POST", `/api/channels/${id}/start`)).status).toBe(200);
  return inputPort;
};

type Input = Record<string, unknown> & {
  rejected: Record<string, number>;
  rtp: Record<string, number> | null;
};
const statsInput = async (id: string): Promise<Input> => {
  const stats = await send("GET", `/api/channels/${id}/stats`);
  return (stats.body.inputs as Input[])[0] as Input;
};
const channelInput = async (id: string): Promise<Input> =>
  ((await send("GET", `/api/channels/${id}`)).body.inputs as Input[])[0] as Input;

const arrived = (output: { totalBytes: () => number }, bytes: number, what: string) =>
  eventually(what, () => (output.totalBytes() >= bytes ? true : undefined), 20_000);

describe("foreign datagrams at a channel's input", () => {
  it("the output carries exactly the real stream while strangers send every foreign kind to the port", async () => {
    const output = await sink();
    const port = await runChannel("foreign", output.port);
    const ts = new TsGenerator({ seed: 7, bitrate: 4_000_000 }).packets(7 * 1500);
    const real = asRtp(chunkTs(ts), 65_000);
    const foreign = new ForeignDatagrams({ ssrc: REAL_SSRC });
    // Three strangers, each its own socket: after the first real datagram, each slot holds one foreign
    // datagram per stranger, the kinds in turn.
    const strangers = [0, 1, 2].map((k) => ({
      datagrams: real.map((_, i) => (i === 0 ? undefined : foreign.next(i * 3 + k).datagram)),
    }));
    const sent: Record<string, number> = { ...NO_REJECTIONS };
    for (const stranger of strangers)
      stranger.datagrams.forEach((datagram, i) => {
        if (datagram === undefined) return;
        const kind = FOREIGN_KINDS[
          (i * 3 + strangers.indexOf(stranger)) % FOREIGN_KINDS.length
        ] as ForeignKind;
        sent[REASON[kind]] = (sent[REASON[kind]] ?? 0) + 1;
      });
    await Effect.runPromise(sendInterleaved([{ datagrams: real }, ...strangers], port, 0.5));
    await arrived(output, ts.length, "the whole real stream at the output");

    const received = output.bytes();
    expect(received.length).toBe(ts.length);
    expect(Buffer.compare(received, Buffer.from(ts))).toBe(0);
    expect(analyse(received).ccErrors).toBe(0);
    for (const datagram of output.datagrams) expect(datagram.length % 188).toBe(0);

    const input = await eventually("every foreign datagram counted", async () => {
      const found = await statsInput("foreign");
      const total = Object.values(found.rejected).reduce((a, b) => a + b, 0);
      return total >= strangers.length * (real.length - 1) ? found : undefined;
    });
    expect(input.rejected).toEqual(sent);
    expect(input.malformed).toBe(sent.not_ts);
    expect(input).toMatchObject({ input_kind: "rtp", packets: ts.length / 188, continuity_errors: 0 });
    expect(input.rtp).toMatchObject({
      payload_type: 33,
      ssrc: REAL_SSRC,
      lost: 0,
      duplicate: 0,
      reordered: 0,
      ssrc_changes: 0,
      restarts: 0,
    });
    // The channel (read model summary) and /metrics say the same once the next snapshot is taken.
    await eventually("the summary to show the rejections", async () => {
      const summary = await channelInput("foreign");
      return JSON.stringify(summary.rejected) === JSON.stringify(sent) ? true : undefined;
    });
    const metrics = await (await app.request("/metrics")).text();
    for (const [reason, count] of Object.entries(sent))
      expect(metrics).toContain(
        `distributary_input_rejected_datagrams_total{channel="foreign",input="primary",reason="${reason}"} ${count}`,
      );
    await send("DELETE", "/api/channels/foreign");
  }, 60_000);

  it("takes an encoder restart: a new SSRC after the failover time of silence, the same SSRC with a new sequence at once", async () => {
    const output = await sink();
    const port = await runChannel("restart", output.port, { redundancy: { failover_after_ms: 200 } });
    const generator = new TsGenerator({ seed: 9, bitrate: 2_000_000 });
    const first = generator.packets(7 * 300);
    const second = generator.packets(7 * 300);
    const third = generator.packets(7 * 300);
    const before = new RtpWrapper({ ssrc: 1111, sequence: 40_000 });
    const after = new RtpWrapper({ ssrc: 2222, sequence: 7 });
    // While the first encoder sends, the second one's datagrams are foreign.
    const firstRtp = chunkTs(first).map((chunk) => before.wrap(chunk));
    const secondChunks = chunkTs(second);
    const early = firstRtp.map((_, i) =>
      i % 50 === 25 ? after.wrap(secondChunks[i % secondChunks.length] ?? second) : undefined,
    );
    await Effect.runPromise(sendInterleaved([{ datagrams: firstRtp }, { datagrams: early }], port, 0.5));
    await arrived(output, first.length, "the first encoder's stream");
    expect((await statsInput("restart")).rejected.foreign_ssrc).toBe(6);
    // The first encoder stops; once it was silent for 200 ms the input says so, and the new SSRC is taken
    // with its second datagram (the first is dropped: one stranger's datagram never takes an input).
    await eventually("the input to fall silent", async () =>
      (await channelInput("restart")).receiving === false ? true : undefined,
    );
    const restarted = new RtpWrapper({ ssrc: 2222, sequence: 9 });
    await Effect.runPromise(
      sendPaced(
        chunkTs(second).map((c) => restarted.wrap(c)),
        port,
        0.5,
      ),
    );
    // The same SSRC restarts its sequence at once, without a silence: resynchronised after two packets.
    const again = new RtpWrapper({ ssrc: 2222, sequence: 30_000 });
    await Effect.runPromise(
      sendPaced(
        chunkTs(third).map((c) => again.wrap(c)),
        port,
        0.5,
      ),
    );
    const all = Buffer.concat([first, second.subarray(7 * 188), third]);
    await arrived(output, all.length, "all three parts at the output");
    expect(Buffer.compare(output.bytes(), all)).toBe(0);
    const input = await statsInput("restart");
    expect(input.rejected).toEqual({ ...NO_REJECTIONS, foreign_ssrc: 7 });
    expect(input.rtp).toMatchObject({
      ssrc: 2222,
      ssrc_changes: 1,
      restarts: 1,
      lost: 0,
      duplicate: 0,
      reordered: 0,
    });
    await eventually("the channel's summary to count the restart once", async () => {
      const rtp = (await channelInput("restart")).rtp;
      return rtp?.restarts === 1 && rtp.duplicate === 0 && rtp.reordered === 0 ? true : undefined;
    });
    await send("DELETE", "/api/channels/restart");
  }, 60_000);

  it("drops the rtp block once the input has become plain UDP", async () => {
    const output = await sink();
    const port = await runChannel("kinds", output.port, { redundancy: { failover_after_ms: 100 } });
    const generator = new TsGenerator({ seed: 12, bitrate: 2_000_000 });
    const rtpPart = generator.packets(7 * 100);
    const udpPart = generator.packets(7 * 100);
    await Effect.runPromise(sendPaced(asRtp(chunkTs(rtpPart)), port, 0.5));
    await arrived(output, rtpPart.length, "the RTP part");
    expect(await channelInput("kinds")).toMatchObject({ input_kind: "rtp", rtp: { lost: 0 } });
    await eventually("the input to fall silent", async () =>
      (await channelInput("kinds")).receiving === false ? true : undefined,
    );
    await Effect.runPromise(sendPaced(chunkTs(udpPart), port, 0.5));
    // Plain TS takes the input with its second datagram.
    const both = Buffer.concat([rtpPart, udpPart.subarray(7 * 188)]);
    await arrived(output, both.length, "the UDP part");
    expect(Buffer.compare(output.bytes(), both)).toBe(0);
    expect(await statsInput("kinds")).toMatchObject({
      input_kind: "udp-ts",
      rtp: null,
      rejected: { ...NO_REJECTIONS, other_kind: 1 },
    });
    await eventually("the summary without an rtp block", async () => {
      const input = await channelInput("kinds");
      return input.input_kind === "udp-ts" && input.rtp === null ? true : undefined;
    });
    await send("DELETE", "/api/channels/kinds");
  }, 30_000);
});

describe("the sender allow-list", () => {
  it("keeps out a sender on another loopback address, by address and then by CIDR block", async () => {
    const output = await sink();
    const port = await runChannel("allow", output.port, { rtp_allowed_sources: ["127.0.0.2"] });
    const listed = await send("GET", "/api/channels/allow");
    expect(listed.body).toMatchObject({
      rtp_allowed_sources: ["127.0.0.2"],
      backup_rtp_allowed_sources: null,
    });

    // The intruder on 127.0.0.1 copies the real stream exactly (same SSRC, sequence and TS): only the
    // address tells it apart.
    const generator = new TsGenerator({ seed: 21, bitrate: 2_000_000 });
    const ts = generator.packets(7 * 300);
    const fake = new TsGenerator({ seed: 22, bitrate: 2_000_000 }).packets(7 * 300);
    const real = asRtp(chunkTs(ts));
    const intruder = asRtp(chunkTs(fake));
    await Effect.runPromise(
      sendInterleaved(
        [
          { datagrams: real, from: "127.0.0.2" },
          { datagrams: intruder, from: "127.0.0.1" },
        ],
        port,
        0.5,
      ),
    );
    await arrived(output, ts.length, "the allowed sender's stream");
    const input = await eventually("the intruder counted", async () => {
      const found = await statsInput("allow");
      return (found.rejected.sender_not_allowed ?? 0) >= intruder.length ? found : undefined;
    });
    expect(input.rejected).toEqual({ ...NO_REJECTIONS, sender_not_allowed: intruder.length });
    expect(Buffer.compare(output.bytes(), Buffer.from(ts))).toBe(0);

    // Now a block that holds 127.0.0.0 and 127.0.0.1 only: the roles swap, at once and without a restart
    // (the counters go on, the output keeps its socket).
    const patched = await send("PATCH", "/api/channels/allow", { rtp_allowed_sources: ["127.0.0.0/31"] });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    const more = generator.packets(7 * 300);
    await Effect.runPromise(
      sendInterleaved(
        [
          { datagrams: asRtp(chunkTs(more), 300), from: "127.0.0.1" },
          { datagrams: asRtp(chunkTs(fake), 300), from: "127.0.0.2" },
        ],
        port,
        0.5,
      ),
    );
    const all = Buffer.concat([ts, more]);
    await arrived(output, all.length, "the newly allowed sender's stream");
    expect(Buffer.compare(output.bytes(), all)).toBe(0);
    await eventually("the other sender counted beside the first one", async () =>
      ((await statsInput("allow")).rejected.sender_not_allowed ?? 0) >= intruder.length + 300
        ? true
        : undefined,
    );
    const started = await send("GET", "/api/events?channel=allow&type=channel_started,channel_stopped");
    expect((started.body.events as unknown[]).length).toBe(1);
    expect((await statsInput("allow")).rejected.sender_not_allowed).toBe(intruder.length + 300);
    // Clearing the list lets every sender in again.
    const cleared = await send("PATCH", "/api/channels/allow", { rtp_allowed_sources: null });
    expect(cleared.body).toMatchObject({ rtp_allowed_sources: null });
    await send("DELETE", "/api/channels/allow");
  }, 60_000);

  it("checks IPv6 senders against IPv6 blocks", async () => {
    const output = await sink();
    const port = await freeUdpPort();
    const created = await send("POST", "/api/channels", {
      id: "allow6",
      name: "allow6",
      rtp_ip: "::1",
      rtp_port: port,
      rtp_allowed_sources: ["2001:db8::/32"],
      outputs: [{ name: "playout", protocol: "udp", url: `udp://127.0.0.1:${output.port}` }],
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect((await send("POST", "/api/channels/allow6/start")).status).toBe(200);
    const generator = new TsGenerator({ seed: 31, bitrate: 2_000_000 });
    const refused = asRtp(chunkTs(generator.packets(7 * 50)));
    await Effect.runPromise(sendInterleaved([{ datagrams: refused }], port, 0.5, "::1"));
    await eventually("every datagram from ::1 refused", async () =>
      ((await statsInput("allow6")).rejected.sender_not_allowed ?? 0) >= refused.length ? true : undefined,
    );
    expect(output.totalBytes()).toBe(0);
    await send("PATCH", "/api/channels/allow6", { rtp_allowed_sources: ["2001:db8::/32", "::1/128"] });
    const ts = generator.packets(7 * 50);
    await Effect.runPromise(sendInterleaved([{ datagrams: asRtp(chunkTs(ts)) }], port, 0.5, "::1"));
    await arrived(output, ts.length, "the stream from ::1 once allowed");
    expect(Buffer.compare(output.bytes(), Buffer.from(ts))).toBe(0);
    await send("DELETE", "/api/channels/allow6");
  }, 30_000);

  it("refuses a malformed list with a problem naming the field, and documents the fields", async () => {
    scope = await Effect.runPromise(Scope.make());
    const base = { name: "bad list", rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort() };
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ rtp_allowed_sources: ["10.0.0.300"] }, "rtp_allowed_sources", "IPv4 or IPv6 address or CIDR"],
      [{ rtp_allowed_sources: ["10.0.0.0/33"] }, "rtp_allowed_sources", "from 0 to 32"],
      [{ rtp_allowed_sources: ["2001:db8::/129"] }, "rtp_allowed_sources", "from 0 to 128"],
      [{ rtp_allowed_sources: [] }, "rtp_allowed_sources", "at least one"],
      [{ rtp_allowed_sources: "10.0.0.1" }, "rtp_allowed_sources", "list"],
      [{ rtp_allowed_sources: [42] }, "rtp_allowed_sources", "as a string"],
      [{ backup_rtp_allowed_sources: ["10.0.0.1"] }, "backup_rtp_allowed_sources", "no backup input"],
    ];
    for (const [extra, field, words] of cases) {
      const response = await app.request("/api/channels", {
        method: "POST",
        body: JSON.stringify({ ...base, ...extra }),
      });
      const problem = await json(response);
      expect(response.status, JSON.stringify(extra)).toBe(400);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      expect(String(problem.detail)).toContain(field);
      expect(String(problem.detail)).toContain(words);
      const errors = problem.errors as Array<{ field: string }>;
      expect(errors.some((issue) => issue.field.startsWith(field))).toBe(true);
    }
    const good = await send("POST", "/api/channels", {
      ...base,
      rtp_allowed_sources: ["203.0.113.7", "198.51.100.0/24", "2001:db8::/32", "::1"],
    });
    expect(good.status).toBe(201);
    expect(good.body.rtp_allowed_sources).toEqual(["203.0.113.7", "198.51.100.0/24", "2001:db8::/32", "::1"]);
    // Kept in the store and the export, so a backup restores it.
    const stored = JSON.parse((await app.storeText()) ?? "{}") as {
      channels: Array<Record<string, unknown>>;
    };
    expect(stored.channels.find((channel) => channel.id === good.body.id)?.rtp_allowed_sources).toEqual(
      good.body.rtp_allowed_sources,
    );
    const exported = await send("GET", "/api/config");
    const channels = exported.body.channels as Array<Record<string, unknown>>;
    expect(channels.find((channel) => channel.id === good.body.id)?.rtp_allowed_sources).toEqual(
      good.body.rtp_allowed_sources,
    );
    await send("DELETE", `/api/channels/${String(good.body.id)}`);

    const document = await json(await app.request("/api/openapi.json", { token: null }));
    const text = JSON.stringify(document);
    expect(text).toContain("rtp_allowed_sources");
    expect(text).toContain("backup_rtp_allowed_sources");
    expect(text).toContain("sender_not_allowed");
  });
});
