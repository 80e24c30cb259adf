/**
 * The events of the event bus: everything worth knowing that happens to a channel, its inputs and outputs,
 * and every change made through the API (the audit trail, with the name of the token that made it). Logs, the
 * WebSocket, the pages' event log and the metrics counters all read these; `GET /api/events` returns the
 * recent ones. Messages are for people and hold no secret (URLs are masked before they get here).
 */
import * as Schema from "effect/Schema";
import { HANDOVER_KINDS, HANDOVER_MODES } from "../channel/handover.ts";
import { SLATE_REASONS } from "../channel/slate.ts";
import { OutputState } from "../channel/states.ts";
import { SCHEDULE_PHASES } from "../schedule/schedule-phases.ts";

const InputRoleField = Schema.Literal("primary", "backup");

/** What every event carries; `seq` grows by one per event, so a reader can tell order and gaps. */
const common = {
  seq: Schema.Number,
  /** ISO 8601, wall clock. */
  at: Schema.String,
  channel: Schema.NullOr(Schema.String),
  output: Schema.NullOr(Schema.String),
  /** The channel's and the output's names when the event happened, for people; the ids are for queries. */
  channel_name: Schema.NullOr(Schema.String),
  output_name: Schema.NullOr(Schema.String),
} as const;

export const ChannelEvent = Schema.Union(
  Schema.Struct({ ...common, type: Schema.Literal("channel_started") }),
  Schema.Struct({ ...common, type: Schema.Literal("channel_stopped") }),
  Schema.Struct({ ...common, type: Schema.Literal("channel_failed"), message: Schema.String }),
  Schema.Struct({
    ...common,
    /** The channel failed again and again: it is started again after `delay_ms`, not at once. */
    type: Schema.Literal("channel_backing_off"),
    /** Failures in a row, each within a minute of the one before. */
    failures: Schema.Number,
    delay_ms: Schema.Number,
    /** The latest failure's reason. */
    message: Schema.String,
  }),
  Schema.Struct({ ...common, type: Schema.Literal("input_lost") }),
  Schema.Struct({ ...common, type: Schema.Literal("input_restored"), input: InputRoleField }),
  Schema.Struct({
    ...common,
    /** The channel's outputs carry its slate: every input was silent for the slate's time, or an operator said so. */
    type: Schema.Literal("slate_on"),
    reason: Schema.Literal(...SLATE_REASONS),
  }),
  Schema.Struct({
    ...common,
    /** The outputs carry the input again, from a random access point; `seconds` on the slate. */
    type: Schema.Literal("slate_off"),
    seconds: Schema.Number,
  }),
  Schema.Struct({
    ...common,
    type: Schema.Literal("input_switched"),
    from: InputRoleField,
    to: InputRoleField,
    reason: Schema.Literal("silence", "rule", "operator", "primary_restored"),
    /** For reason rule: the health rules that held on the input left, as the expression names them. */
    rule: Schema.optional(Schema.String),
  }),
  Schema.Struct({
    ...common,
    /**
     * The channel did not leave `from` (silent, or unhealthy by its rules) for `to`, which flows but is
     * unhealthy by its own rules (`rule`, as the expression names them): once per such stretch.
     */
    type: Schema.Literal("input_switch_held"),
    from: InputRoleField,
    to: InputRoleField,
    reason: Schema.Literal("silence", "rule"),
    rule: Schema.String,
  }),
  Schema.Struct({
    ...common,
    type: Schema.Literal("output_state"),
    state: OutputState,
    error: Schema.NullOr(Schema.String),
  }),
  Schema.Struct({
    ...common,
    type: Schema.Literal("output_reconnect"),
    /** Reconnects of this output so far, this one included. */
    reconnects: Schema.Number,
    error: Schema.String,
    delay_ms: Schema.Number,
  }),
  Schema.Struct({
    ...common,
    type: Schema.Literal("output_queue_drops"),
    /** TS packets dropped since the previous such event of this output. */
    packets: Schema.Number,
  }),
  Schema.Struct({
    ...common,
    /**
     * An RTMP output's remux left out what it could not frame (corrupt video or audio, bad parameter sets, NAL
     * units with their forbidden bit set), or frames after a dropped keyframe until the next one; the output
     * stays connected. At most one such event per
     * output every REMUX_DROPS_EVENT_MS.
     */
    type: Schema.Literal("remux_frames_dropped"),
    /** Frames dropped since the previous such event of this output. */
    frames: Schema.Number,
    /** The same, by reason (only reasons that dropped a frame). */
    reasons: Schema.Record({ key: Schema.String, value: Schema.Number }),
    /** What was wrong with the latest frame dropped, in words. */
    detail: Schema.NullOr(Schema.String),
  }),
  Schema.Struct({
    ...common,
    /**
     * A RIST input's srpfile turned callers away (EAP-SRP): a name it does not hold, or a password its verifier
     * refused. At most one such event per input every RIST_AUTH_EVENT_MS; no password or verifier in it.
     */
    type: Schema.Literal("rist_auth_failed"),
    input: InputRoleField,
    /** Refusals since the previous such event of this input. */
    refusals: Schema.Number,
    /** The name the last caller refused gave, printable and at most 64 characters (it comes from the network). */
    user: Schema.NullOr(Schema.String),
    reason: Schema.Literal("unknown_user", "wrong_password"),
    message: Schema.String,
  }),
  Schema.Struct({
    ...common,
    /**
     * An RTMP input refused a publisher at `publish`: a stream key no channel on the application takes, or a
     * second publisher to a key that has one. No key in it: the publisher's address and the reason.
     */
    type: Schema.Literal("rtmp_publish_refused"),
    input: InputRoleField,
    /** The publisher's address:port. */
    publisher: Schema.String,
    reason: Schema.Literal("wrong_key", "busy"),
    message: Schema.String,
  }),
  Schema.Struct({
    ...common,
    /**
     * An SRT listener shared by stream id refused a caller before its handshake completed: an input's or an
     * output's (`channel`, and `input` or `output`), or, for a stream id no channel on the port has, the node's
     * (`channel` null). At most one such event per listener route and reason every REFUSAL_EVENT_MS. No
     * passphrase in it; the stream id masked.
     */
    type: Schema.Literal("srt_caller_refused"),
    input: Schema.NullOr(InputRoleField),
    /** The caller's address:port. */
    caller: Schema.String,
    stream_id: Schema.String,
    port: Schema.Number,
    reason: Schema.Literal("unknown_stream_id", "bad_stream_id", "wrong_mode", "busy", "wrong_passphrase"),
    /** SRT's reject reason: 1400 and above from the listener's callback (SRT_REJX_*), libsrt's own below. */
    code: Schema.Number,
    code_name: Schema.String,
    /** Refusals of this route and reason since the previous such event. */
    refusals: Schema.Number,
    message: Schema.String,
  }),
  Schema.Struct({
    ...common,
    type: Schema.Literal("scte35_cue"),
    pid: Schema.Number,
    command: Schema.String,
    summary: Schema.String,
    event_id: Schema.NullOr(Schema.Number),
    segmentation_type: Schema.NullOr(Schema.Number),
    section_base64: Schema.String,
    /** An operator's cue (POST /api/channels/{id}/cues), and the token's name; absent: the input's. */
    origin: Schema.optional(Schema.Literal("input", "operator")),
    by: Schema.optional(Schema.String),
    /** The outputs whose policy kept the cue from them, and the rule. */
    withheld: Schema.optional(
      Schema.Array(Schema.Struct({ output: Schema.String, name: Schema.String, rule: Schema.String })),
    ),
  }),
  Schema.Struct({
    ...common,
    /**
     * An upgrade on one box (`distributary upgrade`, SIGUSR2): the process that ran the channels (`from`) handed
     * them, the HTTP socket and its inputs' sockets to a new one (`to`), or kept them and says why (`reason`).
     */
    type: Schema.Literal("upgrade"),
    outcome: Schema.Literal("done", "failed"),
    from: Schema.Struct({ pid: Schema.Number, version: Schema.String }),
    to: Schema.NullOr(Schema.Struct({ pid: Schema.Number, version: Schema.String })),
    /** The channels handed over, each with the TS packets its inputs had brought the old process at the cut. */
    channels: Schema.Array(Schema.Struct({ channel: Schema.String, packets_at_cut: Schema.Number })),
    duration_ms: Schema.Number,
    reason: Schema.NullOr(Schema.String),
  }),
  Schema.Struct({
    ...common,
    /**
     * The channel went from one holder (`from`: a process, a node, a forwarding thread) to another (`to`) and
     * stayed on air: `packets_at_cut` TS packets the old holder had sent when it cut, and the TS packets the
     * outputs lost or carried twice for it (0 and 0 is the promise). `mode`: how the cut was made
     * (domain/channel/handover.ts).
     */
    type: Schema.Literal("handover"),
    kind: Schema.Literal(...HANDOVER_KINDS),
    mode: Schema.Literal(...HANDOVER_MODES),
    from: Schema.String,
    to: Schema.String,
    packets_at_cut: Schema.Number,
    duration_ms: Schema.Number,
    lost: Schema.Number,
    repeated: Schema.Number,
  }),
  Schema.Struct({
    ...common,
    /** A forwarding thread died and was started again with the channels it carried. */
    type: Schema.Literal("worker_restarted"),
    worker: Schema.Number,
    channels: Schema.Array(Schema.String),
    reason: Schema.String,
  }),
  Schema.Struct({
    ...common,
    /** A start or stop of the linked MediaLive channel, asked by someone or something, and how it went. */
    type: Schema.Literal("medialive_action"),
    action: Schema.Literal("start", "stop"),
    /**
     * operator (API or page), channel_start (start_with_channel), cost_guard (idle too long) or schedule (a
     * scheduled window's warming or ending).
     */
    by: Schema.Literal("operator", "channel_start", "cost_guard", "schedule"),
    ok: Schema.Boolean,
    /** What happened, or why it failed, in words. */
    message: Schema.String,
  }),
  Schema.Struct({
    ...common,
    /** The linked MediaLive channel's state changed (IDLE, STARTING, RUNNING, …), as DescribeChannel says. */
    type: Schema.Literal("medialive_state"),
    state: Schema.String,
    previous: Schema.NullOr(Schema.String),
  }),
  Schema.Struct({
    ...common,
    /** An occurrence of the channel's schedule moved to another phase, by its clock or by an operator. */
    type: Schema.Literal("schedule_phase"),
    /** The window's id, and the occurrence's start (T0, ISO 8601): together they name the occurrence. */
    window: Schema.String,
    occurrence: Schema.String,
    phase: Schema.Literal(...SCHEDULE_PHASES),
    previous: Schema.Literal(...SCHEDULE_PHASES),
    /** schedule (its times), operator (go-live, extend, end, skip) or takeover (a node joined its phase). */
    by: Schema.Literal("schedule", "operator", "takeover"),
    message: Schema.String,
  }),
  Schema.Struct({
    ...common,
    /** An occurrence whose window passed (or began) while no node could run it: what it should have done. */
    type: Schema.Literal("schedule_missed"),
    window: Schema.String,
    occurrence: Schema.String,
    message: Schema.String,
  }),
  Schema.Struct({
    ...common,
    /** A fleet node stopped renewing its lease: its channels go to others. `channel` is null. */
    type: Schema.Literal("node_down"),
    node: Schema.String,
    message: Schema.String,
  }),
  Schema.Struct({
    ...common,
    /** A node that was down renews its lease again (a restart or a healed partition). */
    type: Schema.Literal("node_up"),
    node: Schema.String,
    message: Schema.String,
  }),
  Schema.Struct({
    ...common,
    type: Schema.Literal("api_change"),
    /** The token's name, or the signed-in person's. */
    actor: Schema.String,
    /** How the actor proved who it is: token, session, jwt or peer; absent for the service itself. */
    actor_via: Schema.optional(Schema.Literal("token", "session", "jwt", "peer")),
    /** For a person of the identity provider: their subject (`sub`) and the provider (`iss`). */
    actor_subject: Schema.optional(Schema.String),
    actor_issuer: Schema.optional(Schema.String),
    /** e.g. "channel.create", "output.remove", "config.import". */
    action: Schema.String,
    detail: Schema.String,
  }),
).annotations({ identifier: "Event" });
export type ChannelEvent = typeof ChannelEvent.Type;
export type ChannelEventType = ChannelEvent["type"];

/** The shortest time between two `remux_frames_dropped` events of one output. */
export const REMUX_DROPS_EVENT_MS = 10_000;

/** The shortest time between two `rist_auth_failed` events of one input: a caller retrying is one line a minute. */
export const RIST_AUTH_EVENT_MS = 60_000;

/** "3 bad_parameter_sets, 12 no_keyframe_yet": the reasons of a `remux_frames_dropped` event. */
export const dropReasonsText = (reasons: Readonly<Record<string, number>>): string =>
  Object.entries(reasons)
    .map(([reason, frames]) => `${frames} ${reason}`)
    .join(", ");

/** An event as its source hands it over: the bus numbers and dates it. */
export type NewEvent = ChannelEvent extends infer E
  ? E extends ChannelEvent
    ? Omit<E, "seq" | "at" | "channel" | "output" | "channel_name" | "output_name"> & {
        readonly channel?: string | null;
        readonly output?: string | null;
        readonly at?: string;
      }
    : never
  : never;

/** An id as people read it beside a name: its first 8 characters, which tell outputs of a channel apart. */
const shortId = (id: string): string => (id.length > 8 ? `${id.slice(0, 8)}…` : id);

const label = (kind: string, id: string | null, name: string | null): string =>
  name === null ? `${kind} ${id}` : `${kind} ${name} (${shortId(id ?? "")})`;

/** "channel News (5e2f0c1a…)", or "channel <id>" when the name is not known. */
export const channelLabel = (event: ChannelEvent): string =>
  label("channel", event.channel, event.channel_name);

/** "output CDN (1a1bb558…)", or "output <id>" when the name is not known. */
export const outputLabel = (event: ChannelEvent): string => label("output", event.output, event.output_name);

/** Every event type, in the union's order: the `type` filter's words and the events page's list. */
export const EVENT_TYPES: ReadonlyArray<ChannelEventType> = ChannelEvent.members.map(
  (member) => member.fields.type.literals[0],
);

export const EventList = Schema.Struct({ events: Schema.Array(ChannelEvent) }).annotations({
  identifier: "EventList",
});
