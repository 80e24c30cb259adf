/**
 * RTMP/RTMPS output, in process. The channel's TS is remuxed to FLV once (core/flv/remux.ts, shared by every
 * RTMP output of the channel); each output publishes its frames over its own connection (rtmp-session.ts).
 *
 * Each attempt starts live: nothing that came while it was away is sent. From the moment it starts to
 * connect it keeps the frames from the latest video keyframe on (a newer keyframe replaces them), behind
 * onMetaData and the sequence headers in force, so every connection starts decodable, audio and video
 * together, without waiting a GOP more than it must. HEVC goes only to an output marked as taking it (`hevc=1`), AV1 to one marked `av1=1`; a channel whose
 * codecs RTMP cannot carry gets the output an error naming them rather than tags no one can decode.
 *
 * A server slower than the stream costs only its output: frames wait in this output's bounded queue (the
 * output's queue size, or a second of stream if that is more); past it, whole frames are dropped, non-key video first and then everything before
 * the latest keyframe, and video after a dropped frame waits for the next keyframe. Every drop is counted.
 * A cue is never dropped with the frames around it: it is a few hundred bytes, and a receiver that misses it
 * misses an ad break.
 * The socket's own buffer is kept to a small mark, so neither grows without bound, and nothing waits on the
 * channel's side: the remux hands frames over synchronously.
 *
 * A frame whose body is memory the channel uses again (its `lease`, core/flv/frame-memory.ts) is held by the
 * output from when it queues it until its socket has written the last of its chunks (the write's callback, which
 * also comes when the socket is destroyed), or until the output drops it or ends with it still queued.
 */
import * as Effect from "effect/Effect";
import type * as Scope from "effect/Scope";
import type { FlvFrame } from "../../core/flv/frames.ts";
import type { FlvRemux } from "../../core/flv/remux.ts";
import { encodeMessageInto, MESSAGE, messageLength } from "../../core/rtmp/chunks.ts";
import { OutputError, outputInternalError } from "../../domain/channel/output-error.ts";
import type { RtmpTarget } from "../../domain/url/rtmp-rtsp.ts";
import { afterTheSends, cancelEndOfTurn } from "../runtime/timers/end-of-turn.ts";
import type { WriterContext } from "./context.ts";
import { connectRtmp } from "./rtmp-session.ts";

/** The socket's buffer mark: past it, frames wait in the output's queue, where they can be dropped whole. */
const SOCKET_MARK = 128 * 1024;
const CHUNK_STREAM = { audio: 4, data: 5, video: 6 } as const;
/**
 * The queue sheds only past its size and this much stream as well: a busy event loop's pause of a few hundred
 * milliseconds must not cost a healthy server frames, and a second of stream is bounded by its bitrate.
 */
const MIN_QUEUE_MS = 1000;

/** Counters of one RTMP output, over its attempts. */
export interface RtmpCounters {
  framesSent: number;
  framesDropped: number;
  cuesSent: number;
  acknowledgedBytes: number;
  /** Bytes of frames waiting in the output's queue now. */
  queuedBytes: number;
}

const sizeOf = (frame: FlvFrame): number => frame.body.length + 16;

/**
 * The bytes of one write: the frames an output sends at the end of a turn, cut into chunks and copied here one
 * after another, then written as one buffer (a socket's `Writable` keeps an entry per write: one a turn, not
 * two per chunk). One for the thread, used again by every output as long as the kernel takes each write whole
 * at once, as it does while the destination keeps up: the socket then keeps no reference to it. A write the
 * kernel takes only in part keeps it until it is done, and the thread makes another.
 */
let writeBytes = Buffer.allocUnsafeSlow(0);

/** Room for `end` bytes in the write's buffer, the first `kept` of them kept. */
const roomFor = (end: number, kept: number) => {
  if (end <= writeBytes.length) return;
  let size = Math.max(64 * 1024, writeBytes.length);
  while (size < end) size *= 2;
  const larger = Buffer.allocUnsafeSlow(size);
  larger.set(writeBytes.subarray(0, kept));
  writeBytes = larger;
};

/** A frame's chunks copied into the write's buffer from `at`, after what is kept before it; where they end. */
const copyFrame = (frame: FlvFrame, streamId: number, chunkSize: number, at: number): number => {
  const chunkStream =
    frame.type === MESSAGE.video
      ? CHUNK_STREAM.video
      : frame.type === MESSAGE.audio
        ? CHUNK_STREAM.audio
        : CHUNK_STREAM.data;
  const message = { chunkStream, type: frame.type, streamId, timestamp: frame.timestamp, body: frame.body };
  const end = at + messageLength(chunkSize, message);
  roomFor(end, at);
  encodeMessageInto(chunkSize, message, writeBytes, at);
  return end;
};

/** The codec check an attempt makes before it connects: null when the output can carry the channel. */
const carryProblem = (remux: FlvRemux, target: RtmpTarget): string | null => {
  const problem = remux.problem;
  if (problem !== null) return problem;
  const videoCodec = remux.videoCodec ?? remux.tracks?.videoCodec;
  if (videoCodec === "hevc" && !target.hevc) {
    return "the channel's video is HEVC, which needs Enhanced RTMP: add hevc=1 to the output URL if the destination takes it (YouTube's RTMP ingest, for one, takes H.264)";
  }
  if (videoCodec === "av1" && !target.av1) {
    return "the channel's video is AV1, which needs Enhanced RTMP: add av1=1 to the output URL if the destination takes it";
  }
  return null;
};

/** `id` is the output's, given to a cue's `cueSent` when this output sends it. */
export const rtmpAttempt = (
  target: RtmpTarget,
  remux: FlvRemux,
  counters: RtmpCounters,
  context: WriterContext,
  id: string,
  cueKept?: (section: Uint8Array) => boolean,
): Effect.Effect<never, OutputError, Scope.Scope> =>
  Effect.gen(function* () {
    const queue: FlvFrame[] = [];
    let queued = 0;
    let started = false;
    let waitingForKey = false;
    let failure: OutputError | null = null;
    /** Set once connected: frames are waiting, or `failure` was set. */
    let ready: (() => void) | null = null;
    const signal = () => ready?.();

    const drop = (keep: (frame: FlvFrame, index: number) => boolean) => {
      for (let i = 0; i < queue.length; ) {
        const frame = queue[i] as FlvFrame;
        if (keep(frame, i) || frame.kind === "cue") i++;
        else {
          queue.splice(i, 1);
          frame.lease?.release();
          queued -= sizeOf(frame);
          if (frame.kind === "video" || frame.kind === "audio") counters.framesDropped++;
        }
      }
    };
    /** Over the queue's size: non-key video first, then all before the latest keyframe, then the oldest. */
    const shed = () => {
      drop((frame) => frame.kind !== "video" || frame.keyframe);
      waitingForKey = true;
      if (queued <= context.queueBytes || span() <= MIN_QUEUE_MS) return;
      let latestKey = -1;
      queue.forEach((frame, i) => {
        if (frame.kind === "video" && frame.keyframe) latestKey = i;
      });
      drop((frame, i) => i >= latestKey || frame.kind === "videoHeader" || frame.kind === "audioHeader");
      while (queued > context.queueBytes && span() > MIN_QUEUE_MS) {
        const oldest = queue.findIndex((frame) => frame.kind !== "cue");
        if (oldest < 0 || oldest === queue.length - 1) break;
        const [dropped] = queue.splice(oldest, 1) as [FlvFrame];
        dropped.lease?.release();
        queued -= sizeOf(dropped);
        if (dropped.kind === "video" || dropped.kind === "audio") counters.framesDropped++;
      }
    };
    const span = () => (queue.at(-1)?.timestamp ?? 0) - (queue[0]?.timestamp ?? 0);
    const enqueue = (frame: FlvFrame) => {
      frame.lease?.hold();
      queue.push(frame);
      queued += sizeOf(frame);
      if (queued > context.queueBytes && span() > MIN_QUEUE_MS) shed();
      counters.queuedBytes = queued;
      signal();
    };

    /** Lets go of every frame still queued (their memory back to the channel): a new start, or the attempt's end. */
    const releaseQueued = () => {
      for (const frame of queue) frame.lease?.release();
      queue.length = 0;
    };
    /** The attempt ended: nothing is written any more (what is queued was let go). */
    let ended = false;
    let connected = false;
    let startedCodec = remux.videoCodec;
    const listener = (frame: FlvFrame) => {
      // Until the server accepts the publish, only the frames from the latest keyframe wait.
      if (!connected && started && frame.kind === "video" && frame.keyframe) {
        releaseQueued();
        queued = 0;
        started = false;
      }
      if (!started) {
        // Each connection starts at a keyframe (or the first audio of a channel without video), with the
        // metadata and the sequence headers in force.
        const opens =
          frame.kind === "video" ? frame.keyframe : frame.kind === "audio" && remux.tracks?.video === false;
        if (!opens) return;
        const problem = carryProblem(remux, target);
        if (problem !== null) {
          failure = new OutputError({ reason: "unsupported_media", message: problem });
          signal();
          return;
        }
        started = true;
        startedCodec = remux.videoCodec;
        enqueue({
          ...frame,
          kind: "metadata",
          type: MESSAGE.data,
          body: remux.metadata(),
          keyframe: false,
          cueBody: null,
          cueSent: null,
          cueSection: null,
          lease: null,
        });
        if (remux.videoHeader !== null) enqueue({ ...remux.videoHeader, timestamp: frame.timestamp });
        if (remux.audioHeader !== null) enqueue({ ...remux.audioHeader, timestamp: frame.timestamp });
        enqueue(frame);
        return;
      }
      // The channel's video changed codec (an input switch): the new one may be one this destination cannot take.
      if (frame.kind === "videoHeader" && remux.videoCodec !== startedCodec) {
        startedCodec = remux.videoCodec;
        const problem = carryProblem(remux, target);
        if (problem !== null) {
          failure = new OutputError({ reason: "unsupported_media", message: problem });
          signal();
          return;
        }
      }
      if (frame.kind === "video") {
        if (waitingForKey && !frame.keyframe) {
          counters.framesDropped++;
          return;
        }
        if (frame.keyframe) waitingForKey = false;
      }
      if (frame.kind === "cue" && frame.cueBody !== null) {
        if (target.cues === "off") return;
        // Withheld by the output's policy before it becomes a data message (the cue log says by which rule).
        if (frame.cueSection !== null && cueKept !== undefined && !cueKept(frame.cueSection)) return;
        const body = frame.cueBody(target.cues);
        if (body === undefined) return;
        enqueue({ ...frame, body, cueBody: null });
        return;
      }
      enqueue(frame);
    };
    // The remux calls every RTMP output of the channel in turn: a throw here ends this output's attempt alone.
    const stop = remux.listen((frame) => {
      if (failure !== null) return;
      try {
        listener(frame);
      } catch (thrown) {
        failure = outputInternalError(thrown);
        signal();
      }
    });
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        stop();
        ended = true;
        releaseQueued();
        counters.queuedBytes = 0;
      }),
    );
    // Until the first frame goes, a PMT that changes to what RTMP cannot carry ends the attempt in words; from
    // then on the listener ends it (a codec switch), and this rests.
    const watch = Effect.forever(
      Effect.zipRight(
        Effect.sleep("250 millis"),
        Effect.suspend(() => {
          if (started) return Effect.never;
          const problem = failure?.message ?? carryProblem(remux, target);
          return problem === null
            ? Effect.void
            : Effect.fail(new OutputError({ reason: "unsupported_media", message: problem }));
        }),
      ),
    );
    // The PMT says what the channel carries: a destination is not called for a stream it cannot take.
    while (remux.tracks === null) yield* Effect.sleep("250 millis");
    const known = carryProblem(remux, target);
    if (known !== null) return yield* new OutputError({ reason: "unsupported_media", message: known });
    const connection = yield* Effect.raceFirst(connectRtmp(target), watch);
    connected = true;
    yield* context.markConnected;

    const socket = connection.socket;
    let lastAcknowledged = 0;
    /** Past the socket's mark, nothing is written until it drains. */
    let blocked = false;
    // What a turn of the event loop queued goes to the kernel at its end, in one write: a plain callback, not a
    // fiber woken per turn, since this runs at every read of the inputs. A frame's chunks are copied into the
    // write's buffer (`writeBytes`), after the frames before it in that write; where they end.
    const sendFrame = (frame: FlvFrame, at: number): number => {
      queued -= sizeOf(frame);
      const end = copyFrame(frame, connection.streamId, connection.chunkSize, at);
      // Copied: the frame's memory goes back to the channel as far as this output is concerned.
      frame.lease?.release();
      context.countSent(frame.body.length);
      if (frame.kind === "video" || frame.kind === "audio") counters.framesSent++;
      else if (frame.kind === "cue" && target.cues !== "off") {
        counters.cuesSent++;
        frame.cueSent?.(id, target.cues);
      }
      return end;
    };
    const write = () => {
      try {
        writeQueued();
      } catch (thrown) {
        failure = outputInternalError(thrown);
        ready?.();
      }
    };
    const writeQueued = () => {
      if (blocked || failure !== null || ended) return;
      // A mark's worth goes in one write; the kernel may take it at once, and then the next does.
      while (queue.length > 0 && socket.writableLength < SOCKET_MARK) {
        let length = 0;
        while (queue.length > 0 && socket.writableLength + length < SOCKET_MARK) {
          length = sendFrame(queue.shift() as FlvFrame, length);
        }
        socket.write(writeBytes.subarray(0, length));
        // Taken whole, the socket holds none of it (its length is back to nothing); otherwise the rest waits
        // in the socket, which keeps the buffer, and the next write gets another.
        if (socket.writableLength > 0) writeBytes = Buffer.allocUnsafeSlow(writeBytes.length);
      }
      counters.queuedBytes = queued;
      const acknowledged = connection.acknowledged();
      if (acknowledged !== lastAcknowledged) {
        counters.acknowledgedBytes += (acknowledged - lastAcknowledged + 2 ** 32) % 2 ** 32;
        lastAcknowledged = acknowledged;
      }
      if (socket.writableLength >= SOCKET_MARK) {
        blocked = true;
        socket.once("drain", drained);
      }
    };
    const drained = () => {
      blocked = false;
      write();
    };
    const failed = Effect.async<never, OutputError>((resume) => {
      ready = () => {
        if (failure !== null) resume(Effect.fail(failure));
        else afterTheSends(write);
      };
      signal();
      return Effect.sync(() => {
        ready = null;
        cancelEndOfTurn(write);
        socket.off("drain", drained);
      });
    });
    return yield* Effect.raceFirst(Effect.raceFirst(failed, connection.closed), watch);
  });
