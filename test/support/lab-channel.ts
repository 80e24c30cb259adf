/**
 * What the lab tests (test/lab/) share beyond the network: a live-like TS with SCTE-35 cues in it, and reading
 * a channel and its outputs from the API of the service under test.
 */
import { encodeSection } from "../../src/core/scte35/index.ts";
import { immediateSpliceOut } from "./cues.ts";
import { type Lab, type LabService, labSend, type Namespace } from "./netlab.ts";
import { chunkTs } from "./sender.ts";
import { TsGenerator } from "./ts-generator.ts";

export interface CuedStream {
  readonly ts: Uint8Array;
  /** 1316-byte datagrams of plain TS. */
  readonly datagrams: ReadonlyArray<Uint8Array>;
  /** The SCTE-35 sections in it, base64, in order. */
  readonly cues: ReadonlyArray<string>;
  /** Datagrams per millisecond at the stream's bitrate, for the sender's pace. */
  readonly perMs: number;
}

/** `seconds` of TS at `bitrate` from `generator`, with an SCTE-35 splice_insert every `cueEveryS` seconds. */
export const cuedStream = (
  generator: TsGenerator,
  bitrate: number,
  seconds: number,
  cueEveryS = 2,
  firstEventId = 1,
): CuedStream => {
  const cues: string[] = [];
  const startMs = generator.nowMs;
  for (let at = 0.5, id = firstEventId; at < seconds; at += cueEveryS, id++) {
    const section = encodeSection(immediateSpliceOut(id));
    generator.insertScte35(section, startMs + at * 1000);
    cues.push(Buffer.from(section).toString("base64"));
  }
  const datagramCount = Math.round((bitrate * seconds) / (1316 * 8));
  const ts = generator.packets(datagramCount * 7);
  return { ts, datagrams: chunkTs(ts), cues, perMs: bitrate / (1316 * 8 * 1000) };
};

/** Sends `stream` from `ns` to one destination ("addr:port") at its pace, its schedule in `file`. */
export const sendStream = (
  lab: Lab,
  ns: Namespace,
  file: string,
  stream: Pick<CuedStream, "datagrams" | "perMs">,
  destination: string,
) =>
  labSend(
    lab,
    ns,
    file,
    stream.datagrams.map((datagram) => [{ to: 0, datagram }]),
    stream.perMs,
    [destination],
  );

export const newGenerator = (seed: number, bitrate: number) =>
  new TsGenerator({ seed, bitrate, audioPid: null });

export interface OutputView {
  readonly id: string;
  readonly state: string;
  readonly bytes_sent: number;
  readonly queue_drops: number;
  readonly reconnects: number;
  readonly error_count: number;
  readonly srt: {
    readonly rtt_ms: number;
    readonly retransmits: number;
    readonly loss_packets: number;
    readonly dropped_packets: number;
  } | null;
  /** RTMP outputs only. */
  readonly rtmp?: { readonly frames_sent: number; readonly frames_dropped: number } | null;
}

export interface ChannelView {
  readonly id: string;
  readonly status: string;
  readonly outputs: ReadonlyArray<OutputView>;
  readonly inputs: ReadonlyArray<Record<string, unknown>>;
  readonly [field: string]: unknown;
}

export const channelOf = async (service: LabService, id: string): Promise<ChannelView> => {
  const answer = await service.api(`/api/channels/${id}`);
  if (answer.status !== 200)
    throw new Error(`GET /api/channels/${id}: ${answer.status} ${await answer.text()}`);
  return (await answer.json()) as ChannelView;
};

export const outputOf = async (service: LabService, channel: string, output: string): Promise<OutputView> => {
  const found = (await channelOf(service, channel)).outputs.find((candidate) => candidate.id === output);
  if (found === undefined) throw new Error(`no output ${output} in channel ${channel}`);
  return found;
};

/** Creates and starts a channel from `body`; its id. */
export const startedChannel = async (service: LabService, body: Record<string, unknown>): Promise<string> => {
  const created = await service.api("/api/channels", { method: "POST", body });
  if (created.status !== 201)
    throw new Error(
      `POST /api/channels: ${created.status} ${await created.text()}\n${service.process.stderr().slice(-3000)}`,
    );
  const { id } = (await created.json()) as { id: string };
  const started = await service.api(`/api/channels/${id}/start`, { method: "POST" });
  if (started.status !== 200) throw new Error(`start: ${started.status} ${await started.text()}`);
  return id;
};

export const connectedOutput = async (
  service: LabService,
  channel: string,
  output: string,
  timeoutMs = 20_000,
) => {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const view = await outputOf(service, channel, output);
    if (view.state === "connected") return view;
    if (Date.now() > deadline)
      throw new Error(`output ${output} did not connect in ${timeoutMs} ms: ${JSON.stringify(view)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

/** Waits until `have()` holds at least `bytes` bytes. */
export const bytesArrived = async (what: string, have: () => number, bytes: number, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs;
  while (have() < bytes) {
    if (Date.now() > deadline)
      throw new Error(`${bytes} bytes expected at ${what} in ${timeoutMs} ms, ${have()} came`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
};
