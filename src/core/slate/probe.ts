/**
 * The slate's format probe: reads a channel's live MPEG-TS (whole 188-byte packets, as the outputs get them)
 * until it knows the format a slate must match (types.ts `SlateFormat`), or why none can. An analyser, not a
 * TS filter (ts-filter.ts).
 *
 *   const probe = makeFormatProbe()
 *   for (const chunk of chunks) { probe.push(chunk); if (probe.result() !== null) break }
 *
 * It keeps the PAT and the PMT as sent (CRC checked), reads the video's SPS (and for interlaced H.264 the
 * pic_timing SEI or the first field's slice header for the field order), takes the frame rate from the PTS of
 * about a dozen pictures (snapped to the usual rates; video-format.ts), and one frame header of each audio PID
 * (audio-headers.ts). Everything is bounded: a PES is reassembled up to 2 MiB (pes-reader.ts), a section up
 * to 1024 bytes; corrupt packets and sections are skipped; a PMT that changes while it reads starts it over. After `maxBytes` (8 MiB) it refuses, saying
 * what it did not find; only an audio PID that never showed a frame header is answered silent instead.
 */
import {
  ccAt,
  descriptorTags,
  firstProgram,
  hasPayloadAt,
  MAX_PSI_SECTION,
  PACKET,
  PTS_WRAP,
  payloadOffset,
  pcrBaseAt,
  pcrOf,
  pidAt,
  ptsAt,
  readPat,
  readPmt,
  SectionReader,
  STREAM_TYPE_H264,
  STREAM_TYPE_H265,
  SYNC,
  transportErrorAt,
  unitStartAt,
  VIDEO_CODEC_NAMES,
} from "../ts/index.ts";
import { type AudioHeader, type AudioKind, audioName, findAudioHeader } from "./audio-headers.ts";
import { PesReader } from "./pes-reader.ts";
import type { AudioFormat, ProbeResult, Scan, SlateFormat } from "./types.ts";
import { frameRate, newVideoState, PICTURES, readVideoPes } from "./video-format.ts";

export interface FormatProbe {
  /** Takes the next chunk (whole 188-byte packets). Cheap after it has an answer (returns at once). */
  readonly push: (chunk: Uint8Array) => void;
  /** null while still reading; then the answer, which never changes afterwards. */
  readonly result: () => ProbeResult | null;
}

const hex = (n: number) => `0x${n.toString(16).padStart(2, "0")}`;

const sizeWords = (bytes: number): string =>
  bytes % (1024 * 1024) === 0
    ? `${bytes / (1024 * 1024)} MiB`
    : bytes % 1024 === 0
      ? `${bytes / 1024} KiB`
      : `${bytes} bytes`;

/** A PMT's elementary stream, with the tags of its descriptors. */
interface PmtStream {
  readonly type: number;
  readonly pid: number;
  readonly tags: ReadonlyArray<number>;
}

interface Pmt {
  readonly program: number;
  readonly pcrPid: number;
  readonly streams: ReadonlyArray<PmtStream>;
}

interface Channel {
  program: number;
  pmtPid: number;
  pat: Uint8Array;
  pmt: Uint8Array | null;
  parsed: Pmt | null;
}

/** The PMT of `program`, current, with its streams' descriptor tags; null otherwise. */
const parsePmt = (section: Uint8Array, program: number): Pmt | null => {
  const pmt = readPmt(section);
  if (pmt === null || ((section[5] ?? 0) & 1) === 0 || pmt.program !== program) return null;
  const streams = pmt.streams.map(
    (stream): PmtStream => ({
      type: stream.streamType,
      pid: stream.pid,
      tags: descriptorTags(section, stream),
    }),
  );
  return { program, pcrPid: pmt.pcrPid, streams };
};

/** What each PMT stream is to the slate: the video, an audio of a kind, or silent and why. */
type Role =
  | { readonly role: "video"; readonly codec: "h264" | "hevc" }
  | { readonly role: "audio"; readonly kind: AudioKind }
  | { readonly role: "silent"; readonly why: string };

const roleOf = (s: PmtStream): Role => {
  if (s.type === 0x0f) return { role: "audio", kind: "aac" };
  if (s.type === 0x81 || (s.type === 0x06 && s.tags.includes(0x6a))) return { role: "audio", kind: "ac3" };
  if (s.type === 0x03 || s.type === 0x04) return { role: "audio", kind: "mpa" };
  if (s.type === 0x86) return { role: "silent", why: "SCTE-35: carries nothing while the slate plays" };
  if (s.type === 0x87 || (s.type === 0x06 && s.tags.includes(0x7a)))
    return { role: "silent", why: "E-AC-3: the slate's encoder makes AC-3 only" };
  if (s.type === 0x11)
    return { role: "silent", why: "AAC in LATM: the slate's encoder makes AAC in ADTS only" };
  if (s.type === 0x06 && s.tags.includes(0x59))
    return { role: "silent", why: "DVB subtitles: none while the slate plays" };
  if (s.type === 0x06 && s.tags.includes(0x56))
    return { role: "silent", why: "teletext: none while the slate plays" };
  if (s.type === 0x15) return { role: "silent", why: "timed metadata: none while the slate plays" };
  const video = VIDEO_CODEC_NAMES.get(s.type);
  if (video !== undefined) return { role: "silent", why: `${video} video: the slate carries one video only` };
  return { role: "silent", why: `data (stream type ${hex(s.type)}): carries nothing while the slate plays` };
};

interface AudioState {
  readonly pid: number;
  readonly type: number;
  readonly kind: AudioKind;
  header: AudioHeader | null;
  readonly pes: PesReader;
}

/** How far `pts` is after `pcr` (90 kHz) the short way round the 33-bit circle; 0 when it is before. */
const ticksAhead = (pcr: number, pts: number): number => {
  const ahead = (((pts - pcr) % PTS_WRAP) + PTS_WRAP) % PTS_WRAP;
  return ahead < PTS_WRAP / 2 ? ahead : 0;
};

export const makeFormatProbe = (options?: { maxBytes?: number }): FormatProbe => {
  const maxBytes = options?.maxBytes ?? 8 * 1024 * 1024;
  let answer: ProbeResult | null = null;
  let seen = 0;
  let channel: Channel | null = null;
  let videoPid = -1;
  let videoCodec: "h264" | "hevc" = "h264";
  let video = newVideoState();
  let videoPes: PesReader | null = null;
  let audio: AudioState[] = [];
  const audioByPid = new Map<number, AudioState>();
  let silent: Array<{ pid: number; why: string }> = [];
  let noVideo: string | null = null;

  const startOver = (): void => {
    videoPid = -1;
    video = newVideoState();
    videoPes = null;
    audio = [];
    audioByPid.clear();
    silent = [];
    noVideo = null;
    pmtReader.reset();
  };

  const onPat = (section: Uint8Array): void => {
    const entry = firstProgram(readPat(section));
    if (entry === undefined) return;
    const pat = { program: entry.program, pmtPid: entry.pid };
    if (channel !== null && channel.program === pat.program && channel.pmtPid === pat.pmtPid) {
      channel.pat = section.slice();
      return;
    }
    channel = { ...pat, pat: section.slice(), pmt: null, parsed: null };
    startOver();
  };

  const onPmt = (section: Uint8Array): void => {
    if (channel === null) return;
    if (channel.pmt !== null && Buffer.compare(channel.pmt, section) === 0) return;
    const parsed = parsePmt(section, channel.program);
    if (parsed === null) return;
    const had = channel.pmt !== null;
    if (had) startOver();
    channel.pmt = section.slice();
    channel.parsed = parsed;
    let found = false;
    let other: string | null = null;
    for (const s of parsed.streams) {
      if (!found && (s.type === STREAM_TYPE_H264 || s.type === STREAM_TYPE_H265)) {
        found = true;
        videoPid = s.pid;
        videoCodec = s.type === STREAM_TYPE_H264 ? "h264" : "hevc";
        const reader = new PesReader(256 * 1024, (pes) => {
          readVideoPes(pes, videoCodec, videoPid, video);
          // Once the parameter sets and the field order are known, only the PES headers are read.
          if (
            video.sps !== null &&
            !(video.interlaced && (video.order === null || video.fieldPerPes === null))
          )
            reader.limit = 64;
        });
        videoPes = reader;
        continue;
      }
      const role = roleOf(s);
      if (role.role === "audio") {
        const state: AudioState = {
          pid: s.pid,
          type: s.type,
          kind: role.kind,
          header: null,
          pes: new PesReader(8 * 1024, (pes) => {
            state.header ??= findAudioHeader(role.kind, pes);
            if (state.header !== null) state.pes.limit = 0;
          }),
        };
        audio.push(state);
        audioByPid.set(s.pid, state);
      } else if (role.role === "silent") {
        other ??= VIDEO_CODEC_NAMES.has(s.type)
          ? `${VIDEO_CODEC_NAMES.get(s.type)} (stream type ${hex(s.type)})`
          : null;
        silent.push({ pid: s.pid, why: role.why });
      }
    }
    if (!found)
      noVideo =
        other === null
          ? "this channel carries no video"
          : `the slate is made for H.264 and HEVC video; this channel's video is ${other}`;
  };

  // Sections longer than a PAT or PMT can be are skipped.
  const patReader = new SectionReader(onPat, MAX_PSI_SECTION);
  const pmtReader = new SectionReader(onPmt, MAX_PSI_SECTION);

  /** The answer when everything is known, a refusal, or null while something is missing. */
  /**
   * `givingUp`: the bytes are spent, and an audio PID that showed no frame header is answered silent (the
   * slate does without it) rather than refusing the whole format.
   */
  const conclude = (givingUp: boolean): ProbeResult | null => {
    const ch = channel;
    if (ch === null || ch.pmt === null || ch.parsed === null) return null;
    if (noVideo !== null) return { refused: noVideo };
    if (video.refused !== null) return { refused: video.refused };
    if (video.sps === null) return null;
    if (!givingUp && audio.some((a) => a.header === null)) return null;
    const rate = frameRate(video);
    if (rate === null) return null;
    if (typeof rate === "string") return { refused: rate };
    const scan: Scan = video.interlaced ? (video.order ?? "tff") : "progressive";
    const formats: AudioFormat[] = [];
    const quiet = [...silent];
    for (const a of audio) {
      const f = a.header?.format;
      if (f === undefined)
        quiet.push({
          pid: a.pid,
          why:
            a.header?.why ??
            `no ${audioName(a.kind)} frame header in the first ${sizeWords(maxBytes)} of the stream`,
        });
      else formats.push({ pid: a.pid, streamType: a.type, ...f });
    }
    const pmtOrder = new Map(ch.parsed.streams.map((s, i) => [s.pid, i]));
    quiet.sort((a, b) => (pmtOrder.get(a.pid) ?? 0) - (pmtOrder.get(b.pid) ?? 0));
    const format: SlateFormat = {
      program: ch.program,
      pmtPid: ch.pmtPid,
      pcrPid: ch.parsed.pcrPid,
      pat: ch.pat,
      pmt: ch.pmt,
      video: { ...video.sps, frameRate: rate, scan },
      audio: formats,
      silent: quiet,
      ptsLead,
    };
    return { format };
  };

  /** What was not found, in words, when the probe gives up. */
  const missing = (): string => {
    const within = `in the first ${sizeWords(maxBytes)} of the stream`;
    const ch = channel;
    if (ch === null) return `no PAT ${within}`;
    if (ch.pmt === null) return `no PMT for program ${ch.program} (PID ${ch.pmtPid}) ${within}`;
    const name = videoCodec === "h264" ? "H.264" : "HEVC";
    if (video.sps === null) return `no ${name} SPS ${within}`;
    if (video.pts.length < PICTURES)
      return `too few timed ${name} pictures for a frame rate (${video.pts.length} of ${PICTURES}) ${within}`;
    const quiet = audio.find((a) => a.header === null);
    if (quiet !== undefined) return `no ${audioName(quiet.kind)} frame header on PID ${quiet.pid} ${within}`;
    return `no answer ${within}`;
  };

  /** The latest PCR base on the PCR PID (90 kHz), and how far a video PTS ran ahead of it at most. */
  let lastPcr = -1;
  let ptsLead = 0;

  const packet = (p: Uint8Array): void => {
    if (p[0] !== SYNC || transportErrorAt(p)) return;
    if (!hasPayloadAt(p)) return;
    const pid = pidAt(p);
    if (pid === channel?.parsed?.pcrPid && pcrOf(p) >= 0) lastPcr = pcrBaseAt(p, 6);
    const at = payloadOffset(p);
    if (at > PACKET) return;
    const pusi = unitStartAt(p);
    if (pusi && pid === videoPid && lastPcr >= 0 && at + 14 <= PACKET) {
      const pts = ptsAt(p, at);
      if (pts >= 0) ptsLead = Math.max(ptsLead, ticksAhead(lastPcr, pts));
    }
    const cc = ccAt(p);
    if (pid === 0) patReader.packet(p, at, pusi, cc);
    else if (channel !== null && pid === channel.pmtPid) pmtReader.packet(p, at, pusi, cc);
    else if (pid === videoPid) videoPes?.packet(p, at, pusi, cc);
    else audioByPid.get(pid)?.pes.packet(p, at, pusi, cc);
  };

  const push = (chunk: Uint8Array): void => {
    if (answer !== null) return;
    for (let i = 0; i + PACKET <= chunk.length; i += PACKET) {
      packet(chunk.subarray(i, i + PACKET));
      seen += PACKET;
      if (seen >= maxBytes) break;
    }
    try {
      answer = conclude(false) ?? (seen >= maxBytes ? conclude(true) : null);
    } catch {
      answer = null;
    }
    if (answer === null && seen >= maxBytes) answer = { refused: missing() };
  };

  return { push, result: () => answer };
};
