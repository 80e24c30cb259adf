import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import { PacketCore } from "../core/packet-core.ts";
import type { CoreEvent, PmtStream } from "../core/packet-core-events.ts";
import type { CoreSnapshot } from "../core/packet-core-snapshot.ts";
import { decodeSection, type SpliceInfoSection, summarizeCue } from "../core/scte35/index.ts";
import { DATAGRAM, PACKET, SYNC, streamTypeName } from "../core/ts/index.ts";
import type { InputEndpoint } from "../domain/channel/redundancy.ts";
import { bindInput } from "../effects/ingest/udp-receiver.ts";

const PCR_HZ = 27_000_000;

/** 27 MHz ticks as seconds, to the microsecond. */
const pcrSeconds = (ticks: number | null): number | null =>
  ticks === null ? null : Math.round((ticks / PCR_HZ) * 1e6) / 1e6;

interface ProbedCue {
  readonly pid: number;
  /** The program's last PCR before the cue, in 27 MHz ticks. */
  readonly pcr: number | null;
  /** The same PCR in seconds. */
  readonly pcr_seconds: number | null;
  readonly section_base64: string;
  readonly cue: SpliceInfoSection | null;
  readonly error: string | null;
}

interface ProbeReport {
  readonly source: string;
  /** `file` for a file; for a live source what arrived: `rtp` or `udp-ts`. */
  readonly input_kind: string;
  readonly seconds: number;
  readonly datagrams: number;
  readonly malformed_datagrams: number;
  readonly packets: number;
  readonly bytes: number;
  readonly bitrate_bps: number | null;
  readonly rtp: CoreSnapshot["rtp"] | null;
  readonly programs: ReadonlyArray<{
    readonly program: number;
    readonly pmt_pid: number;
    readonly pcr_pid: number | null;
    readonly pmt_version: number | null;
    readonly streams: ReadonlyArray<{
      readonly pid: number;
      readonly stream_type: number;
      readonly name: string;
    }>;
  }>;
  readonly pids: ReadonlyArray<{
    readonly pid: number;
    readonly stream_type: number | null;
    readonly name: string;
    readonly packets: number;
    readonly bytes: number;
    readonly continuity_errors: number;
    readonly random_access: number;
    readonly last_pcr: number | null;
    readonly last_pcr_seconds: number | null;
  }>;
  readonly continuity_errors: number;
  readonly tr101290: CoreSnapshot["tr101290"];
  /** False for files probed without a usable PCR: the time-based TR 101 290 checks could not run. */
  readonly timed_checks: boolean;
  readonly scte35: ReadonlyArray<ProbedCue>;
}

/** Collects what the core reports while a stream goes through it. */
const collector = () => {
  const streams = new Map<number, ReadonlyArray<PmtStream>>();
  const cues: ProbedCue[] = [];
  const onEvent = (event: CoreEvent) => {
    if (event.type === "pmt") streams.set(event.program, event.streams);
    if (event.type === "scte35") {
      const decoded = decodeSection(event.section);
      cues.push({
        pid: event.pid,
        pcr: event.pcr,
        pcr_seconds: pcrSeconds(event.pcr),
        section_base64: Buffer.from(event.section).toString("base64"),
        cue: Either.isRight(decoded) ? decoded.right : null,
        error: Either.isLeft(decoded) ? decoded.left.message : null,
      });
    }
  };
  return { streams, cues, onEvent };
};

const wellKnownPids: ReadonlyMap<number, string> = new Map([
  [0x0000, "PAT"],
  [0x0001, "CAT"],
  [0x0010, "NIT"],
  [0x0011, "SDT/BAT"],
  [0x0012, "EIT"],
  [0x0014, "TDT/TOT"],
  [0x1fff, "null packets"],
]);

const pidName = (pid: number, streamType: number | null, snapshot: CoreSnapshot): string => {
  const program = snapshot.programs.find((candidate) => candidate.pmtPid === pid);
  if (program !== undefined) return `PMT of program ${program.program}`;
  const clock = snapshot.programs.find((candidate) => candidate.pcrPid === pid);
  if (streamType === null && clock !== undefined) return `PCR of program ${clock.program}`;
  if (streamType === null) return wellKnownPids.get(pid) ?? "unlisted";
  return streamTypeName(streamType);
};

const report = (
  source: string,
  inputKind: string,
  snapshot: CoreSnapshot,
  collected: ReturnType<typeof collector>,
  seconds: number,
  bitrate: number | null,
  timedChecks: boolean,
): ProbeReport => ({
  source,
  input_kind: inputKind,
  seconds,
  datagrams: snapshot.datagrams,
  malformed_datagrams: snapshot.malformed,
  packets: snapshot.packets,
  bytes: snapshot.bytes,
  bitrate_bps: bitrate === null ? null : Math.round(bitrate),
  rtp: snapshot.inputKind === "rtp" ? snapshot.rtp : null,
  programs: snapshot.programs.map((program) => ({
    program: program.program,
    pmt_pid: program.pmtPid,
    pcr_pid: program.pcrPid,
    pmt_version: program.pmtVersion,
    streams: (collected.streams.get(program.program) ?? []).map((stream) => ({
      pid: stream.pid,
      stream_type: stream.streamType,
      name: streamTypeName(stream.streamType),
    })),
  })),
  pids: snapshot.pids.map((pid) => ({
    pid: pid.pid,
    stream_type: pid.streamType,
    name: pidName(pid.pid, pid.streamType, snapshot),
    packets: pid.packets,
    bytes: pid.bytes,
    continuity_errors: pid.ccErrors,
    random_access: pid.randomAccess,
    last_pcr: pid.lastPcr,
    last_pcr_seconds: pcrSeconds(pid.lastPcr),
  })),
  continuity_errors: snapshot.tr101290.ccErrors,
  tr101290: snapshot.tr101290,
  timed_checks: timedChecks,
  scte35: collected.cues,
});

/** The PCR of the program's clock reference after `bytes` bytes, or null. */
const pcrOf = (core: PacketCore): number | null => {
  const snapshot = core.snapshot();
  const pcrPid = snapshot.programs.find((program) => program.pcrPid !== null)?.pcrPid ?? null;
  return snapshot.pids.find((pid) => pid.pid === pcrPid)?.lastPcr ?? null;
};

/** The file starts with TS packets: a sync byte at 0, 188, 376, ... for its first five packets (or all). */
const looksLikeTs = (data: Uint8Array): boolean => {
  const packets = Math.min(5, Math.floor(data.length / PACKET));
  if (packets === 0) return false;
  for (let n = 0; n < packets; n += 1) if (data[n * PACKET] !== SYNC) return false;
  return true;
};

/**
 * A file has no arrival times, so it is probed twice: once to learn its bitrate from the PCR, then again
 * with each datagram stamped at the time it would arrive at that bitrate, so the time-based TR 101 290
 * checks (PAT and PMT repetition, PID presence) judge the file as they would judge the live stream.
 */
const probeFile = (path: string): ProbeReport => {
  const data = readFileSync(path);
  if (!looksLikeTs(data)) {
    throw new Error(`${path} is not an MPEG-TS file (no 0x47 sync byte every 188 bytes at its start)`);
  }
  const first = PacketCore.load();
  let start: { pcr: number; bytes: number } | null = null;
  let offset = 0;
  for (; offset < data.length; offset += DATAGRAM) {
    first.push(data.subarray(offset, Math.min(offset + DATAGRAM, data.length)));
    if (start === null) {
      const pcr = pcrOf(first);
      if (pcr !== null) start = { pcr, bytes: offset + DATAGRAM };
    }
  }
  const endPcr = pcrOf(first);
  const span = start !== null && endPcr !== null ? (endPcr - start.pcr) / PCR_HZ : 0;
  const bitrate = start !== null && span > 0 ? ((data.length - start.bytes) * 8) / span : null;

  const core = PacketCore.load();
  const collected = collector();
  for (offset = 0; offset < data.length; offset += DATAGRAM) {
    const nowMs = bitrate === null ? -1 : (offset * 8 * 1000) / bitrate;
    core.push(data.subarray(offset, Math.min(offset + DATAGRAM, data.length)), nowMs);
    core.drainEvents(collected.onEvent);
  }
  const seconds = bitrate === null ? 0 : (data.length * 8) / bitrate;
  return report(
    path,
    "file",
    core.snapshot(),
    collected,
    Math.round(seconds * 1000) / 1000,
    bitrate,
    bitrate !== null,
  );
};

const liveSource = /^(udp|rtp):\/\/@?(\[[0-9a-fA-F:.]+\]|[0-9.]*|[A-Za-z0-9.-]*):(\d{1,5})$/;

const parseLiveSource = (source: string): InputEndpoint | null => {
  const match = liveSource.exec(source);
  if (match === null) return null;
  const host = (match[2] ?? "").replace(/^\[|\]$/g, "");
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return null;
  return { ip: host === "" ? "0.0.0.0" : host, port };
};

/** Listens for `seconds` and reports what arrived. */
const probeLive = (
  source: string,
  endpoint: InputEndpoint,
  seconds: number,
  onListening: () => void = () => {},
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const core = PacketCore.load();
      const collected = collector();
      const started = performance.now();
      yield* bindInput(endpoint, (datagram) => {
        core.push(datagram, performance.now() - started);
        core.drainEvents(collected.onEvent);
      });
      onListening();
      yield* Effect.sleep(seconds * 1000);
      const elapsed = (performance.now() - started) / 1000;
      const snapshot = core.snapshot();
      return report(
        source,
        snapshot.inputKind,
        snapshot,
        collected,
        seconds,
        (snapshot.bytes * 8) / elapsed,
        true,
      );
    }),
  );

const hex = (value: number) => `0x${value.toString(16).padStart(4, "0")}`;

const formatReport = (probe: ProbeReport): string => {
  const lines: string[] = [];
  const mbps =
    probe.bitrate_bps === null ? "unknown (no PCR)" : `${(probe.bitrate_bps / 1e6).toFixed(3)} Mbit/s`;
  lines.push(`source        ${probe.source} (${probe.input_kind})`);
  lines.push(`duration      ${probe.seconds} s`);
  lines.push(
    `packets       ${probe.packets} TS packets, ${probe.bytes} bytes in ${probe.datagrams} datagrams (${probe.malformed_datagrams} malformed)`,
  );
  lines.push(`bitrate       ${mbps}`);
  if (probe.rtp !== null) {
    lines.push(
      `rtp           payload type ${probe.rtp.payloadType}, ssrc ${probe.rtp.ssrc}, lost ${probe.rtp.lost}, duplicate ${probe.rtp.duplicate}, reordered ${probe.rtp.reordered}`,
    );
  }
  for (const program of probe.programs) {
    lines.push(
      `program ${program.program}     PMT ${hex(program.pmt_pid)}, PCR ${program.pcr_pid === null ? "-" : hex(program.pcr_pid)}`,
    );
    for (const stream of program.streams) {
      lines.push(
        `  ${hex(stream.pid)}  stream_type 0x${stream.stream_type.toString(16).padStart(2, "0")}  ${stream.name}`,
      );
    }
  }
  lines.push("pids          pid     packets   cc errors  type");
  for (const pid of probe.pids) {
    lines.push(
      `              ${hex(pid.pid)}  ${String(pid.packets).padStart(9)}  ${String(pid.continuity_errors).padStart(9)}  ${pid.name}`,
    );
  }
  const t = probe.tr101290;
  lines.push(
    `TR 101 290    sync loss ${t.syncLoss}, PAT error ${t.patErrors}, CC error ${t.ccErrors}, PMT error ${t.pmtErrors}, PID error ${t.pidErrors}${probe.timed_checks ? "" : " (timed checks off: no PCR)"}`,
  );
  lines.push(`SCTE-35       ${probe.scte35.length} cue(s)`);
  for (const cue of probe.scte35) {
    const what = cue.cue === null ? `undecodable: ${cue.error}` : summarizeCue(cue.cue);
    const pcr = cue.pcr === null ? "-" : `${cue.pcr} (${cue.pcr_seconds?.toFixed(6)} s)`;
    lines.push(`  pid ${hex(cue.pid)}  pcr ${pcr}  ${what}`);
  }
  return `${lines.join("\n")}\n`;
};

/** `distributary probe <file.ts | udp://@:PORT | rtp://@:PORT> [--seconds N] [--json]` */
export const probeCommand = async (args: ReadonlyArray<string>): Promise<void> => {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: { seconds: { type: "string" }, json: { type: "boolean" } },
  });
  const source = positionals[0];
  const failWith = (message: string) => {
    process.stderr.write(`distributary probe: ${message}\n`);
    process.exitCode = 1;
  };
  if (source === undefined || positionals.length > 1)
    return failWith("give one source: a .ts file, udp://@:PORT or rtp://@:PORT");
  const seconds = Number(values.seconds ?? 10);
  if (!Number.isFinite(seconds) || seconds <= 0)
    return failWith(`--seconds must be a positive number, got ${values.seconds}`);
  let result: ProbeReport;
  if (/^(udp|rtp):/.test(source)) {
    const endpoint = parseLiveSource(source);
    if (endpoint === null)
      return failWith(`cannot read '${source}' as udp://@[group]:PORT or rtp://@[group]:PORT`);
    const listening = () => process.stderr.write(`listening on ${source} for ${seconds} s\n`);
    const outcome = await Effect.runPromise(Effect.either(probeLive(source, endpoint, seconds, listening)));
    if (Either.isLeft(outcome)) return failWith(outcome.left.message);
    result = outcome.right;
  } else {
    try {
      result = probeFile(source);
    } catch (error) {
      return failWith(error instanceof Error ? error.message : String(error));
    }
  }
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : formatReport(result));
};
