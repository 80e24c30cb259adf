/** An RTMP input as the API shows it: its listener, the publisher sending now, and the publishers refused. */
import * as Schema from "effect/Schema";

export const RtmpInputView = Schema.Struct({
  listen: Schema.String.annotations({
    description: "the listener: rtmp(s)://address:port (shared by every channel on the port)",
  }),
  app: Schema.String.annotations({ description: "the application a publisher connects to" }),
  publisher: Schema.NullOr(Schema.String).annotations({
    description: "the publisher sending now (address:port); null while none is",
  }),
  publishes: Schema.Number.annotations({ description: "publishers accepted since the input started" }),
  refusals: Schema.Struct({
    wrong_key: Schema.Number.annotations({
      description: "publishers refused at publish for a stream key no channel on the application takes",
    }),
    busy: Schema.Number.annotations({ description: "second publishers to this channel's key, refused" }),
  }),
  last_refusal: Schema.NullOr(
    Schema.Struct({
      reason: Schema.Literal("wrong_key", "busy"),
      publisher: Schema.String,
      message: Schema.String,
      at: Schema.String,
    }),
  ).annotations({
    description: "the latest refusal, in the words the publisher was sent (NetStream.Publish.BadName)",
  }),
  dropped_tags: Schema.Number.annotations({
    description:
      "FLV tags that could not be carried as TS (another codec, a frame before its sequence header)",
  }),
  drop_reason: Schema.NullOr(Schema.String),
  cues: Schema.Number.annotations({ description: "AMF cue messages turned back into SCTE-35 sections" }),
}).annotations({ identifier: "RtmpInput" });
export type RtmpInputView = typeof RtmpInputView.Type;
