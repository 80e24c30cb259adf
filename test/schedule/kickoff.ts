/**
 * The real-time tests' window (issue 52, points 2 and 3): one-off, T0 20 s after it is made, MediaLive
 * started 10 s before the preroll, a 5 s preroll, 8 s of programme and a 3 s postroll. And how those tests
 * tell the input's packets from the slate's at a sink: by the input's video packets, byte for byte.
 */
import { pidAt } from "../support/ts-packets.ts";

export const S = 1000;
export const LEAD = 10;
export const PREROLL = 5;
export const DURATION = 8;
export const POSTROLL = 3;

/** A T0 on a whole second, `seconds` from now. */
export const t0In = (seconds: number) => Math.ceil((Date.now() + seconds * S) / S) * S;

/** The channel's schedule: the window "kickoff" at `t0`, shown in Paris time. */
export const kickoffSchedule = (t0: number) => ({
  windows: [
    {
      id: "kickoff",
      start: new Date(t0).toISOString(),
      time_zone: "Europe/Paris",
      duration_s: DURATION,
      medialive_lead_s: LEAD,
      preroll_s: PREROLL,
      postroll_s: POSTROLL,
    },
  ],
});

const PACKET = 188;
/** The video PID of the encoded test stream (ffmpeg's mpegts muxer). */
export const VIDEO_PID = 0x100;

/** Each video packet of the input, its bytes as base64. */
export const videoPackets = (source: Buffer): Set<string> => {
  const packets = new Set<string>();
  for (let at = 0; at + PACKET <= source.length; at += PACKET)
    if (pidAt(source, at) === VIDEO_PID) packets.add(source.subarray(at, at + PACKET).toString("base64"));
  return packets;
};

/** Where the first of the input's video packets is in a datagram, or -1 (none: the slate's, or nothing). */
export const inputAt = (datagram: Buffer, packets: ReadonlySet<string>): number => {
  for (let at = 0; at + PACKET <= datagram.length; at += PACKET)
    if (
      pidAt(datagram, at) === VIDEO_PID &&
      packets.has(datagram.subarray(at, at + PACKET).toString("base64"))
    )
      return at;
  return -1;
};
