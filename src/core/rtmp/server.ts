/**
 * The server's side of one RTMP publisher's connection (Adobe's RTMP specification, sections 5 and 7): the plain
 * handshake (S0 S1 S2 for C0 C1, C2 read and dropped), the publisher's chunk streams read back into messages
 * (chunks.ts), and the commands an encoder sends before and while it publishes: `connect`, `releaseStream`,
 * `FCPublish`, `createStream`, `publish`, `FCUnpublish`, `deleteStream`, `closeStream`. What is accepted is
 * not decided here: `connect` asks `hooks.connect(app)` and `publish` asks `hooks.publish(app, name)`, and a
 * refusal is told to the publisher as RTMP says it (`_error` NetConnection.Connect.Rejected, or an `onStatus`
 * with level "error" and the code given) before the connection is closed.
 *
 *   const session = new RtmpServerSession(hooks); socket.on("data", (bytes) => session.push(bytes))
 *
 * Media messages (audio 8, video 9, data 18) on the published stream go to `hooks.media`. S1 carries zero
 * version bytes, so clients that know the digest handshake (ffmpeg, librtmp) fall back to the plain one.
 * Plain state and arithmetic, no I/O: the socket side is src/effects/ingest/rtmp-receiver.ts.
 */
import { type Amf0Value, decodeAmf0, encodeAmf0 } from "../flv/amf0.ts";
import {
  ChunkReader,
  controlMessage,
  encodeMessage,
  MESSAGE,
  type RtmpMessage,
  USER_CONTROL,
  u32Body,
  userControl,
} from "./chunks.ts";
import { HANDSHAKE_SIZE, PeerUpkeep } from "./peer.ts";

const CHUNK_SIZE = 4096;
const WINDOW = 5_000_000;
/** AMF3 command and data messages: one format byte, then AMF0 as every encoder we meet writes it. */
const AMF3_COMMAND = 17;
const AMF3_DATA = 15;
const STREAM_ID = 1;
/** Commands are small; a publisher's frames may be large (a 4K keyframe), never more than this. */
const BEFORE_PUBLISH_MAX = 64 * 1024;
const PUBLISHING_MAX = 8 * 1024 * 1024;
const MAX_CHUNK_STREAMS = 32;

/** Why a publish is refused: the onStatus code and the words the publisher sees. */
export interface PublishRefusal {
  readonly code: string;
  readonly description: string;
}

export interface RtmpServerHooks {
  /** Bytes for the publisher, in order. */
  readonly write: (bytes: Uint8Array) => void;
  /** The connection is to be closed (after a refusal, or what is not RTMP). */
  readonly close: (why: string) => void;
  /** The application the publisher connects to: null to accept it, or why it is refused. */
  readonly connect: (app: string) => string | null;
  /** The stream name `publish` gives (key and query as sent): null to accept it, or the refusal. */
  readonly publish: (app: string, name: string) => PublishRefusal | null;
  /** An audio, video or data message of the published stream. */
  readonly media: (message: RtmpMessage) => void;
  /** The publisher stopped publishing (FCUnpublish, deleteStream, closeStream). */
  readonly unpublish: () => void;
}

type Stage = "c0c1" | "c2" | "chunks" | "closed";

const commandValues = (message: RtmpMessage): ReadonlyArray<Amf0Value> | null => {
  const body = message.type === AMF3_COMMAND ? message.body.subarray(1) : message.body;
  const decoded = decodeAmf0(body);
  return decoded._tag === "Left" ? null : decoded.right;
};

export class RtmpServerSession {
  private stage: Stage = "c0c1";
  private pending: Uint8Array = new Uint8Array(0);
  private readonly reader = Object.assign(new ChunkReader(), {
    maxMessage: BEFORE_PUBLISH_MAX,
    maxStreams: MAX_CHUNK_STREAMS,
  });
  private app = "";
  private publishing = false;
  private readonly peer = new PeerUpkeep(2_500_000);
  private readonly hooks: RtmpServerHooks;

  constructor(hooks: RtmpServerHooks) {
    this.hooks = hooks;
  }

  /** Whether a publish was accepted and has not ended. */
  get isPublishing(): boolean {
    return this.publishing;
  }

  push(bytes: Uint8Array) {
    if (this.stage === "closed") return;
    this.peer.read(bytes.length);
    let data = bytes;
    if (this.stage !== "chunks") {
      data = this.pending.length === 0 ? bytes : concat(this.pending, bytes);
      if (this.stage === "c0c1") {
        if (data.length < 1 + HANDSHAKE_SIZE) {
          this.pending = data.slice();
          return;
        }
        if (data[0] !== 3) return this.end(`the client asked for RTMP version ${data[0]}, not 3`);
        const s0s1s2 = new Uint8Array(1 + 2 * HANDSHAKE_SIZE);
        s0s1s2[0] = 3;
        // S1: time 0, four zero bytes (no digest), random bytes.
        crypto.getRandomValues(s0s1s2.subarray(9, 1 + HANDSHAKE_SIZE));
        s0s1s2.set(data.subarray(1, 1 + HANDSHAKE_SIZE), 1 + HANDSHAKE_SIZE);
        this.hooks.write(s0s1s2);
        this.stage = "c2";
        data = data.subarray(1 + HANDSHAKE_SIZE);
      }
      if (this.stage === "c2") {
        if (data.length < HANDSHAKE_SIZE) {
          this.pending = data.slice();
          return;
        }
        this.stage = "chunks";
        this.pending = new Uint8Array(0);
        data = data.subarray(HANDSHAKE_SIZE);
        this.send(controlMessage(MESSAGE.setChunkSize, u32Body(CHUNK_SIZE)));
      }
    }
    if (data.length === 0) return;
    try {
      this.reader.push(data, (message) => this.message(message));
    } catch (error) {
      this.end(`what the client sent is not RTMP: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    const acknowledgement = this.stage === "chunks" ? this.peer.acknowledgement() : null;
    if (acknowledgement !== null) this.send(acknowledgement);
  }

  /** The connection is gone (the socket closed): a publish still running ends. */
  closed() {
    this.stage = "closed";
    this.stopPublishing();
  }

  private send(message: RtmpMessage) {
    if (this.stage !== "closed") this.hooks.write(encodeMessage(CHUNK_SIZE, message));
  }

  private end(why: string) {
    if (this.stage === "closed") return;
    this.stopPublishing();
    this.stage = "closed";
    this.hooks.close(why);
  }

  private stopPublishing() {
    if (!this.publishing) return;
    this.publishing = false;
    this.hooks.unpublish();
  }

  private command(streamId: number, ...values: ReadonlyArray<Amf0Value>) {
    this.send({
      chunkStream: streamId === 0 ? 3 : 5,
      type: MESSAGE.command,
      streamId,
      timestamp: 0,
      body: encodeAmf0(...values),
    });
  }

  private status(streamId: number, level: "status" | "error", code: string, description: string) {
    this.command(streamId, "onStatus", 0, null, { level, code, description });
  }

  private message(message: RtmpMessage) {
    if (this.stage === "closed" || this.peer.take(message, (reply) => this.send(reply))) return;
    switch (message.type) {
      case MESSAGE.audio:
      case MESSAGE.video:
      case MESSAGE.data:
        if (this.publishing) this.hooks.media(message);
        return;
      case AMF3_DATA:
        if (this.publishing)
          this.hooks.media({ ...message, type: MESSAGE.data, body: message.body.subarray(1) });
        return;
      case MESSAGE.command:
      case AMF3_COMMAND: {
        const values = commandValues(message);
        if (values !== null) this.onCommand(message.streamId, values);
        return;
      }
    }
  }

  private onCommand(streamId: number, values: ReadonlyArray<Amf0Value>) {
    const [name, transaction] = values;
    const txn = typeof transaction === "number" ? transaction : 0;
    switch (name) {
      case "connect": {
        const object = values[2];
        const app =
          typeof object === "object" && object !== null && !Array.isArray(object)
            ? String((object as Record<string, Amf0Value>).app ?? "")
            : "";
        this.app = app.replace(/^\/+|\/+$/g, "");
        const refused = this.hooks.connect(this.app);
        if (refused !== null) {
          this.command(0, "_error", txn, null, {
            level: "error",
            code: "NetConnection.Connect.Rejected",
            description: refused,
          });
          return this.end(refused);
        }
        this.send(controlMessage(MESSAGE.windowAckSize, u32Body(WINDOW)));
        this.send(controlMessage(MESSAGE.setPeerBandwidth, Uint8Array.of(0, 0x4c, 0x4b, 0x40, 2)));
        this.command(
          0,
          "_result",
          txn,
          { fmsVer: "FMS/3,0,1,123", capabilities: 31 },
          {
            level: "status",
            code: "NetConnection.Connect.Success",
            description: "Connection succeeded.",
            objectEncoding: 0,
          },
        );
        return;
      }
      case "releaseStream":
      case "FCPublish":
        if (txn > 0) this.command(0, "_result", txn, null);
        return;
      case "createStream":
        this.command(0, "_result", txn, null, STREAM_ID);
        return;
      case "publish": {
        const stream = streamId === 0 ? STREAM_ID : streamId;
        const given = values[3];
        const streamName = typeof given === "string" ? given : "";
        if (this.publishing) {
          this.status(stream, "error", "NetStream.Publish.BadName", "this connection publishes already");
          return;
        }
        const refusal = this.hooks.publish(this.app, streamName);
        if (refusal !== null) {
          this.status(stream, "error", refusal.code, refusal.description);
          return this.end(refusal.description);
        }
        this.publishing = true;
        this.reader.maxMessage = PUBLISHING_MAX;
        this.send(userControl(USER_CONTROL.streamBegin, stream));
        this.status(stream, "status", "NetStream.Publish.Start", "publishing");
        return;
      }
      case "FCUnpublish":
      case "deleteStream":
      case "closeStream":
        this.stopPublishing();
        return;
    }
  }
}

const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};
