/**
 * The per-output policy end to end, on real sockets: a channel's outputs each take what their policy says
 * (SCTE-35 strip or filter, PID remap and drop, one programme of an MPTS), checked at the receiver with our
 * own TS reading (sections, PMTs, CRCs, continuity in the manner of TR 101 290 priority 1) and with Debian's
 * ffprobe and ffmpeg on the captured files. A policy changed while the input flows keeps the output's
 * connection and its continuity.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, layer } from "@effect/vitest";
import { Effect, Either, Fiber } from "effect";
import { execa } from "execa";
import { decodeSection, encodeSection, isPrivateDescriptor } from "../../src/core/scte35/index.ts";
import { crc32Mpeg2 } from "../../src/core/ts/crc32.ts";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import type { OutputPolicy } from "../../src/domain/channel/output-policy-schema.ts";
import type { OutputEntryStatus, OutputSpec } from "../../src/effects/channel/channel-types.ts";
import { Channels } from "../../src/effects/channel/channels.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import { fixturePath } from "../support/fixtures.ts";
import { eventually, freeUdpPort, type UdpSink, udpSink } from "../support/peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const PACKET = 188;

// ---------------------------------------------------------------------------------------------------------
// Reading a TS as a receiver does: packets, sections on every PID, PAT and PMT, continuity.

const packetsOf = (ts: Uint8Array): Uint8Array[] => {
  const packets: Uint8Array[] = [];
  for (let at = 0; at + PACKET <= ts.length; at += PACKET) packets.push(ts.subarray(at, at + PACKET));
  return packets;
};

const pidOf = (packet: Uint8Array): number => (((packet[1] ?? 0) & 0x1f) << 8) | (packet[2] ?? 0);

const onPids = (ts: Uint8Array, keep: (pid: number) => boolean): Uint8Array[] =>
  packetsOf(ts).filter((packet) => keep(pidOf(packet)));

const pidCounts = (ts: Uint8Array): Map<number, number> => {
  const counts = new Map<number, number>();
  for (const packet of packetsOf(ts)) counts.set(pidOf(packet), (counts.get(pidOf(packet)) ?? 0) + 1);
  return counts;
};

const joined = (packets: ReadonlyArray<Uint8Array>): Buffer => Buffer.concat(packets);

interface Section {
  readonly pid: number;
  /** Index of the packet that completed it. */
  readonly packet: number;
  readonly bytes: Buffer;
}

/**
 * Every section on every PID that carries sections (a PID whose payload starts with a PES start code is
 * left alone): pointer_field, sections spanning packets, several sections in a packet, 0xFF stuffing.
 */
const sectionsOf = (ts: Uint8Array): Section[] => {
  const sections: Section[] = [];
  const pending = new Map<number, Buffer>();
  const pes = new Set<number>();
  const drain = (pid: number, index: number, bytes: Buffer) => {
    let rest = bytes;
    while (rest.length >= 1 && rest[0] !== 0xff) {
      if (rest.length < 3) break;
      const length = 3 + ((((rest[1] ?? 0) & 0x0f) << 8) | (rest[2] ?? 0));
      if (rest.length < length) break;
      sections.push({ pid, packet: index, bytes: Buffer.from(rest.subarray(0, length)) });
      rest = rest.subarray(length);
    }
    if (rest.length === 0 || rest[0] === 0xff) pending.delete(pid);
    else pending.set(pid, rest);
  };
  packetsOf(ts).forEach((packet, index) => {
    const pid = pidOf(packet);
    if (pid === 0x1fff || pes.has(pid)) return;
    const control = ((packet[3] ?? 0) >> 4) & 3;
    if ((control & 1) === 0) return;
    const start = control === 3 ? 5 + (packet[4] ?? 0) : 4;
    if (start >= PACKET) return;
    const payload = Buffer.from(packet.subarray(start));
    const unitStart = ((packet[1] ?? 0) & 0x40) !== 0;
    const before = pending.get(pid);
    if (!unitStart) {
      if (before !== undefined) drain(pid, index, Buffer.concat([before, payload]));
      return;
    }
    if (payload[0] === 0 && payload[1] === 0 && payload[2] === 1) {
      pes.add(pid);
      pending.delete(pid);
      return;
    }
    const pointer = payload[0] ?? 0;
    if (before !== undefined) {
      // The section in assembly ends before the pointer; what is left of it there is stuffing.
      drain(pid, index, Buffer.concat([before, payload.subarray(1, 1 + pointer)]));
      pending.delete(pid);
    }
    drain(pid, index, payload.subarray(1 + pointer));
  });
  return sections;
};

const crcOk = (section: Uint8Array): boolean => crc32Mpeg2(section) === 0;

interface PatEntry {
  readonly program: number;
  readonly pid: number;
}
const parsePat = (section: Uint8Array): PatEntry[] => {
  const end = section.length - 4;
  const entries: PatEntry[] = [];
  for (let at = 8; at + 4 <= end; at += 4)
    entries.push({
      program: ((section[at] ?? 0) << 8) | (section[at + 1] ?? 0),
      pid: (((section[at + 2] ?? 0) & 0x1f) << 8) | (section[at + 3] ?? 0),
    });
  return entries;
};

interface PmtInfo {
  readonly program: number;
  readonly version: number;
  readonly pcrPid: number;
  readonly streams: ReadonlyArray<{ readonly type: number; readonly pid: number }>;
}
const parsePmt = (section: Uint8Array): PmtInfo => {
  const end = section.length - 4;
  const infoLength = (((section[10] ?? 0) & 0x0f) << 8) | (section[11] ?? 0);
  const streams: Array<{ type: number; pid: number }> = [];
  for (let at = 12 + infoLength; at + 5 <= end; ) {
    streams.push({
      type: section[at] ?? 0,
      pid: (((section[at + 1] ?? 0) & 0x1f) << 8) | (section[at + 2] ?? 0),
    });
    at += 5 + ((((section[at + 3] ?? 0) & 0x0f) << 8) | (section[at + 4] ?? 0));
  }
  return {
    program: ((section[3] ?? 0) << 8) | (section[4] ?? 0),
    version: ((section[5] ?? 0) >> 1) & 0x1f,
    pcrPid: (((section[8] ?? 0) & 0x1f) << 8) | (section[9] ?? 0),
    streams,
  };
};

/** The PAT and PMT sections of a TS (PMTs found through the PATs), each with its CRC verdict. */
const tablesOf = (ts: Uint8Array) => {
  const sections = sectionsOf(ts);
  const pats = sections.filter((s) => s.pid === 0 && s.bytes[0] === 0x00);
  const pmtPids = new Set(
    pats.flatMap((s) =>
      parsePat(s.bytes)
        .filter((e) => e.program !== 0)
        .map((e) => e.pid),
    ),
  );
  const pmts = sections.filter((s) => pmtPids.has(s.pid) && s.bytes[0] === 0x02);
  return { sections, pats, pmts, pmtPids };
};

/** SCTE-35 cues (table_id 0xFC, decoded by our decoder) found on any PID, base64. */
const cuesOf = (sections: ReadonlyArray<Section>): string[] =>
  sections
    .filter((s) => s.bytes[0] === 0xfc && Either.isRight(decodeSection(s.bytes)))
    .map((s) => s.bytes.toString("base64"));

/**
 * Continuity as TR 101 290 priority 1 checks it (1.4): per PID, each packet with payload increments the CC
 * (one duplicate allowed), a packet without payload keeps it; a discontinuity_indicator restarts the count.
 * However long a PID was away (a policy dropped it, or moved it to another PID), its counters must go on or
 * the jump be flagged. Returns the errors in words and the PIDs whose count a flag restarted.
 */
const continuity = (ts: Uint8Array) => {
  const errors: string[] = [];
  const flagged = new Set<number>();
  const last = new Map<number, { cc: number; duplicate: boolean }>();
  packetsOf(ts).forEach((packet, index) => {
    const pid = pidOf(packet);
    if (pid === 0x1fff) return;
    const control = ((packet[3] ?? 0) >> 4) & 3;
    const cc = (packet[3] ?? 0) & 0x0f;
    const discontinuity = (control & 2) !== 0 && (packet[4] ?? 0) > 0 && ((packet[5] ?? 0) & 0x80) !== 0;
    const before = last.get(pid);
    if (before === undefined || discontinuity) {
      if (before !== undefined) flagged.add(pid);
      last.set(pid, { cc, duplicate: false });
      return;
    }
    if ((control & 1) === 0) {
      if (cc !== before.cc)
        errors.push(`PID ${pid} packet ${index}: CC ${cc} on a packet without payload after ${before.cc}`);
      return;
    }
    if (cc === before.cc) {
      if (before.duplicate) errors.push(`PID ${pid} packet ${index}: CC ${cc} a third time`);
      last.set(pid, { cc, duplicate: true });
      return;
    }
    if (cc !== ((before.cc + 1) & 0x0f))
      errors.push(`PID ${pid} packet ${index}: CC ${cc} after ${before.cc}`);
    last.set(pid, { cc, duplicate: false });
  });
  return { errors, flagged };
};

/** TR 101 290 priority 1 at the receiver: a PAT with a good CRC, each programme's PMT, no CC error. */
const priorityOne = (ts: Uint8Array) => {
  const tables = tablesOf(ts);
  const { errors, flagged } = continuity(ts);
  const problems = [...errors];
  if (tables.pats.length === 0) problems.push("no PAT");
  for (const pat of tables.pats) if (!crcOk(pat.bytes)) problems.push("a PAT with a bad CRC");
  for (const pid of tables.pmtPids)
    if (!tables.pmts.some((pmt) => pmt.pid === pid)) problems.push(`no PMT on PID ${pid}`);
  for (const pmt of tables.pmts)
    if (!crcOk(pmt.bytes)) problems.push(`a PMT on PID ${pmt.pid} with a bad CRC`);
  return { problems, flagged, tables };
};

// ---------------------------------------------------------------------------------------------------------
// ffprobe and ffmpeg

interface Probe {
  readonly streams: ReadonlyArray<{
    readonly id?: string;
    readonly codec_name?: string;
    readonly codec_type?: string;
    readonly codec_tag?: string;
  }>;
  readonly programs: ReadonlyArray<{
    readonly program_num: number;
    readonly pmt_pid: number;
    readonly streams: ReadonlyArray<{ readonly id?: string; readonly codec_type?: string }>;
  }>;
}

const ffprobe = (path: string) =>
  Effect.promise(async (): Promise<Probe> => {
    const { stdout } = await execa("ffprobe", [
      "-v",
      "error",
      "-show_streams",
      "-show_programs",
      "-of",
      "json",
      path,
    ]);
    return JSON.parse(stdout) as Probe;
  });

/** What ffmpeg says when it decodes every stream of the file: nothing, when all is well. */
const decodeErrors = (path: string) =>
  Effect.promise(async () => {
    const result = await execa("ffmpeg", ["-v", "error", "-i", path, "-map", "0", "-f", "null", "-"], {
      reject: false,
    });
    return { exitCode: result.exitCode, stderr: result.stderr };
  });

const ffmpeg = (args: ReadonlyArray<string>) =>
  Effect.promise(() => execa("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...args]));

/** A few seconds of real H.264 and AAC at low rates: small and quick to make. */
const videoArgs = [
  "-c:v",
  "libx264",
  "-preset",
  "ultrafast",
  "-g",
  "25",
  "-pix_fmt",
  "yuv420p",
  "-b:v",
  "300k",
];
const audioArgs = ["-c:a", "aac", "-b:a", "64k"];
const lavfi = (source: string) => ["-f", "lavfi", "-i", source];

const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "distributary-output-policy-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true })),
);

const hexPid = (pid: number) => `0x${pid.toString(16)}`;

// ---------------------------------------------------------------------------------------------------------
// Channel plumbing

const output = (id: string, sink: UdpSink, policy?: OutputPolicy | null): OutputSpec => ({
  id: OutputId.make(id),
  name: id,
  url: `udp://127.0.0.1:${sink.port}`,
  enabled: true,
  ...(policy === undefined ? {} : { policy }),
});

/** Waits for `sink` to have at least `bytes`, and gives exactly those. */
const received = (what: string, sink: UdpSink, bytes: number) =>
  eventually(
    what,
    () => {
      const all = sink.bytes();
      return all.length >= bytes ? all : undefined;
    },
    { timeoutMs: 20_000 },
  );

const outputStatus = (channels: Channels, channel: ChannelId, id: string) =>
  Effect.map(channels.status(channel), (status) => status?.outputs.find((o) => o.id === id));

// ---------------------------------------------------------------------------------------------------------
// The SCTE-35 vectors (third-party, test/fixtures/scte35/vectors.json) a filter is tried on.

interface Vector {
  readonly id: string;
  readonly kind: string;
  readonly encoded: string;
  readonly encoding: string;
}
const vectors: ReadonlyArray<Vector> = JSON.parse(
  readFileSync(fixturePath("scte35", "vectors.json"), "utf8"),
);

/**
 * time_signals with segmentation descriptors of types 0x34 (52), 0x35 (53), 0x10/0x11, 0x17, 0x37, 0x31 and a
 * five-descriptor one; v001, v057 (type 52) and v030 (a type 5 among others) restrict delivery and forbid web
 * delivery; v002 is a splice_insert without any segmentation descriptor.
 */
const FILTER_VECTORS = [
  "v001",
  "v003",
  "v004",
  "v005",
  "v022",
  "v023",
  "v030",
  "v050",
  "v051",
  "v057",
  "v002",
];
const ALLOWED_TYPES = [52, 53];

const vectorBytes = (id: string): Buffer => {
  const vector = vectors.find((v) => v.id === id);
  if (vector === undefined || vector.encoding !== "base64") throw new Error(`no base64 vector ${id}`);
  return Buffer.from(vector.encoded, "base64");
};

/** What our decoder reads of a cue's segmentation descriptors. */
const segmentationOf = (section: Uint8Array) => {
  const decoded = decodeSection(section);
  if (Either.isLeft(decoded)) throw new Error(decoded.left.message);
  if (decoded.right.encrypted_packet) throw new Error("an encrypted cue");
  const descriptors = decoded.right.descriptors.flatMap((d) =>
    isPrivateDescriptor(d) || d.splice_descriptor_tag !== 0x02 || d.segmentation_event_cancel_indicator
      ? []
      : [d],
  );
  return {
    types: descriptors.map((d) => d.segmentation_type_id),
    webRestricted: descriptors.some(
      (d) => !d.delivery_not_restricted_flag && d.web_delivery_allowed_flag === false,
    ),
  };
};

// Real time throughout: the peers and sockets are real.
layer(Channels.Test, { excludeTestServices: true })("per-output policy at the receiver", (it) => {
  it.scoped(
    "strip: no cue and no SCTE-35 stream in the PMT, every other packet as it came; the untouched output byte for byte",
    () =>
      Effect.gen(function* () {
        const channels = yield* Channels;
        const dir = yield* tempDir;
        const [plain, strip] = yield* Effect.all([udpSink, udpSink]);
        const inputPort = yield* freeUdpPort;
        const channelId = ChannelId.make("policy-strip");
        yield* channels.start({
          id: channelId,
          name: "policy strip",
          primary: { ip: "127.0.0.1", port: inputPort },
          backup: null,
          outputs: [output("plain", plain), output("strip", strip, { scte35: "strip" })],
        });
        // Two real streams, one after the other: H.264 with SCTE-35 on PID 0x21 (TSDuck), then MPEG-2 video
        // and audio with SCTE-35 on PID 0x258 (ExoPlayer's sample).
        const input = Buffer.concat([
          readFileSync(fixturePath("scte35", "ts", "moq-dev_moq", "tsduck.ts")),
          readFileSync(fixturePath("scte35", "ts", "google_ExoPlayer", "sample_scte35.ts")),
        ]);
        const inputTables = tablesOf(input);
        const scte35Pids = new Set(
          inputTables.pmts.flatMap((pmt) =>
            parsePmt(pmt.bytes)
              .streams.filter((s) => s.type === 0x86)
              .map((s) => s.pid),
          ),
        );
        expect([...scte35Pids]).toEqual([0x21, 0x258]);
        const inputCues = cuesOf(inputTables.sections);
        expect(inputCues.length, "the input carries cues").toBe(13);
        const untouchedPids = (pid: number) => !scte35Pids.has(pid) && !inputTables.pmtPids.has(pid);
        const expectedAtStrip = onPids(input, (pid) => !scte35Pids.has(pid)).length * PACKET;

        yield* sendPaced(chunkTs(input), inputPort);
        const atPlain = yield* received("all of the input at the untouched output", plain, input.length);
        const atStrip = yield* received(
          "all but the SCTE-35 PID at the strip output",
          strip,
          expectedAtStrip,
        );

        expect(Buffer.compare(atPlain, input), "the untouched output is the input, byte for byte").toBe(0);

        const stripTables = tablesOf(atStrip);
        expect(cuesOf(stripTables.sections), "no cue on any PID of the strip output").toEqual([]);
        expect(cuesOf(tablesOf(atPlain).sections)).toEqual(inputCues);
        for (const pid of scte35Pids)
          expect(pidCounts(atStrip).get(pid), "no packet on a SCTE-35 PID").toBeUndefined();
        expect(stripTables.pmts.length).toBe(inputTables.pmts.length);
        for (const pmt of stripTables.pmts) {
          expect(crcOk(pmt.bytes), "the rewritten PMT's CRC").toBe(true);
          const streams = parsePmt(pmt.bytes).streams;
          expect(
            streams.filter((s) => s.type === 0x86),
            "no stream_type 0x86 in the PMT",
          ).toEqual([]);
          expect(streams.length).toBeGreaterThan(0);
        }
        expect(
          Buffer.compare(joined(onPids(atStrip, untouchedPids)), joined(onPids(input, untouchedPids))),
          "every packet off the SCTE-35 and PMT PIDs is the input's, in order",
        ).toBe(0);
        expect(atStrip.length).toBe(expectedAtStrip);

        const stripFile = join(dir, "strip.ts");
        const inputFile = join(dir, "input.ts");
        yield* Effect.promise(() =>
          Promise.all([writeFile(stripFile, atStrip), writeFile(inputFile, input)]),
        );
        const isScte35 = (s: Probe["streams"][number]) =>
          s.codec_tag === "0x0086" || s.codec_name === "scte_35" || s.id === "0x21" || s.id === "0x258";
        const probedInput = yield* ffprobe(inputFile);
        expect(
          probedInput.streams.filter(isScte35).length,
          "ffprobe sees SCTE-35 in the input",
        ).toBeGreaterThan(0);
        const probed = yield* ffprobe(stripFile);
        expect(probed.streams.filter(isScte35), "ffprobe sees no SCTE-35 stream").toEqual([]);
        const described = (streams: Probe["streams"]) => streams.map((s) => `${s.id}:${s.codec_name}`);
        expect(described(probed.streams), "ffprobe sees the input's other streams").toEqual(
          described(probedInput.streams.filter((s) => !isScte35(s))),
        );
        expect(described(probed.streams).length).toBeGreaterThanOrEqual(2);
        for (const program of probed.programs) expect(program.streams.filter(isScte35)).toEqual([]);

        const status = yield* outputStatus(channels, channelId, "strip");
        expect(status?.policy).toEqual({
          problems: [],
          packetsDropped: expect.any(Number),
          cuesWithheld: 13,
        });
        expect((yield* outputStatus(channels, channelId, "plain"))?.policy).toBeNull();
      }),
    60_000,
  );

  it.scoped(
    "strip on a stream whose PMT stops listing its SCTE-35 PID (gst480i.ts): no cue goes out, and the cue log says what went out",
    () =>
      Effect.gen(function* () {
        const channels = yield* Channels;
        const [plain, strip] = yield* Effect.all([udpSink, udpSink]);
        const inputPort = yield* freeUdpPort;
        const channelId = ChannelId.make("policy-strip-unlisted");
        yield* channels.start({
          id: channelId,
          name: "policy strip unlisted",
          primary: { ip: "127.0.0.1", port: inputPort },
          backup: null,
          outputs: [output("plain", plain), output("strip", strip, { scte35: "strip" })],
        });
        // GStreamer's capture from moq-dev/moq: its PMT (version 0) lists the SCTE-35 PID 0x21 once, in its
        // second PMT packet, and never again (the later PMTs, still version 0, list video and audio only);
        // its five cues keep coming on 0x21.
        const input = readFileSync(fixturePath("scte35", "ts", "moq-dev_moq", "gst480i.ts"));
        const inputTables = tablesOf(input);
        const layouts = new Set(
          inputTables.pmts.map((pmt) =>
            parsePmt(pmt.bytes)
              .streams.map((st) => `${hexPid(st.pid)}:${st.type}`)
              .join(","),
          ),
        );
        expect([...layouts]).toEqual(["0x100:27,0x101:15", "0x100:27,0x101:15,0x21:134"]);
        const inputCues = cuesOf(inputTables.sections);
        expect(inputCues.length).toBe(5);

        yield* sendPaced(chunkTs(input), inputPort);
        yield* received("all of the input at the untouched output", plain, input.length);
        // The strip output's last packet is the input's (a video packet): all that goes out is in.
        const last = input.subarray(input.length - PACKET);
        const atStrip = yield* eventually("the input's last packet at the strip output", () => {
          const all = strip.bytes();
          return all.length >= PACKET && all.subarray(all.length - PACKET).equals(last) ? all : undefined;
        });
        yield* channels.sync;
        const log = channels.cues(channelId);
        expect(
          log.map((record) => record.section_base64),
          "the channel's cue log has every cue",
        ).toEqual(inputCues);
        const delivered = new Set(cuesOf(sectionsOf(atStrip)));
        const saidWithheld = log.filter((record) =>
          (record.withheld ?? []).some((w) => w.output === "strip"),
        );
        expect(
          saidWithheld.filter((record) => delivered.has(record.section_base64)).map((r) => r.section_base64),
          "cues the log says the strip output withheld, yet it carried them",
        ).toEqual([]);
        expect([...delivered], "no cue on any PID of the strip output").toEqual([]);
      }),
    60_000,
  );

  it.scoped(
    "a segmentation-type allow-list and a web-delivery rule keep exactly their cues, byte-exact, and the cue log names who withheld what",
    () =>
      Effect.gen(function* () {
        const channels = yield* Channels;
        const [types, web, plain] = yield* Effect.all([udpSink, udpSink, udpSink]);
        const inputPort = yield* freeUdpPort;
        const channelId = ChannelId.make("policy-filter");
        yield* channels.start({
          id: channelId,
          name: "policy filter",
          primary: { ip: "127.0.0.1", port: inputPort },
          backup: null,
          outputs: [
            output("types", types, { scte35: { segmentation_types: ALLOWED_TYPES } }),
            output("web", web, { scte35: { drop_web_delivery_restricted: true } }),
            output("plain", plain),
          ],
        });
        const cues = FILTER_VECTORS.map((id) => ({
          id,
          bytes: vectorBytes(id),
          ...segmentationOf(vectorBytes(id)),
        }));
        expect(new Set(cues.map((cue) => cue.bytes.toString("base64"))).size, "distinct cues").toBe(
          cues.length,
        );
        const keptByTypes = cues.filter((cue) => cue.types.some((type) => ALLOWED_TYPES.includes(type)));
        const keptByWeb = cues.filter((cue) => !cue.webRestricted);
        // The choice of vectors tries each rule both ways.
        expect(keptByTypes.map((cue) => cue.id)).toEqual(["v001", "v003", "v050", "v051", "v057"]);
        expect(cues.filter((cue) => cue.webRestricted).map((cue) => cue.id)).toEqual([
          "v001",
          "v030",
          "v057",
        ]);

        const generator = new TsGenerator({ seed: 11, bitrate: 4_000_000 });
        for (const [index, cue] of cues.entries()) generator.insertScte35(cue.bytes, 150 + index * 200);
        const input = generator.packets(Math.round((2.6 * 4_000_000) / (PACKET * 8)));
        expect(cuesOf(sectionsOf(input)), "every cue is in the input").toEqual(
          cues.map((cue) => cue.bytes.toString("base64")),
        );
        yield* sendPaced(chunkTs(input), inputPort);
        yield* received("the whole input at the untouched output", plain, input.length);
        // Each filter keeps the packet count: a withheld cue's packet goes out stuffed.
        const atTypes = yield* received("the allow-list output", types, input.length);
        const atWeb = yield* received("the web-delivery output", web, input.length);

        const onScte35 = (ts: Uint8Array) =>
          sectionsOf(ts)
            .filter((s) => s.pid === generator.scte35Pid)
            .map((s) => s.bytes.toString("base64"));
        expect(onScte35(atTypes), "the allow-list output: exactly the cues of types 52 and 53").toEqual(
          keptByTypes.map((cue) => cue.bytes.toString("base64")),
        );
        expect(onScte35(atWeb), "the web-delivery output: all but the restricted cues").toEqual(
          keptByWeb.map((cue) => cue.bytes.toString("base64")),
        );
        expect(cuesOf(sectionsOf(atTypes))).toEqual(onScte35(atTypes));
        expect(cuesOf(sectionsOf(atWeb))).toEqual(onScte35(atWeb));
        for (const ts of [atTypes, atWeb]) {
          const checked = priorityOne(ts);
          expect(checked.problems).toEqual([]);
          // The SCTE-35 stream stays in the PMT under a filter.
          for (const pmt of checked.tables.pmts)
            expect(parsePmt(pmt.bytes).streams.some((s) => s.type === 0x86)).toBe(true);
        }

        yield* channels.sync;
        const log = channels.cues(channelId);
        for (const cue of cues) {
          const record = log.find((r) => r.section_base64 === cue.bytes.toString("base64"));
          expect(record, `${cue.id} in the cue log`).toBeDefined();
          const withheld = record?.withheld ?? [];
          const expected = [
            ...(keptByTypes.includes(cue) ? [] : ["types"]),
            ...(keptByWeb.includes(cue) ? [] : ["web"]),
          ];
          expect(
            withheld.map((w) => w.output),
            `${cue.id} (types ${cue.types.join(", ") || "none"}) withheld by`,
          ).toEqual(expected);
          for (const w of withheld) {
            expect(w.name).toBe(w.output);
            expect(w.rule, `${cue.id} at ${w.output}`).toMatch(
              w.output === "types" ? /segmentation/ : /web delivery not allowed/,
            );
          }
        }
        const typesStatus = yield* outputStatus(channels, channelId, "types");
        const webStatus = yield* outputStatus(channels, channelId, "web");
        expect(typesStatus?.policy?.cuesWithheld).toBe(cues.length - keptByTypes.length);
        expect(webStatus?.policy?.cuesWithheld).toBe(cues.length - keptByWeb.length);
      }),
    60_000,
  );

  it.scoped(
    "a remap and a PID drop on real H.264 and AAC: ffprobe sees the new PID and not the dropped one, the PMT's CRC holds, no CC error, ffmpeg decodes it cleanly",
    () =>
      Effect.gen(function* () {
        const channels = yield* Channels;
        const dir = yield* tempDir;
        const source = join(dir, "source.ts");
        yield* ffmpeg([
          ...lavfi("testsrc2=size=320x180:rate=25"),
          ...lavfi("sine=frequency=440:sample_rate=48000"),
          ...lavfi("sine=frequency=660:sample_rate=48000"),
          ...["-t", "3", "-map", "0:v", "-map", "1:a", "-map", "2:a"],
          ...videoArgs,
          ...audioArgs,
          ...["-f", "mpegts", source],
        ]);
        const input = readFileSync(source);
        const probedInput = yield* ffprobe(source);
        expect(probedInput.streams.map((s) => `${s.id}:${s.codec_name}`)).toEqual([
          "0x100:h264",
          "0x101:aac",
          "0x102:aac",
        ]);

        const [moved] = yield* Effect.all([udpSink]);
        const inputPort = yield* freeUdpPort;
        const channelId = ChannelId.make("policy-remap");
        yield* channels.start({
          id: channelId,
          name: "policy remap",
          primary: { ip: "127.0.0.1", port: inputPort },
          backup: null,
          outputs: [output("moved", moved, { remap: { "257": 0x103 }, pids: { drop: [0x102] } })],
        });
        const expectedBytes = input.length - (pidCounts(input).get(0x102) ?? 0) * PACKET;
        yield* sendPaced(chunkTs(input), inputPort);
        const out = yield* received("the remapped output", moved, expectedBytes);
        expect(out.length).toBe(expectedBytes);

        const counts = pidCounts(out);
        expect(counts.get(0x101), "nothing left on the remapped PID").toBeUndefined();
        expect(counts.get(0x102), "nothing on the dropped PID").toBeUndefined();
        expect(counts.get(0x103)).toBe(pidCounts(input).get(0x101));
        // The audio's packets are the input's but for the PID.
        const asInput = onPids(out, (pid) => pid === 0x103).map((packet) => {
          const copy = Buffer.from(packet);
          copy[1] = ((copy[1] ?? 0) & 0xe0) | 0x01;
          copy[2] = 0x01;
          return copy;
        });
        expect(Buffer.compare(joined(asInput), joined(onPids(input, (pid) => pid === 0x101)))).toBe(0);
        expect(
          Buffer.compare(
            joined(onPids(out, (pid) => pid === 0x100)),
            joined(onPids(input, (pid) => pid === 0x100)),
          ),
        ).toBe(0);

        const checked = priorityOne(out);
        expect(checked.problems, "TR 101 290 priority 1 at the receiver").toEqual([]);
        expect(checked.tables.pmts.length).toBeGreaterThan(0);
        for (const pmt of checked.tables.pmts) {
          expect(crcOk(pmt.bytes), "the PMT's CRC verifies").toBe(true);
          expect(parsePmt(pmt.bytes).streams).toEqual([
            { type: 0x1b, pid: 0x100 },
            { type: 0x0f, pid: 0x103 },
          ]);
        }

        const file = join(dir, "out.ts");
        yield* Effect.promise(() => writeFile(file, out));
        const probed = yield* ffprobe(file);
        expect(probed.streams.map((s) => `${s.id}:${s.codec_name}`)).toEqual(["0x100:h264", "0x103:aac"]);
        const decoded = yield* decodeErrors(file);
        expect(decoded).toEqual({ exitCode: 0, stderr: "" });

        const status = yield* outputStatus(channels, channelId, "moved");
        expect(status?.policy?.problems).toEqual([]);
        expect(status?.policy?.packetsDropped).toBe(pidCounts(input).get(0x102));
      }),
    60_000,
  );

  it.scoped(
    "one programme out of an MPTS on each output; a programme the input does not carry is said in words",
    () =>
      Effect.gen(function* () {
        const channels = yield* Channels;
        const dir = yield* tempDir;
        const source = join(dir, "mpts.ts");
        yield* ffmpeg([
          ...lavfi("testsrc2=size=320x180:rate=25"),
          ...lavfi("sine=frequency=440:sample_rate=48000"),
          ...lavfi("testsrc=size=320x180:rate=25"),
          ...lavfi("sine=frequency=660:sample_rate=48000"),
          ...["-t", "3", "-map", "0:v", "-map", "1:a", "-map", "2:v", "-map", "3:a"],
          ...videoArgs,
          ...audioArgs,
          ...["-program", "title=A:st=0:st=1", "-program", "title=B:st=2:st=3"],
          ...["-f", "mpegts", source],
        ]);
        const input = readFileSync(source);
        const probedInput = yield* ffprobe(source);
        const programmes = probedInput.programs.map((p) => ({
          number: p.program_num,
          pmtPid: p.pmt_pid,
          streams: p.streams.map((s) => s.id ?? ""),
        }));
        expect(programmes.length).toBe(2);
        const [first, second] = programmes as [(typeof programmes)[number], (typeof programmes)[number]];
        const missing = Math.max(first.number, second.number) + 7;

        const [a, b, none] = yield* Effect.all([udpSink, udpSink, udpSink]);
        const inputPort = yield* freeUdpPort;
        const channelId = ChannelId.make("policy-mpts");
        yield* channels.start({
          id: channelId,
          name: "policy mpts",
          primary: { ip: "127.0.0.1", port: inputPort },
          backup: null,
          outputs: [
            output("a", a, { program: first.number }),
            output("b", b, { program: second.number }),
            output("none", none, { program: missing }),
          ],
        });
        yield* sendPaced(chunkTs(input), inputPort);

        for (const [sink, programme, name] of [
          [a, first, "a"],
          [b, second, "b"],
        ] as const) {
          const pids = new Set([0, programme.pmtPid, ...programme.streams.map((id) => Number(id))]);
          const expected = onPids(input, (pid) => pids.has(pid));
          const out = yield* received(
            `programme ${programme.number} at output ${name}`,
            sink,
            expected.length * PACKET,
          );
          expect(out.length).toBe(expected.length * PACKET);
          expect(new Set(pidCounts(out).keys())).toEqual(pids);
          const elementary = (pid: number) => pids.has(pid) && pid !== 0 && pid !== programme.pmtPid;
          expect(
            Buffer.compare(joined(onPids(out, elementary)), joined(onPids(input, elementary))),
            "the programme's elementary packets as they came",
          ).toBe(0);
          const checked = priorityOne(out);
          expect(checked.problems).toEqual([]);
          for (const pat of checked.tables.pats)
            expect(parsePat(pat.bytes)).toEqual([{ program: programme.number, pid: programme.pmtPid }]);

          const file = join(dir, `${name}.ts`);
          yield* Effect.promise(() => writeFile(file, out));
          const probed = yield* ffprobe(file);
          expect(
            probed.programs.map((p) => ({ number: p.program_num, streams: p.streams.map((s) => s.id) })),
            `ffprobe on output ${name}`,
          ).toEqual([{ number: programme.number, streams: programme.streams }]);
          expect(probed.streams.map((s) => s.codec_type)).toEqual(["video", "audio"]);
          expect(yield* decodeErrors(file)).toEqual({ exitCode: 0, stderr: "" });
        }

        const problems = yield* eventually("the missing programme said", () =>
          Effect.runPromise(outputStatus(channels, channelId, "none")).then((status) =>
            (status?.policy?.problems.length ?? 0) > 0 ? status?.policy?.problems : undefined,
          ),
        );
        expect(problems.join("; ")).toMatch(
          new RegExp(
            `programme ${missing} is not in the input \\(it carries ${first.number}, ${second.number}\\)`,
          ),
        );
        expect(none.totalBytes(), "nothing goes out for a programme the input does not carry").toBe(0);
      }),
    60_000,
  );

  it.scoped(
    "a policy changed while the input flows: untouched, strip, remap, untouched again, with no reconnection and no continuity error",
    () =>
      Effect.gen(function* () {
        const channels = yield* Channels;
        const [live, reference] = yield* Effect.all([udpSink, udpSink]);
        const inputPort = yield* freeUdpPort;
        const channelId = ChannelId.make("policy-live");
        const spec = output("live", live);
        yield* channels.start({
          id: channelId,
          name: "policy live",
          primary: { ip: "127.0.0.1", port: inputPort },
          backup: null,
          outputs: [spec, output("reference", reference)],
        });
        const generator = new TsGenerator({ seed: 5, bitrate: 3_000_000 });
        const { videoPid, scte35Pid, pmtPid } = generator;
        const audioPid = generator.audioPid ?? 0;
        for (let n = 0; n < 40; n++)
          generator.insertScte35(encodeSection(immediateSpliceOut(500 + n)), 100 + n * 200);
        const input = generator.packets(Math.round((8 * 3_000_000) / (PACKET * 8)));
        const datagrams = chunkTs(input);
        const lastDatagram = Buffer.from(datagrams[datagrams.length - 1] ?? new Uint8Array(0));

        const connected = yield* eventually("the output connected", () =>
          Effect.runPromise(outputStatus(channels, channelId, "live")).then((status) =>
            status?.state === "connected" ? status : undefined,
          ),
        );
        const steady = (status: OutputEntryStatus | undefined, when: string) => {
          expect(status?.state, when).toBe("connected");
          expect(status?.reconnects, when).toBe(0);
          expect(status?.errors, when).toBe(0);
          expect(status?.connectedAt, when).toBe(connected.connectedAt);
        };

        // About 4 s of sending: each change lands while the input flows.
        const sending = yield* Effect.fork(sendPaced(datagrams, inputPort, 0.7));
        const REMAP_TO = 0x103;
        const phases: ReadonlyArray<{ readonly at: number; readonly policy: OutputPolicy | null }> = [
          { at: 0.2, policy: { scte35: "strip" } },
          { at: 0.45, policy: { remap: { [String(audioPid)]: REMAP_TO } } },
          { at: 0.7, policy: null },
        ];
        for (const phase of phases) {
          yield* eventually(
            `${Math.round(phase.at * 100)} % of the input through`,
            () => (reference.totalBytes() >= phase.at * input.length ? true : undefined),
            { timeoutMs: 20_000, intervalMs: 5 },
          );
          steady(yield* outputStatus(channels, channelId, "live"), `before ${JSON.stringify(phase.policy)}`);
          yield* channels.applyOutput(channelId, { ...spec, policy: phase.policy });
          expect(reference.totalBytes(), "the change came while the input flowed").toBeLessThan(
            0.9 * input.length,
          );
          steady(yield* outputStatus(channels, channelId, "live"), `after ${JSON.stringify(phase.policy)}`);
        }
        yield* Fiber.join(sending);
        yield* received("the whole input at the reference output", reference, input.length);
        const out = yield* eventually(
          "the input's last datagram at the live output",
          () => {
            const all = live.bytes();
            return all.subarray(all.length - lastDatagram.length).equals(lastDatagram) ? all : undefined;
          },
          { timeoutMs: 20_000 },
        );
        steady(yield* outputStatus(channels, channelId, "live"), "at the end");

        // What the receiver saw: no CC error on any PID it was given.
        const checked = priorityOne(out);
        expect(checked.problems, "TR 101 290 priority 1 over the whole capture").toEqual([]);
        // The check sees a lost packet: one video packet taken out of the capture is a CC error.
        const videoAt = packetsOf(out).findIndex(
          (packet, index) => index > 1000 && pidOf(packet) === videoPid,
        );
        const lossy = Buffer.concat([
          out.subarray(0, videoAt * PACKET),
          out.subarray((videoAt + 1) * PACKET),
        ]);
        expect(priorityOne(lossy).problems).toEqual([expect.stringMatching(new RegExp(`^PID ${videoPid} `))]);
        // The PIDs the output got back (the SCTE-35 PID after the strip, the audio after its remap) came with
        // their jump flagged, and nothing else did.
        expect([...checked.flagged].sort(), "PIDs whose jump a discontinuity_indicator flagged").toEqual(
          [audioPid, scte35Pid].sort(),
        );
        // Each policy reached the receiver, in order: the PMT's streams as the output saw them change.
        const layouts: string[] = [];
        for (const pmt of checked.tables.pmts) {
          expect(pmt.pid).toBe(pmtPid);
          const layout = parsePmt(pmt.bytes)
            .streams.map((s) => hexPid(s.pid))
            .join(",");
          if (layouts[layouts.length - 1] !== layout) layouts.push(layout);
        }
        const original = [videoPid, audioPid, scte35Pid].map(hexPid).join(",");
        expect(layouts).toEqual([
          original,
          [videoPid, audioPid].map(hexPid).join(","),
          [videoPid, REMAP_TO, scte35Pid].map(hexPid).join(","),
          original,
        ]);
        // The video went through every change as it came.
        expect(
          Buffer.compare(
            joined(onPids(out, (pid) => pid === videoPid)),
            joined(onPids(input, (pid) => pid === videoPid)),
          ),
        ).toBe(0);
        // Audio under either PID: all of it, in order, besides the bridges (adaptation only, the jump flagged).
        const bridge = (packet: Uint8Array) =>
          (((packet[3] ?? 0) >> 4) & 3) === 2 && ((packet[5] ?? 0) & 0x80) !== 0;
        const bridges = onPids(out, (pid) => pid === audioPid || pid === REMAP_TO).filter(bridge);
        expect(bridges.map(pidOf).sort(), "a bridge each time the audio changed PID").toEqual(
          [audioPid, REMAP_TO].sort(),
        );
        const audioOut = onPids(out, (pid) => pid === audioPid || pid === REMAP_TO).flatMap((packet) => {
          if (bridge(packet)) return [];
          const copy = Buffer.from(packet);
          copy[1] = ((copy[1] ?? 0) & 0xe0) | (audioPid >> 8);
          copy[2] = audioPid & 0xff;
          return [copy];
        });
        expect(Buffer.compare(joined(audioOut), joined(onPids(input, (pid) => pid === audioPid)))).toBe(0);
        expect(pidCounts(out).get(REMAP_TO) ?? 0, "some audio went out remapped").toBeGreaterThan(0);
        // Some cues went, some were stripped; those that went are the input's.
        const inputCues = cuesOf(sectionsOf(input));
        const outCues = cuesOf(sectionsOf(out));
        expect(outCues.length).toBeGreaterThan(0);
        expect(outCues.length).toBeLessThan(inputCues.length);
        for (const cue of outCues) expect(inputCues).toContain(cue);
        const status = yield* outputStatus(channels, channelId, "live");
        expect(status?.policy).toBeNull();
        expect(status?.queueDrops).toBe(0);
      }),
    60_000,
  );
});
