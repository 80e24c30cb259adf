/**
 * RTMP chunk streams (Adobe's RTMP specification, section 5.3): a message is cut into chunks of at most the
 * sender's chunk size, each behind a basic header (format and chunk stream id) and, for the first, a message
 * header (timestamp, length, type, message stream id). A timestamp of 0xFFFFFF or more goes into a 4-byte
 * extended field, and every continuation chunk (format 3) of that message repeats it: receivers such as ffmpeg
 * and GStreamer drop the session when it is missing.
 *
 *   encodeMessage(4096, { chunkStream: 6, type: 9, streamId: 1, timestamp, body })   // one buffer, all chunks
 *   end = encodeMessageInto(4096, message, out, at)                                  // into a buffer of yours
 *   const reader = new ChunkReader(); reader.push(bytes, (message) => …)              // the peer's messages
 *
 * The writer always uses a format 0 header for a message's first chunk: absolute timestamps on every message,
 * so a dropped frame never leaves a delta pointing at it. Plain state and arithmetic, no I/O.
 */

export const MESSAGE = {
  setChunkSize: 1,
  abort: 2,
  acknowledgement: 3,
  userControl: 4,
  windowAckSize: 5,
  setPeerBandwidth: 6,
  audio: 8,
  video: 9,
  data: 18,
  command: 20,
} as const;

/** User control events (section 7.1.7) a publisher meets. */
export const USER_CONTROL = { streamBegin: 0, pingRequest: 6, pingResponse: 7 } as const;

const EXTENDED = 0xffffff;
/** The largest chunk size the specification allows (31 bits). */
const MAX_CHUNK_SIZE = 0x7fffffff;

export interface RtmpMessage {
  readonly chunkStream: number;
  readonly type: number;
  readonly streamId: number;
  /** Milliseconds, 32-bit: it wraps after ~49.7 days as the protocol's does. */
  readonly timestamp: number;
  readonly body: Uint8Array;
}

const basicHeaderSize = (chunkStream: number): number => (chunkStream < 64 ? 1 : chunkStream < 320 ? 2 : 3);

const putBasicHeader = (out: Uint8Array, at: number, format: number, chunkStream: number): number => {
  if (chunkStream < 64) {
    out[at] = (format << 6) | chunkStream;
    return at + 1;
  }
  if (chunkStream < 320) {
    out[at] = format << 6;
    out[at + 1] = chunkStream - 64;
    return at + 2;
  }
  out[at] = (format << 6) | 1;
  out[at + 1] = (chunkStream - 64) & 0xff;
  out[at + 2] = (chunkStream - 64) >> 8;
  return at + 3;
};

const putU32 = (out: Uint8Array, at: number, value: number): void => {
  out[at] = value >>> 24;
  out[at + 1] = (value >>> 16) & 0xff;
  out[at + 2] = (value >>> 8) & 0xff;
  out[at + 3] = value & 0xff;
};

/** A message's first header (format 0) at `out[at]`, its extended timestamp included; where it ends. */
const putFirstHeader = (
  out: Uint8Array,
  start: number,
  message: RtmpMessage,
  timestamp: number,
  extended: boolean,
) => {
  const length = message.body.length;
  let at = putBasicHeader(out, start, 0, message.chunkStream);
  const field = extended ? EXTENDED : timestamp;
  out[at] = field >> 16;
  out[at + 1] = (field >> 8) & 0xff;
  out[at + 2] = field & 0xff;
  out[at + 3] = length >> 16;
  out[at + 4] = (length >> 8) & 0xff;
  out[at + 5] = length & 0xff;
  out[at + 6] = message.type;
  // The message stream id is the one little-endian field of the protocol.
  out[at + 7] = message.streamId & 0xff;
  out[at + 8] = (message.streamId >> 8) & 0xff;
  out[at + 9] = (message.streamId >> 16) & 0xff;
  out[at + 10] = message.streamId >>> 24;
  at += 11;
  if (extended) {
    putU32(out, at, timestamp);
    at += 4;
  }
  return at;
};

/** How many bytes a message's chunks take at `chunkSize`. */
export const messageLength = (chunkSize: number, message: RtmpMessage): number => {
  const length = message.body.length;
  const extended = message.timestamp >>> 0 >= EXTENDED;
  const chunks = Math.max(1, Math.ceil(length / chunkSize));
  const basic = basicHeaderSize(message.chunkStream);
  return basic + 11 + (chunks - 1) * basic + chunks * (extended ? 4 : 0) + length;
};

/**
 * A message's chunks written into `out` from `at`, which has room for `messageLength` bytes; where they end.
 * Every byte of them is written: `out` needs no zeroing first.
 */
export const encodeMessageInto = (
  chunkSize: number,
  message: RtmpMessage,
  out: Uint8Array,
  at: number,
): number => {
  const { chunkStream, body } = message;
  const timestamp = message.timestamp >>> 0;
  const extended = timestamp >= EXTENDED;
  let end = putFirstHeader(out, at, message, timestamp, extended);
  for (let offset = 0; offset < body.length; offset += chunkSize) {
    if (offset > 0) {
      end = putBasicHeader(out, end, 3, chunkStream);
      if (extended) {
        putU32(out, end, timestamp);
        end += 4;
      }
    }
    const stop = Math.min(body.length, offset + chunkSize);
    out.set(body.subarray(offset, stop), end);
    end += stop - offset;
  }
  return end;
};

/** The chunks of one message, in one buffer ready for the socket (a small one from Buffer's pool). */
export const encodeMessage = (chunkSize: number, message: RtmpMessage): Uint8Array => {
  const out = Buffer.allocUnsafe(messageLength(chunkSize, message));
  encodeMessageInto(chunkSize, message, out, 0);
  return out;
};

/** A protocol control or user control message body of 4-byte big-endian values. */
export const u32Body = (...values: ReadonlyArray<number>): Uint8Array => {
  const body = new Uint8Array(values.length * 4);
  for (const [i, value] of values.entries()) putU32(body, i * 4, value >>> 0);
  return body;
};

/** A protocol control message (chunk stream 2, message stream 0). */
export const controlMessage = (type: number, body: Uint8Array): RtmpMessage => ({
  chunkStream: 2,
  type,
  streamId: 0,
  timestamp: 0,
  body,
});

/** A user control event: its 16-bit type, then its 32-bit values. */
export const userControl = (event: number, ...values: ReadonlyArray<number>): RtmpMessage => {
  const body = new Uint8Array(2 + values.length * 4);
  body[1] = event;
  for (const [i, value] of values.entries()) putU32(body, 2 + i * 4, value >>> 0);
  return controlMessage(MESSAGE.userControl, body);
};

export const readU32 = (bytes: Uint8Array, at: number): number =>
  (((bytes[at] ?? 0) << 24) |
    ((bytes[at + 1] ?? 0) << 16) |
    ((bytes[at + 2] ?? 0) << 8) |
    (bytes[at + 3] ?? 0)) >>>
  0;

/** What a chunk stream remembers of its previous message, for the compressed header formats. */
interface StreamState {
  timestamp: number;
  delta: number;
  length: number;
  type: number;
  streamId: number;
  extended: boolean;
  body: Uint8Array | null;
  filled: number;
}

class RtmpProtocolError extends Error {}

/**
 * Reads the peer's chunks back into messages, honouring its Set Chunk Size. Bytes may come in any pieces;
 * what does not yet make a whole chunk waits for the next push.
 */
export class ChunkReader {
  /** The peer's chunk size: 128 until it says otherwise. */
  chunkSize = 128;
  /**
   * The largest message and the most chunk streams taken from the peer (a server reading a stranger sets them:
   * a header may announce 16 MiB on each of 65,599 chunk streams); past them the peer is not speaking RTMP.
   */
  maxMessage = 0xffffff;
  maxStreams = 65_599;
  private pending: Uint8Array = new Uint8Array(0);
  private readonly streams = new Map<number, StreamState>();

  push(bytes: Uint8Array, onMessage: (message: RtmpMessage) => void): void {
    const data = this.pending.length === 0 ? bytes : concat(this.pending, bytes);
    let at = 0;
    while (at < data.length) {
      const used = this.chunk(data, at, onMessage);
      if (used === 0) break;
      at += used;
    }
    this.pending = at >= data.length ? new Uint8Array(0) : data.slice(at);
  }

  /** Reads one chunk at `at`; 0 when it is not whole yet. */
  private chunk(data: Uint8Array, start: number, onMessage: (message: RtmpMessage) => void): number {
    let at = start;
    const first = data[at] ?? 0;
    const format = first >> 6;
    let chunkStream = first & 0x3f;
    at++;
    if (chunkStream === 0) {
      if (at + 1 > data.length) return 0;
      chunkStream = 64 + (data[at] ?? 0);
      at++;
    } else if (chunkStream === 1) {
      if (at + 2 > data.length) return 0;
      chunkStream = 64 + (data[at] ?? 0) + (data[at + 1] ?? 0) * 256;
      at += 2;
    }
    const headerSize = [11, 7, 3, 0][format] ?? 0;
    if (at + headerSize > data.length) return 0;
    const previous = this.streams.get(chunkStream);
    if (format !== 0 && previous === undefined) {
      throw new RtmpProtocolError(`chunk stream ${chunkStream} began with a format ${format} header`);
    }
    if (previous === undefined && this.streams.size >= this.maxStreams) {
      throw new RtmpProtocolError(`more than ${this.maxStreams} chunk streams`);
    }
    const state: StreamState = previous ?? {
      timestamp: 0,
      delta: 0,
      length: 0,
      type: 0,
      streamId: 0,
      extended: false,
      body: null,
      filled: 0,
    };
    let field = 0;
    if (format <= 2) field = ((data[at] ?? 0) << 16) | ((data[at + 1] ?? 0) << 8) | (data[at + 2] ?? 0);
    if (format <= 1) {
      state.length = ((data[at + 3] ?? 0) << 16) | ((data[at + 4] ?? 0) << 8) | (data[at + 5] ?? 0);
      state.type = data[at + 6] ?? 0;
    }
    if (format === 0) {
      state.streamId =
        ((data[at + 7] ?? 0) |
          ((data[at + 8] ?? 0) << 8) |
          ((data[at + 9] ?? 0) << 16) |
          ((data[at + 10] ?? 0) << 24)) >>>
        0;
    }
    at += headerSize;
    const extended = format <= 2 ? field === EXTENDED : state.extended;
    let value = field;
    if (extended) {
      if (at + 4 > data.length) return 0;
      value = readU32(data, at);
      at += 4;
    }
    const starting = state.body === null;
    const size = Math.min(this.chunkSize, state.length - (starting ? 0 : state.filled));
    if (at + size > data.length) return 0;
    // Only now that the chunk is whole does it change the stream's state.
    state.extended = extended;
    if (format === 0) {
      state.timestamp = value;
      state.delta = 0;
    } else if (format <= 2) {
      state.delta = value;
      if (starting) state.timestamp = (state.timestamp + value) >>> 0;
    } else if (starting) {
      state.timestamp = (state.timestamp + state.delta) >>> 0;
    }
    if (starting) {
      if (state.length > this.maxMessage)
        throw new RtmpProtocolError(`a message of ${state.length} bytes, over ${this.maxMessage}`);
      state.body = new Uint8Array(state.length);
      state.filled = 0;
    }
    const body = state.body as Uint8Array;
    body.set(data.subarray(at, at + size), state.filled);
    state.filled += size;
    this.streams.set(chunkStream, state);
    if (state.filled >= state.length) {
      state.body = null;
      const message = {
        chunkStream,
        type: state.type,
        streamId: state.streamId,
        timestamp: state.timestamp,
        body,
      };
      if (message.type === MESSAGE.setChunkSize)
        this.chunkSize = Math.max(1, readU32(body, 0) & MAX_CHUNK_SIZE);
      onMessage(message);
    }
    return at + size - start;
  }
}

const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};
