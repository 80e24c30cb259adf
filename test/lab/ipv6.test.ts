/**
 * IPv6 end to end, with no IPv4 on any link (fd00:6::/64 only): the encoder sends one stream as RTP to the
 * service's unicast address and as plain TS to the source-specific group ff3e::8000:6, which the service joins
 * by its sender (MLDv2, the input's rtp_allowed_sources). The RTP input's outputs reach rx over IPv6: UDP, RTP,
 * SRT as a caller (srt-live-transmit listening) and as a listener (srt-live-transmit calling), RIST
 * (ristreceiver) and RTMP (our test receiver listening on an IPv6 address); each carries the stream byte for
 * byte with every cue (RTMP: every video frame, and every cue as onAdCue with the section's bytes). The API and
 * a channel page are reached at an IPv6 address of the service, which listens on `::`.
 *
 *   enc ── svc ── rx
 *           │
 *   root (the test) over an IPv6 management link
 */

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, it } from "vitest";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { sockaddrIn } from "../../src/effects/runtime/ffi/libsrt-structs.ts";
import { analyse } from "../support/analyse.ts";
import { eventually } from "../support/app.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import { channelOf, connectedOutput, startedChannel } from "../support/lab-channel.ts";
import { describeLab, type LabSink, labSend, labSink, useLab, written } from "../support/netlab.ts";
import { ipv4Addresses, link6, service6 } from "../support/netlab-ipv6.ts";
import { bframeStream, videoPes, withCues } from "../support/rtmp-media.ts";
import { chunkTs } from "../support/sender.ts";
import { STREAM_TYPE_AAC } from "../support/ts-generator.ts";

const SECONDS = 8;
const GROUP = "ff3e::8000:6";
const PORTS = {
  rtpIn: 26100,
  mcIn: 26101,
  udp: 26110,
  rtp: 26111,
  srtCaller: 26112,
  srtCallerOut: 26113,
  srtListener: 26114,
  srtListenerOut: 26115,
  rist: 26116,
  ristOut: 26117,
  rtmp: 26118,
  mcOut: 26119,
} as const;

/** Each 1316-byte datagram as an RTP packet (MP2T, payload type 33), as an encoder sends it. */
const asRtp = (datagrams: ReadonlyArray<Uint8Array>, perMs: number): ReadonlyArray<Uint8Array> =>
  datagrams.map((datagram, index) => {
    const header = Buffer.alloc(12);
    header[0] = 0x80;
    header[1] = 33;
    header.writeUInt16BE(index & 0xffff, 2);
    header.writeUInt32BE(Math.round((index / perMs) * 90) >>> 0, 4);
    header.writeUInt32BE(0x6e6e6e6e, 8);
    return Buffer.concat([header, datagram]);
  });

interface RtmpLine {
  readonly type: number;
  readonly head: string;
  readonly values: ReadonlyArray<unknown> | null;
}

describeLab("IPv6 only: inputs, outputs, API and pages", () => {
  const lab = useLab("h6v6");

  it("an RTP input and an SSM input over IPv6; UDP, RTP, SRT both ways, RIST and RTMP out, byte for byte with every cue", async () => {
    // H.264 with B-frames and AAC, a cue every 1.5 s just before a frame.
    const source = join(lab.dir, "source.ts");
    bframeStream(source, SECONDS);
    const plain = await readFile(source);
    const pes = videoPes(plain);
    const cueSections = [40, 77, 115, 152].map((frame, index) => ({
      before: pes[frame]?.packet ?? 0,
      section: encodeSection(immediateSpliceOut(600 + index)),
    }));
    const ts = withCues(plain, STREAM_TYPE_AAC, cueSections);
    const cues = cueSections.map((cue) => Buffer.from(cue.section).toString("base64"));
    const datagrams = chunkTs(ts);
    const perMs = (ts.length * 8) / SECONDS / (1316 * 8 * 1000);

    const enc = await lab.namespace("enc");
    const svc = await lab.namespace("svc");
    const rx = await lab.namespace("rx");
    const encSvc = await link6(lab, enc, svc);
    const svcRx = await link6(lab, svc, rx);
    const service = await service6(lab, svc, join(lab.dir, "config"));
    for (const ns of [enc, svc, rx]) expect(await ipv4Addresses(ns), `${ns.name} has no IPv4`).toEqual([]);
    const [encAt, svcIn, svcOut, rxAt] = [
      encSvc.a.address,
      encSvc.b.address,
      svcRx.a.address,
      svcRx.b.address,
    ];
    // The group's join goes out of the link to enc (every link has a route for ff00::/8).
    await svc.exec("ip", ["-6", "route", "add", `${GROUP}/128`, "dev", encSvc.b.dev, "table", "local"]);

    // rx: plain sinks, srt-live-transmit both ways, ristreceiver and the RTMP receiver, all on IPv6.
    // srt-live-transmit's UDP side takes IPv4 only: the tools hand what they get to sinks on rx's loopback.
    const sink = (port: number) => labSink(lab, rx, `[${rxAt}]`, port);
    const local = (port: number) => labSink(lab, rx, "127.0.0.1", port);
    const sinks: Record<string, LabSink> = {
      udp: await sink(PORTS.udp),
      rtp: await sink(PORTS.rtp),
      srtCaller: await local(PORTS.srtCallerOut),
      srtListener: await local(PORTS.srtListenerOut),
      rist: await local(PORTS.ristOut),
      multicast: await sink(PORTS.mcOut),
    };
    lab.spawn(rx, "srt-live-transmit", [
      `srt://[${rxAt}]:${PORTS.srtCaller}?mode=listener`,
      `udp://127.0.0.1:${PORTS.srtCallerOut}`,
    ]);
    const ristReceiver = lab.spawn(rx, "ristreceiver", [
      "-i",
      `rist://@[${rxAt}]:${PORTS.rist}`,
      "-o",
      `udp://127.0.0.1:${PORTS.ristOut}`,
      "-p",
      "1",
    ]);
    const rtmp = lab.spawn(rx, process.execPath, [
      join(import.meta.dirname, "../support/rtmp-sink-agent.ts"),
      rxAt,
      String(PORTS.rtmp),
    ]);
    const rtmpLines: RtmpLine[] = [];
    let rest = "";
    rtmp.child.stdout?.on("data", (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) if (line !== "") rtmpLines.push(JSON.parse(line) as RtmpLine);
    });
    await written(rtmp, "ready");

    const channel = await startedChannel(service, {
      id: "v6",
      name: "IPv6",
      rtp_ip: svcIn,
      rtp_port: PORTS.rtpIn,
      outputs: [
        { id: "udp", name: "udp", protocol: "udp", url: `udp://[${rxAt}]:${PORTS.udp}` },
        { id: "rtp", name: "rtp", protocol: "rtp", url: `rtp://[${rxAt}]:${PORTS.rtp}` },
        {
          id: "srtc",
          name: "srt caller",
          protocol: "srt",
          url: `srt://[${rxAt}]:${PORTS.srtCaller}?latency=200`,
        },
        {
          id: "srtl",
          name: "srt listener",
          protocol: "srt",
          url: `srt://[::]:${PORTS.srtListener}?mode=listener&latency=200`,
        },
        { id: "rist", name: "rist", protocol: "rist", url: `rist://[${rxAt}]:${PORTS.rist}` },
        {
          id: "rtmp",
          name: "rtmp",
          protocol: "rtmp",
          url: `rtmp://[${rxAt}]:${PORTS.rtmp}/live/k6?cues=onadcue`,
        },
      ],
    });
    const multicast = await startedChannel(service, {
      id: "v6ssm",
      name: "IPv6 SSM",
      rtp_ip: GROUP,
      rtp_port: PORTS.mcIn,
      rtp_allowed_sources: [encAt],
      outputs: [{ id: "udp", name: "udp", protocol: "udp", url: `udp://[${rxAt}]:${PORTS.mcOut}` }],
    });
    lab.spawn(rx, "srt-live-transmit", [
      `srt://[${svcOut}]:${PORTS.srtListener}?mode=caller&latency=200`,
      `udp://127.0.0.1:${PORTS.srtListenerOut}`,
    ]);
    for (const id of ["srtc", "srtl", "rist"]) await connectedOutput(service, channel, id, 30_000);

    // MLDv2: the service's socket joined the group for the encoder's address alone.
    const hex = (address: string) => sockaddrIn(address, 0).subarray(8, 24).toString("hex");
    const filters = await eventually("the source-specific join", async () => {
      const table = await svc.exec("cat", ["/proc/net/mcfilter6"]);
      return table.includes(hex(GROUP)) ? table : undefined;
    });
    expect(filters).toContain(hex(GROUP));
    expect(filters).toContain(hex(encAt));

    const rtpDatagrams = asRtp(datagrams, perMs);
    const sender = await labSend(
      lab,
      enc,
      join(lab.dir, "v6-schedule"),
      datagrams.map((datagram, index) => [
        { to: 0, datagram: rtpDatagrams[index] ?? datagram },
        { to: 1, datagram },
      ]),
      perMs,
      [`[${svcIn}]:${PORTS.rtpIn}`, `[${GROUP}]:${PORTS.mcIn}`],
    );
    await sender.done;

    for (const [name, received] of Object.entries(sinks)) {
      await eventually(
        `${name}: ${ts.length} bytes (has ${received.totalBytes()})`,
        () => (received.totalBytes() >= ts.length ? true : undefined),
        30_000,
      );
      // The RTP output's datagrams carry a 12-byte header before the same TS.
      const bytes =
        name === "rtp"
          ? Buffer.concat(received.arrivals.map((arrival) => arrival.datagram.subarray(12)))
          : received.bytes();
      expect(bytes.equals(ts), `${name}: byte for byte`).toBe(true);
      expect(analyse(bytes).sections, `${name}: every cue`).toEqual(cues);
    }

    // RTMP: every video frame (the sequence header first), every cue as onAdCue with the section's bytes.
    // A frame ends where the next PES begins: the stream's last one waits for a next that never comes.
    const expectedFrames = pes.length - 1;
    const frames = () => rtmpLines.filter((line) => line.type === 9 && line.head.slice(2) === "01");
    const videoFrames = await eventually(
      `the RTMP receiver to get ${expectedFrames} video frames`,
      () => (frames().length >= expectedFrames ? frames() : undefined),
      30_000,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}: ${frames().length} came`);
    });
    expect(videoFrames.length).toBe(expectedFrames);
    const adCues = rtmpLines
      .filter((line) => line.type === 18 && line.values?.[0] === "onAdCue")
      .map((line) => (line.values?.[1] as { cue?: string } | undefined)?.cue);
    expect(adCues).toEqual(cues);

    // The API and a page over IPv6; the masked URLs show the addresses in brackets.
    const view = await channelOf(service, channel);
    expect(view.outputs.map((output) => output.state)).toEqual(new Array(6).fill("connected"));
    const ssmView = await channelOf(service, multicast);
    expect(
      (ssmView.inputs[0] as { rejected: { sender_not_allowed: number } }).rejected.sender_not_allowed,
    ).toBe(0);
    // The page as a browser gets it: logged in with the admin token, its session cookie sent back.
    const login = await fetch(`${service.base}/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: service.base },
      body: new URLSearchParams({ token: `lab-${lab.run}-admin-token-0123456789abcdef`, next: "/" }),
    });
    expect(login.status).toBe(303);
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    const page = await fetch(`${service.base}/channels/${channel}`, { headers: { cookie } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html, html.slice(0, 3000)).toContain(`[${rxAt}]:${PORTS.rtmp}`);
    expect(ristReceiver.child.exitCode).toBeNull();
    console.log(
      `IPv6 only: ${datagrams.length} datagrams from [${encAt}] as RTP to [${svcIn}] and to ${GROUP} (joined for ` +
        `[${encAt}] alone); UDP, RTP, SRT caller and listener, RIST and the SSM input's UDP output byte for byte ` +
        `with ${cues.length} cues each; RTMP ${videoFrames.length} video frames and ${adCues.length} onAdCue; ` +
        `API and page at ${service.base}`,
    );
  }, 180_000);
});
