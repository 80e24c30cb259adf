/**
 * The link from one of our channels to the AWS MediaLive channel that feeds it: what the API takes
 * (`medialive` on a channel), what it shows, and the pure checks of what DescribeChannel answers — whether
 * MediaLive's UDP/RTP destinations point at this channel's inputs and pass SCTE-35 through, and which senders
 * the inputs trust when the link says to take MediaLive's egress endpoints as their allow-list.
 */
import { isIP } from "node:net";
import * as Schema from "effect/Schema";
import type { InputEndpoint } from "../channel/redundancy.ts";
import { parseSourceBlock } from "../channel/sources.ts";

const show = (value: unknown): string => JSON.stringify(value) ?? String(value);

/** MediaLive's channel ids are digits on AWS ("1234567"); stand-ins use other letters and digits. */
const MediaLiveChannelId = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9]{1,64}$/, {
    message: (issue) => `must be MediaLive's channel id, such as "1234567", got ${show(issue.actual)}`,
  }),
);

const Region = Schema.String.pipe(
  Schema.pattern(/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/, {
    message: (issue) => `must be an AWS region such as "eu-west-1", got ${show(issue.actual)}`,
  }),
);

/** The linger before the cost guard stops an idle channel; running resources bill at least 10 minutes. */
export const IDLE_MINUTES_DEFAULT = 15;
const IDLE_MINUTES_MIN = 10;
const IDLE_MINUTES_MAX = 1440;

const IdleMinutes = Schema.Number.pipe(
  Schema.int(),
  Schema.between(IDLE_MINUTES_MIN, IDLE_MINUTES_MAX),
).annotations({
  message: (issue) =>
    `must be a whole number of minutes from ${IDLE_MINUTES_MIN} to ${IDLE_MINUTES_MAX} (MediaLive bills at least 10 minutes, so a shorter wait saves nothing), got ${show(issue.actual)}`,
});

export const MediaLiveLink = Schema.Struct({
  channel_id: MediaLiveChannelId,
  region: Region,
  start_with_channel: Schema.optional(Schema.Boolean).annotations({
    description: "start the MediaLive channel when this channel starts (default false)",
  }),
  stop_when_idle: Schema.optional(Schema.Boolean).annotations({
    description:
      "cost guard: stop the MediaLive channel once no output of this channel has been enabled and sending for idle_minutes (default false)",
  }),
  idle_minutes: Schema.optional(IdleMinutes).annotations({
    description: `the cost guard's wait, in minutes (default ${IDLE_MINUTES_DEFAULT})`,
  }),
  egress_allowlist: Schema.optional(Schema.Boolean).annotations({
    description:
      "take the MediaLive channel's egress endpoints as the inputs' allowed senders, beside any listed ones (default false)",
  }),
}).annotations({
  identifier: "MediaLiveLink",
  description:
    "the AWS MediaLive channel that feeds this one; credentials come from the AWS SDK's standard chain, never from here",
  parseOptions: { onExcessProperty: "error" },
});
export type MediaLiveLink = typeof MediaLiveLink.Type;

/** The cost guard's wait in milliseconds, or null when the guard is off. */
export const guardLingerMs = (link: MediaLiveLink | null | undefined): number | null =>
  link?.stop_when_idle === true ? (link.idle_minutes ?? IDLE_MINUTES_DEFAULT) * 60_000 : null;

/** Where the AWS console shows the channel: the link the channel page gives. */
export const consoleUrl = (link: MediaLiveLink): string =>
  `https://${link.region}.console.aws.amazon.com/medialive/home?region=${link.region}#/channels/${encodeURIComponent(link.channel_id)}`;

/** One destination of a UDP/RTP output of the MediaLive channel, checked against our inputs. */
const MediaLiveDestinationView = Schema.Struct({
  output: Schema.String.annotations({ description: "the MediaLive output's name" }),
  pipeline: Schema.Number.annotations({ description: "0 feeds our primary input, 1 our backup" }),
  url: Schema.String,
  matches: Schema.Boolean.annotations({ description: "it points at the input of this pipeline" }),
});
type MediaLiveDestinationView = typeof MediaLiveDestinationView.Type;

export const MediaLiveView = Schema.Struct({
  channel_id: Schema.String,
  region: Schema.String,
  console_url: Schema.String,
  start_with_channel: Schema.Boolean,
  stop_when_idle: Schema.Boolean,
  idle_minutes: Schema.Number,
  egress_allowlist: Schema.Boolean,
  state: Schema.NullOr(Schema.String).annotations({
    description:
      "as MediaLive says: IDLE, STARTING, RUNNING, RECOVERING, STOPPING, …; null until it first answered",
  }),
  pipelines_running: Schema.NullOr(Schema.Number),
  running_since: Schema.NullOr(Schema.String).annotations({
    description: "ISO 8601: when this service first saw it running (or started it)",
  }),
  running_s: Schema.NullOr(Schema.Number).annotations({ description: "seconds since running_since" }),
  destinations: Schema.Array(MediaLiveDestinationView),
  scte35_passthrough: Schema.NullOr(Schema.Boolean).annotations({
    description: "whether every UDP/RTP output passes SCTE-35 through; null when there is none",
  }),
  warnings: Schema.Array(Schema.String).annotations({ description: "what does not fit, in words" }),
  egress_endpoints: Schema.Array(Schema.String).annotations({
    description: "the addresses MediaLive sends from",
  }),
  checked_at: Schema.NullOr(Schema.String).annotations({ description: "ISO 8601: the last answer" }),
  error: Schema.NullOr(Schema.String).annotations({ description: "why the last question failed, in words" }),
  pending_stop: Schema.NullOr(
    Schema.Struct({
      at: Schema.String.annotations({ description: "ISO 8601: when the cost guard stops the channel" }),
      held: Schema.Boolean.annotations({
        description: "an operator kept it running until an output sends again",
      }),
    }),
  ),
}).annotations({ identifier: "MediaLive" });
export type MediaLiveView = typeof MediaLiveView.Type;

/** What we read of DescribeChannel: the SDK's shapes, only the fields the checks use. */
export interface DescribedChannel {
  readonly State?: string | undefined;
  readonly PipelinesRunningCount?: number | undefined;
  readonly EgressEndpoints?: ReadonlyArray<{ readonly SourceIp?: string | undefined }> | undefined;
  readonly Destinations?:
    | ReadonlyArray<{
        readonly Id?: string | undefined;
        readonly Settings?: ReadonlyArray<{ readonly Url?: string | undefined }> | undefined;
      }>
    | undefined;
  readonly EncoderSettings?:
    | {
        readonly OutputGroups?:
          | ReadonlyArray<{
              readonly OutputGroupSettings?: { readonly UdpGroupSettings?: unknown } | undefined;
              readonly Outputs?:
                | ReadonlyArray<{
                    readonly OutputName?: string | undefined;
                    readonly OutputSettings?:
                      | {
                          readonly UdpOutputSettings?:
                            | {
                                readonly Destination?: { readonly DestinationRefId?: string | undefined };
                                readonly ContainerSettings?: {
                                  readonly M2tsSettings?: { readonly Scte35Control?: string | undefined };
                                };
                              }
                            | undefined;
                        }
                      | undefined;
                  }>
                | undefined;
            }>
          | undefined;
      }
    | undefined;
}

/** Our channel's inputs as the destination check needs them. */
interface InputsToFeed {
  readonly rtp_ip: string;
  readonly rtp_port: number;
  readonly backup_rtp_ip: string | null;
  readonly backup_rtp_port: number | null;
}

const wildcard = (ip: string) => ip === "0.0.0.0" || ip === "::";

/** A destination URL's host and port: rtp://host:port or udp://host:port. */
const hostPort = (url: string): { readonly host: string; readonly port: number } | null => {
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== "rtp:" && parsed.protocol !== "udp:") return null;
    const port = Number(parsed.port);
    if (!Number.isInteger(port) || port < 1) return null;
    return { host: parsed.hostname.replace(/^\[|\]$/g, ""), port };
  } catch {
    return null;
  }
};

/**
 * Whether `url` reaches an input on `ip:port`: the port must be the input's; the host is compared only when
 * the input listens on one address and the URL names an address (a name, or a public address in front of a
 * NAT, cannot be checked from here).
 */
const reaches = (url: string, ip: string, port: number): boolean => {
  const target = hostPort(url);
  if (target === null || target.port !== port) return false;
  return wildcard(ip) || isIP(target.host) === 0 || target.host === ip;
};

/** SCTE-35 controls that pass the cues through (NONE, MediaLive's default, removes them). */
const PASSING = new Set(["PASSTHROUGH", "SCTE_35_WITHOUT_IDR"]);

interface DestinationCheck {
  readonly destinations: ReadonlyArray<MediaLiveDestinationView>;
  readonly scte35Passthrough: boolean | null;
  readonly warnings: ReadonlyArray<string>;
}

/**
 * The MediaLive channel's UDP/RTP outputs against our inputs: pipeline 0 must send to the primary input and
 * pipeline 1 to the backup, and each output must pass SCTE-35 through (MediaLive removes it by default).
 */
export const checkDestinations = (described: DescribedChannel, inputs: InputsToFeed): DestinationCheck => {
  const urls = new Map(
    (described.Destinations ?? []).map((destination) => [
      destination.Id ?? "",
      (destination.Settings ?? []).map((setting) => setting.Url ?? ""),
    ]),
  );
  const targets: ReadonlyArray<{ ip: string; port: number; what: string } | null> = [
    { ip: inputs.rtp_ip, port: inputs.rtp_port, what: "the primary input" },
    inputs.backup_rtp_port === null
      ? null
      : { ip: inputs.backup_rtp_ip ?? inputs.rtp_ip, port: inputs.backup_rtp_port, what: "the backup input" },
  ];
  const destinations: MediaLiveDestinationView[] = [];
  const warnings: string[] = [];
  let outputs = 0;
  let passthrough = true;
  for (const group of described.EncoderSettings?.OutputGroups ?? []) {
    if (group.OutputGroupSettings?.UdpGroupSettings === undefined) continue;
    for (const output of group.Outputs ?? []) {
      const udp = output.OutputSettings?.UdpOutputSettings;
      if (udp === undefined) continue;
      outputs += 1;
      const name = output.OutputName ?? `output ${outputs}`;
      if (!PASSING.has(udp.ContainerSettings?.M2tsSettings?.Scte35Control ?? "NONE")) {
        passthrough = false;
        warnings.push(
          `output '${name}' removes SCTE-35: set its SCTE-35 control to PASSTHROUGH, or no cue reaches this channel`,
        );
      }
      for (const [pipeline, url] of (urls.get(udp.Destination?.DestinationRefId ?? "") ?? []).entries()) {
        const target = targets[pipeline] ?? null;
        const matches = target !== null && reaches(url, target.ip, target.port);
        destinations.push({ output: name, pipeline, url, matches });
        if (matches) continue;
        warnings.push(
          target === null
            ? `output '${name}' pipeline ${pipeline} sends to ${url}, but this channel has ${pipeline === 1 ? "no backup input: add one" : "no input for it"}`
            : `output '${name}' pipeline ${pipeline} sends to ${url}, not to ${target.what} (port ${target.port}${wildcard(target.ip) ? "" : ` on ${target.ip}`})`,
        );
      }
    }
  }
  if (outputs === 0)
    warnings.push(
      "it has no UDP/RTP output: add a UDP output group whose destinations are this channel's inputs",
    );
  return { destinations, scte35Passthrough: outputs === 0 ? null : passthrough, warnings };
};

/** The egress endpoints' addresses that are addresses (anything else is left out rather than trusted). */
export const egressAddresses = (described: DescribedChannel): ReadonlyArray<string> =>
  (described.EgressEndpoints ?? [])
    .map((endpoint) => endpoint.SourceIp ?? "")
    .filter((ip) => typeof parseSourceBlock(ip) !== "string");

/**
 * An input with MediaLive's egress addresses among its allowed senders. With none known yet the input keeps
 * what it was given: an answer from AWS is needed before the list can narrow, and an outage of AWS's API must
 * not take the input off air.
 */
export const trustSenders = (input: InputEndpoint, senders: ReadonlyArray<string>): InputEndpoint =>
  senders.length === 0
    ? input
    : {
        ...input,
        allowedSources: [...new Set([...(input.allowedSources ?? []), ...senders])],
      };

/** MediaLive's channel states, as DescribeChannel gives them: the metric's `state` labels. */
export const MEDIALIVE_STATES = [
  "CREATING",
  "CREATE_FAILED",
  "IDLE",
  "STARTING",
  "RUNNING",
  "RECOVERING",
  "STOPPING",
  "DELETING",
  "DELETED",
  "UPDATING",
  "UPDATE_FAILED",
] as const;

/**
 * Why MediaLive's state does not allow a start or a stop now, in words; null when it does. AWS refuses these
 * too, but its refusal does not say what to wait for.
 */
export const actionForbidden = (action: "start" | "stop", state: string | null): string | null => {
  if (state === null) return null;
  if (action === "start") {
    if (state === "IDLE") return null;
    if (state === "RUNNING" || state === "STARTING" || state === "RECOVERING")
      return `the MediaLive channel is already ${state}`;
    if (state === "STOPPING") return "the MediaLive channel is STOPPING: wait until it is IDLE to start it";
    return `the MediaLive channel is ${state}: only an IDLE channel starts`;
  }
  if (state === "RUNNING" || state === "RECOVERING") return null;
  if (state === "STARTING") return "the MediaLive channel is STARTING: wait until it is RUNNING to stop it";
  if (state === "IDLE" || state === "STOPPING") return `the MediaLive channel is already ${state}`;
  return `the MediaLive channel is ${state}: only a RUNNING channel stops`;
};
