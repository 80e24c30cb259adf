/**
 * The channel configuration as the API accepts it and the store keeps it. Field names follow the original
 * MediaLive Distributor API (`rtp_ip`, `backup_rtp_port`, outputs `{name, protocol, url}`) so its scripts and its
 * `channels.json` keep working. Every output URL passes `parseOutputUrl` here, at the edge: nothing stored or
 * started can carry a URL the writers would not accept.
 */
import { isIP } from "node:net";
import * as Either from "effect/Either";
import * as Schema from "effect/Schema";
import * as Struct from "effect/Struct";
import { ChannelId, NodeId, OutputId } from "../base/ids.ts";
import { intRange, show } from "../base/ints.ts";
import { oneOf } from "../base/literals.ts";
import { ChannelTags } from "../control/access.ts";
import { MediaLiveLink } from "../medialive/medialive.ts";
import { MAX_SCHEDULE_JSON_BYTES, Schedule } from "../schedule/schedule-window.ts";
import { inputUrlError, outputTargetProblem, PROTOCOLS, parseOutputUrl } from "../url/url.ts";
import { OutputPolicy } from "./output-policy-schema.ts";
import { FEC_COLUMN_PORT_OFFSET, FEC_ROW_PORT_OFFSET } from "./redundancy.ts";
import { RedundancyConfigSchema } from "./redundancy-schema.ts";
import { SlateBody, SlateConfig } from "./slate.ts";
import { AllowedSources } from "./sources-schema.ts";

export { intRange };

export const Port = intRange(1, 65535);

/** The longest name of a channel or an output, and the longest output URL, in characters. */
const MAX_NAME_LENGTH = 100;
const MAX_URL_LENGTH = 2048;

// C0, DEL and C1: nothing a person types into a name, and all of them confuse logs and terminals.
const controlCharacters = /\p{Cc}/u;

export const Name = Schema.String.annotations({
  message: (issue) => `must be a string, got ${show(issue.actual)}`,
}).pipe(
  Schema.filter((name) => {
    if (name.trim() === "") return "must not be empty";
    if (name.length > MAX_NAME_LENGTH)
      return `must be at most ${MAX_NAME_LENGTH} characters, got ${name.length}`;
    if (controlCharacters.test(name)) return "must not contain control characters";
    return undefined;
  }),
);

const isBroadcast = (ip: string) => ip === "255.255.255.255";

/** Where an input listens: an IPv4 or IPv6 unicast or multicast address; the wildcard listens everywhere. */
const InputAddress = Schema.String.annotations({
  message: (issue) => `must be an IP address as a string, got ${show(issue.actual)}`,
}).pipe(
  Schema.filter((ip) =>
    isIP(ip) === 0
      ? `must be an IPv4 or IPv6 address (unicast, multicast or 0.0.0.0), got ${show(ip)}`
      : isBroadcast(ip)
        ? "must not be the broadcast address"
        : undefined,
  ),
);

export { PROTOCOLS };
export const Protocol = oneOf(...PROTOCOLS);
export type Protocol = typeof Protocol.Type;

const OutputUrl = Schema.String.annotations({
  message: (issue) => `must be a URL string, got ${show(issue.actual)}`,
}).pipe(Schema.maxLength(MAX_URL_LENGTH, { message: () => `must be at most ${MAX_URL_LENGTH} characters` }));

/**
 * An SRT input (`srt://:port?mode=listener` waits, `srt://host:port` calls) or a RIST one (`rist://@:port`,
 * `rist://host:port`); a masked URL (****) is checked where the stored one is known.
 */
const InputUrl = OutputUrl.pipe(
  Schema.filter((url) => {
    if (url.includes("****")) return undefined;
    return inputUrlError(url);
  }),
).annotations({
  description: "SRT, RIST or RTMP(S) input in place of RTP/UDP on rtp_ip:rtp_port; masked",
});

/** The URL is valid for its protocol; the issue sits on `url` so the caller sees which field to fix. */
const outputUrlProblem = (output: {
  readonly protocol?: Protocol | undefined;
  readonly url?: string | undefined;
}) => {
  if (output.url === undefined) return undefined;
  const parsed = parseOutputUrl(output.url);
  if (Either.isLeft(parsed)) return { path: ["url"], message: parsed.left.message };
  const problem = outputTargetProblem(parsed.right);
  if (problem !== undefined) return { path: ["url"], message: problem };
  // The original API took RTMP over TLS as protocol "rtmp" with an rtmps:// URL; the URL decides the transport.
  const rtmpsUnderRtmp = output.protocol === "rtmp" && parsed.right.protocol === "rtmps";
  if (output.protocol !== undefined && parsed.right.protocol !== output.protocol && !rtmpsUnderRtmp) {
    return {
      path: ["url"],
      message: `protocol is '${output.protocol}' but the URL scheme is '${parsed.right.protocol}'; they must match`,
    };
  }
  return undefined;
};

/** An RTMP output carries FLV (no PIDs or programmes): of a policy only `scte35` applies (before cues become AMF). */
const policyProblem = (output: {
  readonly protocol?: Protocol | undefined;
  readonly policy?: OutputPolicy | null | undefined;
}) => {
  const policy = output.policy;
  if (policy == null || output.protocol !== "rtmp") return undefined;
  const tsOnly = (["pids", "remap", "program"] as const).find((field) => policy[field] !== undefined);
  return tsOnly === undefined
    ? undefined
    : {
        path: ["policy", tsOnly],
        message:
          "applies to TS outputs (UDP, RTP, SRT, HLS, RTSP, files); an RTMP output carries FLV, with no PIDs or programmes: of a policy it takes scte35 alone",
      };
};

const outputProblem = (output: {
  readonly protocol?: Protocol | undefined;
  readonly url?: string | undefined;
  readonly policy?: OutputPolicy | null | undefined;
}) => outputUrlProblem(output) ?? policyProblem(output);

/** An output's policy: absent or null, every packet untouched. */
const Policy = Schema.optional(Schema.NullOr(OutputPolicy));

const strict = { parseOptions: { onExcessProperty: "error" } } as const;

/**
 * Backup-input handling as the channel supervisor takes it (domain/channel/redundancy.ts): every field optional, the
 * defaults filled when the channel runs. Stored as given, so a later change of a default reaches it.
 */
export const Redundancy = RedundancyConfigSchema.annotations({ identifier: "Redundancy", ...strict });
export type Redundancy = typeof Redundancy.Type;

export const OutputConfig = Schema.Struct({
  id: OutputId,
  name: Name,
  protocol: Protocol,
  url: OutputUrl,
  enabled: Schema.Boolean,
  policy: Policy,
}).pipe(Schema.filter(outputProblem), Schema.annotations({ identifier: "OutputConfig", ...strict }));
export type OutputConfig = typeof OutputConfig.Type;

const DesiredState = Schema.Literal("running", "stopped");

/** Outputs one channel may have, however they are added. */
export const MAX_OUTPUTS = 64;

/** Channels one import may name. */
const MAX_IMPORT_CHANNELS = 1000;

/**
 * The most JSON one output can take within the schema: a 2048-character URL, a 100-character name of 4-byte
 * UTF-8 characters, a 64-character id, 256 bytes for field names, quotes, protocol, flag and spacing, and
 * 4 KiB for a policy (its lists are bounded: domain/channel/output-policy.ts).
 */
const MAX_OUTPUT_JSON_BYTES = MAX_URL_LENGTH + MAX_NAME_LENGTH * 4 + 64 + 256 + 4096;

/** The most JSON one channel with `MAX_OUTPUTS` outputs and a full schedule can take, 4 KiB for the rest. */
export const MAX_CHANNEL_JSON_BYTES = 4096 + MAX_OUTPUTS * MAX_OUTPUT_JSON_BYTES + MAX_SCHEDULE_JSON_BYTES;

/**
 * On a channel that should carry SCTE-35: the longest expected time between two cues, in seconds. The
 * metrics export it, so an alert can say that ads stopped arriving; absent or null when cues are not expected.
 */
const ExpectCuesWithin = Schema.NullOr(intRange(10, 86_400)).annotations({
  description: "seconds: alert when no SCTE-35 cue came for this long; null when the channel carries no cues",
});

/**
 * In a fleet: the nodes this channel's input reaches, in order of preference (a MediaLive channel's pipeline 0
 * → the first, pipeline 1 → the second). Each listed node receives the input; one of them, the lease holder,
 * runs the outputs. Absent or empty: every node of the fleet. One box ignores it.
 */
const ChannelNodes = Schema.Array(NodeId)
  .pipe(
    Schema.maxItems(8),
    Schema.filter((nodes) => new Set(nodes).size === nodes.length || "must not name a node twice"),
  )
  .annotations({
    description: "fleet nodes that receive this channel's input, in order of preference; empty: every node",
  });

/** A channel's own fields as its body (POST, PUT, import) gives them. */
const channelFields = {
  name: Name,
  tags: Schema.optional(ChannelTags),
  rtp_ip: InputAddress,
  rtp_port: Port,
  backup_rtp_ip: Schema.optional(Schema.NullOr(InputAddress)),
  backup_rtp_port: Schema.optional(Schema.NullOr(Port)),
  rtp_allowed_sources: Schema.optional(Schema.NullOr(AllowedSources)),
  backup_rtp_allowed_sources: Schema.optional(Schema.NullOr(AllowedSources)),
  input_url: Schema.optional(Schema.NullOr(InputUrl)),
  backup_input_url: Schema.optional(Schema.NullOr(InputUrl)),
  redundancy: Schema.optional(Redundancy),
  expect_cues_within_s: Schema.optional(ExpectCuesWithin),
  nodes: Schema.optional(ChannelNodes),
  medialive: Schema.optional(Schema.NullOr(MediaLiveLink)),
  slate: Schema.optional(SlateBody),
  schedule: Schema.optional(Schema.NullOr(Schedule)),
};

/**
 * A channel as stored: what its body gives (`channelFields`), with what the service fills in when the body leaves it
 * out (the backup socket, `redundancy`, the slate as stored), its id, desired state, creation time and outputs.
 */
export const ChannelConfig = Schema.Struct({
  id: ChannelId,
  ...channelFields,
  backup_rtp_ip: Schema.NullOr(InputAddress),
  backup_rtp_port: Schema.NullOr(Port),
  redundancy: Redundancy,
  slate: Schema.optional(Schema.NullOr(SlateConfig)),
  desired: DesiredState,
  created_at: Schema.String,
  outputs: Schema.Array(OutputConfig),
}).annotations({ identifier: "ChannelConfig", ...strict });
export type ChannelConfig = typeof ChannelConfig.Type;

/** The store's document and the export format. */
export const ConfigDocument = Schema.Struct({
  version: Schema.Literal(1),
  channels: Schema.Array(ChannelConfig),
}).annotations({ identifier: "ConfigDocument" });
export type ConfigDocument = typeof ConfigDocument.Type;

export const emptyConfig: ConfigDocument = { version: 1, channels: [] };

const OptionalName = Schema.String.annotations({
  message: (issue) => `must be a string, got ${show(issue.actual)}`,
}).pipe(
  Schema.filter((name) =>
    name.trim() === "" ? undefined : name.length > 100 ? `must be at most 100 characters` : undefined,
  ),
  Schema.filter((name) => (controlCharacters.test(name) ? "must not contain control characters" : undefined)),
);

/**
 * The original API's bodies (a channel, an output, an import) are read as it read them: an unknown field is
 * ignored and named in the answer's `warnings`, and "" in an optional field means absent (`decodeLenient`).
 * Our own additions (PATCH bodies, `redundancy`) stay strict: a typo there is refused, not ignored.
 */
const lenientDescription =
  "Unknown fields are ignored and listed in the answer's warnings; an empty string in an optional field counts as absent.";

/** POST and PUT of an output. `name` may be left out or blank: one is generated. */
export const OutputBody = Schema.Struct({
  id: Schema.optional(OutputId),
  name: Schema.optional(OptionalName),
  protocol: Protocol,
  url: OutputUrl,
  enabled: Schema.optional(Schema.Boolean),
  policy: Policy,
}).pipe(
  Schema.filter(outputProblem),
  Schema.annotations({
    identifier: "OutputBody",
    description: lenientDescription,
    // A refinement's JSON Schema keeps only what this annotation gives.
    jsonSchema: { description: lenientDescription },
  }),
);
export type OutputBody = typeof OutputBody.Type;

export const OutputPatch = Schema.Struct({
  name: Schema.optional(Name),
  protocol: Schema.optional(Protocol),
  url: Schema.optional(OutputUrl),
  enabled: Schema.optional(Schema.Boolean),
  policy: Policy,
}).annotations({ identifier: "OutputPatch", ...strict });
export type OutputPatch = typeof OutputPatch.Type;

export const ChannelBody = Schema.Struct({
  ...channelFields,
  id: Schema.optional(ChannelId),
  outputs: Schema.optional(Schema.Array(OutputBody).pipe(Schema.maxItems(MAX_OUTPUTS))),
}).annotations({ identifier: "ChannelBody", description: lenientDescription });
export type ChannelBody = typeof ChannelBody.Type;

/** A channel's fields as a POST gives them, each optional: what is given replaces what is stored. */
export const ChannelPatch = Schema.Struct({
  ...channelFields,
  name: Schema.optional(Name),
  rtp_ip: Schema.optional(InputAddress),
  rtp_port: Schema.optional(Port),
}).annotations({ identifier: "ChannelPatch", ...strict });
export type ChannelPatch = typeof ChannelPatch.Type;

export const SwitchInputBody = Schema.Struct({
  active: oneOf("primary", "backup"),
}).annotations({ identifier: "SwitchInputBody", ...strict });

/** Where a channel moves: another forwarding worker of this node, or (in a fleet) another node; one of them. */
export const MoveChannelBody = Schema.Struct({
  worker: Schema.optional(
    Schema.Int.pipe(Schema.nonNegative()).annotations({
      description: "the forwarding worker thread to run the channel on (0 to DISTRIBUTARY_WORKERS − 1)",
    }),
  ),
  node: Schema.optional(
    NodeId.annotations({
      description: "in a fleet: the node that takes the channel's lease (one that receives its input)",
    }),
  ),
}).pipe(
  Schema.filter((move) =>
    (move.worker === undefined) === (move.node === undefined)
      ? 'give exactly one of worker (a forwarding thread of this node) and node (another node of the fleet), e.g. {"node": "b"}'
      : undefined,
  ),
  Schema.annotations({ identifier: "MoveChannelBody", ...strict }),
);

/** One channel in an import of our own export format. */
export const ChannelImport = Schema.Struct({
  ...ChannelBody.fields,
  // An export carries the whole slate: its picture and whether an operator put the channel on it.
  slate: Schema.optional(Schema.NullOr(SlateConfig)),
  desired: Schema.optional(DesiredState),
  created_at: Schema.optional(Schema.String),
}).annotations({ identifier: "ChannelImport", description: lenientDescription });
export type ChannelImport = typeof ChannelImport.Type;

export const ConfigImport = Schema.Struct({
  version: Schema.Literal(1),
  /** merge (default): keep channels the document does not name; replace: delete them. */
  mode: Schema.optional(oneOf("merge", "replace")),
  /** Answer what would change, and change nothing. */
  dry_run: Schema.optional(Schema.Boolean),
  channels: Schema.Array(ChannelImport).pipe(Schema.maxItems(MAX_IMPORT_CHANNELS)),
}).annotations({ identifier: "ConfigImport", description: lenientDescription });
export type ConfigImport = typeof ConfigImport.Type;

/** One output in the original project's `channels.json`. */
export const OriginalOutput = Schema.Struct({
  id: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  protocol: Protocol,
  url: OutputUrl,
}).pipe(Schema.filter(outputUrlProblem), Schema.annotations({ identifier: "OriginalOutput" }));
export type OriginalOutput = typeof OriginalOutput.Type;

/** The original API knew a channel's name and its two inputs; everything else is ours. */
const ORIGINAL_FIELDS = ["name", "rtp_ip", "rtp_port", "backup_rtp_ip", "backup_rtp_port"] as const;
const originalChannelFields = Struct.pick(channelFields, ...ORIGINAL_FIELDS);

/** One channel of the original `channels.json`, outputs left out: they are taken or not one by one. */
export const OriginalChannel = Schema.Struct({
  config: Schema.Struct(originalChannelFields),
  created_at: Schema.optional(Schema.String),
}).annotations({ identifier: "OriginalChannel" });
export type OriginalChannel = typeof OriginalChannel.Type;

/**
 * The original project's `channels.json`: `{"<uuid>": {"config": {...}, "created_at": "..."}}`. Read channel by
 * channel and output by output: what cannot be taken is reported with its reason, the rest is imported. Its
 * files hold fields we have no use for (runtime leftovers): they are ignored and named in the warnings.
 */
export const OriginalConfigFile = Schema.Record({
  key: Schema.String,
  value: Schema.Struct({
    config: Schema.Struct({
      ...originalChannelFields,
      outputs: Schema.optional(Schema.Array(OriginalOutput)),
    }),
    created_at: Schema.optional(Schema.String),
  }),
}).annotations({ identifier: "OriginalConfigFile", description: lenientDescription });
export type OriginalConfigFile = typeof OriginalConfigFile.Type;

/** A UDP socket a channel binds: its inputs, and with FEC the column (port+2) and row (port+4) streams. */
export interface InputSocket {
  readonly ip: string;
  readonly port: number;
  readonly what: string;
}

/** `ip:port`, an IPv6 address in brackets, as people write a socket. */
export const describeSocket = (socket: InputSocket): string =>
  `${socket.ip.includes(":") ? `[${socket.ip}]` : socket.ip}:${socket.port}`;

export const inputSockets = (channel: {
  readonly rtp_ip: string;
  readonly rtp_port: number;
  readonly backup_rtp_ip: string | null;
  readonly backup_rtp_port: number | null;
  readonly redundancy: Redundancy;
}): ReadonlyArray<InputSocket> => {
  const hasBackup = channel.backup_rtp_ip !== null && channel.backup_rtp_port !== null;
  const fec = channel.redundancy.fec ?? false;
  const fecOn = (role: "primary" | "backup") =>
    typeof fec === "boolean" ? fec && (role === "primary" || hasBackup) : fec[role];
  const sockets = (role: "primary" | "backup", ip: string, port: number): ReadonlyArray<InputSocket> => [
    { ip, port, what: `${role} input` },
    ...(fecOn(role)
      ? [
          { ip, port: port + FEC_COLUMN_PORT_OFFSET, what: `${role} FEC column stream` },
          { ip, port: port + FEC_ROW_PORT_OFFSET, what: `${role} FEC row stream` },
        ]
      : []),
  ];
  return [
    ...sockets("primary", channel.rtp_ip, channel.rtp_port),
    ...(channel.backup_rtp_ip === null || channel.backup_rtp_port === null
      ? []
      : sockets("backup", channel.backup_rtp_ip, channel.backup_rtp_port)),
  ];
};

/**
 * One spelling per address: IPv6 compressed and lower case (`0:0:0:0:0:0:0:0` is `::`), and an IPv4 address
 * written as IPv6 (`::ffff:127.0.0.1`) as the IPv4 address it is.
 */
export const normalizeAddress = (ip: string): string => {
  if (isIP(ip) !== 6) return ip;
  const hostname = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(hostname);
  if (mapped === null) return hostname;
  const [high, low] = [Number.parseInt(mapped[1] ?? "0", 16), Number.parseInt(mapped[2] ?? "0", 16)];
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
};

/**
 * Two sockets collide on the same port when their addresses are the same once normalised, or one listens on
 * every address of the other's family: `0.0.0.0` takes every IPv4 address; `::` every address, IPv4 included
 * (dual stack, as Node binds it).
 */
export const socketsCollide = (a: InputSocket, b: InputSocket): boolean => {
  if (a.port !== b.port) return false;
  const [x, y] = [normalizeAddress(a.ip), normalizeAddress(b.ip)];
  if (x === y || x === "::" || y === "::") return true;
  const v4 = (ip: string) => isIP(ip) === 4;
  return (x === "0.0.0.0" && v4(y)) || (y === "0.0.0.0" && v4(x));
};
