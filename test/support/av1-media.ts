/**
 * AV1 for the RTMP ingest's tests. Debian's ffmpeg 5.1 encodes AV1 (SVT-AV1) but cannot publish it over RTMP
 * nor read it out of MPEG-TS, so the tests do those two parts themselves:
 * - `encodeAv1`: ffmpeg encodes a test pattern to IVF (its frames are the encoder's temporal units) and copies
 *   it into MP4 once, for the AV1CodecConfigurationRecord its own writer makes;
 * - `av1Tags`: Enhanced RTMP video tags (`av01`): the sequence start with that record, then one coded frame
 *   per temporal unit, key where the unit starts a key frame;
 * - `publishAv1`: an RTMP publisher (the RTMP outputs' own connection) sending those tags in real time;
 * - `temporalUnitsIn`: the AV1 PES of a TS read back with the project's TS kit, each in the low overhead
 *   format again (av1.ts), with its stream_id and random access flag; `writeIvf` puts them in an IVF file
 *   for ffmpeg's decoder.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Effect } from "effect";
import { lowOverheadFormat, startsKeyFrame } from "../../src/core/flv/av1.ts";
import { PACKET, payloadOffset, pidAt, randomAccessIndicator, unitStartAt } from "../../src/core/ts/index.ts";
import { OutputError } from "../../src/domain/channel/output-error.ts";
import { parseRtmp } from "../../src/domain/url/rtmp-rtsp.ts";
import { connectRtmp } from "../../src/effects/outputs/rtmp-session.ts";

export interface Av1Stream {
  /** The IVF file's 32-byte header. */
  readonly ivfHeader: Uint8Array;
  /** The encoder's temporal units, in order. */
  readonly units: ReadonlyArray<Uint8Array>;
  /** The AV1CodecConfigurationRecord ffmpeg's MP4 writer made for the stream. */
  readonly av1C: Uint8Array;
  readonly fps: number;
}

/** The frames of an IVF file (12-byte frame headers: size, then a 64-bit time). */
export const ivfFrames = (ivf: Uint8Array): Uint8Array[] => {
  const view = Buffer.from(ivf.buffer, ivf.byteOffset, ivf.length);
  const frames: Uint8Array[] = [];
  for (let at = view.readUInt16LE(6); at + 12 <= view.length; ) {
    const size = view.readUInt32LE(at);
    frames.push(view.subarray(at + 12, at + 12 + size));
    at += 12 + size;
  }
  return frames;
};

/** An IVF file of `header` (its frame count rewritten) and `frames`, one per tick. */
export const writeIvf = (path: string, header: Uint8Array, frames: ReadonlyArray<Uint8Array>): void => {
  const head = Buffer.from(header);
  head.writeUInt32LE(frames.length, 24);
  const parts: Uint8Array[] = [head];
  frames.forEach((frame, i) => {
    const frameHeader = Buffer.alloc(12);
    frameHeader.writeUInt32LE(frame.length, 0);
    frameHeader.writeUInt32LE(i, 4);
    parts.push(frameHeader, frame);
  });
  writeFileSync(path, Buffer.concat(parts));
};

/** The body of the MP4 box `type` (the first one found). */
const boxBody = (mp4: Buffer, type: string): Uint8Array => {
  const at = mp4.indexOf(type);
  if (at < 4) throw new Error(`no ${type} box`);
  return mp4.subarray(at + 4, at - 4 + mp4.readUInt32BE(at - 4));
};

/** `seconds` of a 320x180 test pattern in AV1 (SVT-AV1, a key frame each second, hidden frames between). */
export const encodeAv1 = (dir: string, name: string, seconds: number, fps = 25): Av1Stream => {
  const ivf = join(dir, `${name}.ivf`);
  const mp4 = join(dir, `${name}.mp4`);
  const run = (...args: string[]) =>
    execFileSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...args], { stdio: "pipe" });
  run(
    ...["-f", "lavfi", "-i", `testsrc2=size=320x180:rate=${fps}`, "-t", String(seconds)],
    ...["-c:v", "libsvtav1", "-preset", "12", "-g", String(fps), "-pix_fmt", "yuv420p", ivf],
  );
  run("-i", ivf, "-c", "copy", mp4);
  const file = readFileSync(ivf);
  return {
    ivfHeader: file.subarray(0, 32),
    units: ivfFrames(file),
    av1C: boxBody(readFileSync(mp4), "av1C"),
    fps,
  };
};

export interface VideoTag {
  readonly timestamp: number;
  readonly body: Uint8Array;
}

const AV01 = [0x61, 0x76, 0x30, 0x31];

/** Enhanced RTMP video tags of `stream`: SequenceStart (the record), then CodedFrames, `fps` a second. */
export const av1Tags = (stream: Av1Stream): VideoTag[] => [
  { timestamp: 0, body: Uint8Array.from([0x80 | (1 << 4) | 0, ...AV01, ...stream.av1C]) },
  ...stream.units.map((unit, i) => {
    const frameType = startsKeyFrame(unit) ? 1 : 2;
    const body = new Uint8Array(5 + unit.length);
    body.set([0x80 | (frameType << 4) | 1, ...AV01]);
    body.set(unit, 5);
    return { timestamp: Math.round((i * 1000) / stream.fps), body };
  }),
];

/**
 * Publishes `tags` to `url` (rtmp://host:port/app/key) as their timestamps say, from the time the server
 * accepted the publish; ends the connection once they are written.
 */
export const publishAv1 = (url: string, tags: ReadonlyArray<VideoTag>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const target = parseRtmp("rtmp", url, new URL(url));
      if (target instanceof OutputError) return yield* Effect.fail(target);
      const connection = yield* connectRtmp(target);
      const start = Date.now();
      for (const tag of tags) {
        const wait = start + tag.timestamp - Date.now();
        if (wait > 0) yield* Effect.sleep(wait);
        connection.send({
          chunkStream: 6,
          type: 9,
          streamId: connection.streamId,
          timestamp: tag.timestamp,
          body: tag.body,
        });
      }
      yield* Effect.async<void>((resume) => {
        connection.socket.end(() => resume(Effect.void));
      });
    }),
  );

export interface CarriedUnit {
  /** The temporal unit in the low overhead format, as read back from its PES. */
  readonly unit: Uint8Array;
  readonly streamId: number;
  /** The PES header's data_alignment_indicator. */
  readonly aligned: boolean;
  /** The first packet's random_access_indicator. */
  readonly randomAccess: boolean;
  /** The first packet's elementary_stream_priority_indicator. */
  readonly priority: boolean;
}

/** Every whole PES on `pid` in `ts`, its AV1 payload back in the low overhead format. */
export const temporalUnitsIn = (ts: Uint8Array, pid = 0x100): CarriedUnit[] => {
  const found: CarriedUnit[] = [];
  let parts: Uint8Array[] | null = null;
  let randomAccess = false;
  let priority = false;
  const finish = () => {
    if (parts === null) return;
    const pes = Buffer.concat(parts);
    const payload = pes.subarray(9 + (pes[8] ?? 0));
    found.push({
      unit: lowOverheadFormat(payload),
      streamId: pes[3] ?? 0,
      aligned: ((pes[6] ?? 0) & 0x04) !== 0,
      randomAccess,
      priority,
    });
  };
  for (let at = 0; at + PACKET <= ts.length; at += PACKET) {
    if (pidAt(ts, at) !== pid) continue;
    const packet = ts.subarray(at, at + PACKET);
    if (unitStartAt(packet)) {
      finish();
      parts = [];
      randomAccess = randomAccessIndicator(packet);
      priority = (packet[3] ?? 0) & 0x20 ? packet[4] !== 0 && ((packet[5] ?? 0) & 0x20) !== 0 : false;
    }
    parts?.push(packet.subarray(payloadOffset(packet)));
  }
  finish();
  return found;
};
