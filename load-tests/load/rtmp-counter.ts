/**
 * The RTMP runs' receiver that counts: an RTMP server on 127.0.0.1 (the project's own server session,
 * src/core/rtmp/server.ts) that takes every publish, keeps nothing and counts, per stream name, the video
 * frames (H.264 NAL unit tags), the audio frames (AAC raw tags), the cue messages (AMF0 data messages named
 * onCuePoint or onAdCue) and the bytes received. nginx-rtmp counts none of these (its statistics page gives
 * bytes and streams; it drops data messages other than @setDataFrame), so `--receiver counter`, the RTMP runs'
 * default, puts this in its place. Its CPU is the harness's, never a contender's.
 *
 *   node load-tests/load/rtmp-counter.ts PORT      // prints "ready"; on SIGUSR1 one line of JSON: the counts
 */
import { createServer } from "node:net";
import { decodeAmf0 } from "../../src/core/flv/amf0.ts";
import { MESSAGE } from "../../src/core/rtmp/chunks.ts";
import { RtmpServerSession } from "../../src/core/rtmp/server.ts";

export interface StreamCounts {
  video: number;
  audio: number;
  cues: number;
  bytes: number;
}

const streams = new Map<string, StreamCounts>();
const port = Number(process.argv[2]);

const server = createServer((socket) => {
  socket.setNoDelay(true);
  let counts: StreamCounts | null = null;
  const session = new RtmpServerSession({
    write: (bytes) => socket.write(bytes),
    close: () => socket.destroy(),
    connect: () => null,
    publish: (_app, name) => {
      counts = streams.get(name) ?? { video: 0, audio: 0, cues: 0, bytes: 0 };
      streams.set(name, counts);
      return null;
    },
    media: (message) => {
      if (counts === null) return;
      const { body } = message;
      if (message.type === MESSAGE.video) {
        // An AVC tag whose packet type is 1 is a frame; 0 is the sequence header, 2 the end of the sequence.
        if ((body[0] ?? 0) & 0x80 || body[1] === 1) counts.video++;
      } else if (message.type === MESSAGE.audio) {
        // AAC: packet type 1 is a raw frame, 0 the AudioSpecificConfig; other codecs have no packet type.
        if ((body[0] ?? 0) >> 4 !== 10 || body[1] === 1) counts.audio++;
      } else if (message.type === MESSAGE.data) {
        const decoded = decodeAmf0(body);
        const name = decoded._tag === "Right" ? decoded.right[0] : null;
        if (name === "onCuePoint" || name === "onAdCue") counts.cues++;
      }
    },
    unpublish: () => undefined,
  });
  socket.on("data", (bytes: Buffer) => {
    if (counts !== null) counts.bytes += bytes.length;
    session.push(bytes);
  });
  socket.on("error", () => undefined);
  socket.on("close", () => session.closed());
});
server.listen(port, "127.0.0.1", () => process.stdout.write("ready\n"));
process.on("SIGUSR1", () => {
  process.stdout.write(`${JSON.stringify(Object.fromEntries(streams))}\n`);
});
process.on("SIGTERM", () => process.exit(0));
