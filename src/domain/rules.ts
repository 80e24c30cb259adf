/**
 * The control plane's rules as pure functions over the stored configuration: what a new or changed channel
 * must satisfy, how a request body becomes the stored channel or output, and what changed between two
 * versions. The commands (effects/control/) take the lock, call these, persist, then apply at runtime. The
 * rules against outputs that feed an input of this host are in loops.ts.
 */
import * as Either from "effect/Either";
import { channelFor, type Sight, seesEveryChannel } from "./access.ts";
import {
  type ChannelBody,
  type ChannelConfig,
  type ChannelImport,
  type ChannelPatch,
  describeSocket,
  type InputSocket,
  inputSockets,
  type OriginalChannel,
  type OriginalOutput,
  type OutputBody,
  type OutputConfig,
  socketsCollide,
} from "./channel.ts";
import { ControlError, type FieldIssue } from "./errors.ts";
import { type ChannelId, newChannelId, newOutputId, OutputId } from "./ids.ts";
import { feedbackLoop, isLoopback, isMulticastGroup } from "./loops.ts";
import type { OutputPolicy } from "./output-policy-schema.ts";
import { type InputEndpoint, resolveRedundancy } from "./redundancy.ts";
import { type SlateBody, type SlateConfig, slateFromBody } from "./slate.ts";
import { listenerRoute, maskStreamId, maskUrl, parseOutputUrl } from "./url.ts";
import { invalid } from "./validate.ts";

// The commands and the import take every rule from here.
export { loopingOutputs, outputLoop } from "./loops.ts";
export { checkChannelSchedule, scheduledOutput } from "./schedule-rules.ts";

/** The endpoints a channel listens on. */
export const channelInputs = (
  channel: ChannelConfig,
): { readonly primary: InputEndpoint; readonly backup: InputEndpoint | null } => ({
  primary: {
    ip: channel.rtp_ip,
    port: channel.rtp_port,
    ...allowed(channel.rtp_allowed_sources),
    ...(channel.input_url == null ? {} : { srt: channel.input_url }),
  },
  backup:
    channel.backup_rtp_ip === null || channel.backup_rtp_port === null
      ? null
      : {
          ip: channel.backup_rtp_ip,
          port: channel.backup_rtp_port,
          ...allowed(channel.backup_rtp_allowed_sources),
          ...(channel.backup_input_url == null ? {} : { srt: channel.backup_input_url }),
        },
});

const allowed = (sources: ReadonlyArray<string> | null | undefined) =>
  sources == null ? {} : { allowedSources: sources };

/** A masked input URL (as GET shows it) sent back means the stored one; any other masked URL is refused. */
const unmaskInput = (
  url: string | null | undefined,
  stored: string | null | undefined,
  field: string,
): Either.Either<string | null, FieldIssue> => {
  if (url == null) return Either.right(null);
  return unmask(url, stored == null ? undefined : { url: stored }, field);
};

/**
 * A channel that several fleet nodes receive binds its inputs on each of them: an address that only one host
 * has (a unicast address other than loopback) cannot be bound on the others, whose standby would never run.
 */
const fleetAddressProblems = (channel: ChannelConfig): ReadonlyArray<FieldIssue> => {
  const nodes = channel.nodes ?? [];
  if (nodes.length < 2) return [];
  const problems: FieldIssue[] = [];
  for (const [field, ip] of [
    ["rtp_ip", channel.rtp_ip],
    ["backup_rtp_ip", channel.backup_rtp_ip],
  ] as const) {
    if (ip === null || ip === "0.0.0.0" || ip === "::" || isMulticastGroup(ip) || isLoopback(ip)) continue;
    problems.push({
      field,
      message:
        `the channel is received on nodes ${nodes.join(", ")}, and each binds ${ip}, an address only one host ` +
        "has: give 0.0.0.0 (or ::) to listen on every address of each node, or a multicast group",
    });
  }
  return problems;
};

/**
 * Merge pairs the copies of one RTP stream by sequence number. A RIST input hands its blocks on with the
 * sender's own sequence numbers, the same on every path of one sender, so two RIST inputs merge; an SRT input
 * has none, and a RIST input beside an RTP one numbers another stream. Null when the inputs can merge.
 */
const mergeInputsProblem = (channel: ChannelConfig): string | null => {
  const rist = [channel.input_url, channel.backup_input_url].map((url) => url != null && /^rist:/i.test(url));
  if (rist[0] === true && rist[1] === true) return null;
  if (channel.input_url == null && channel.backup_input_url == null) return null;
  return "merge pairs two copies of one stream by sequence number: both inputs RTP/UDP, or both RIST (one sender with a peer for each, weight=0); an SRT or RTMP input has no sequence numbers and a RIST input beside an RTP one numbers a stream of its own: use failover";
};

/** Problems inside one channel's own inputs: the caller fixes the request (400). */
const ownInputProblems = (channel: ChannelConfig): ReadonlyArray<FieldIssue> => {
  const fleet = fleetAddressProblems(channel);
  if (fleet.length > 0) return fleet;
  if (channel.backup_input_url != null && channel.backup_rtp_port === null) {
    return [
      {
        field: "backup_rtp_port",
        message: "is required when backup_input_url is given (it names the backup)",
      },
    ];
  }
  if (channel.backup_rtp_ip !== null && channel.backup_rtp_port === null) {
    return [{ field: "backup_rtp_port", message: "is required when backup_rtp_ip is given" }];
  }
  if (channel.backup_rtp_port === null && channel.backup_rtp_allowed_sources != null) {
    return [
      {
        field: "backup_rtp_allowed_sources",
        message: "there is no backup input to allow senders for; add backup_rtp_port or leave this out",
      },
    ];
  }
  const sockets = inputSockets(channel);
  for (const [index, socket] of sockets.entries()) {
    const earlier = sockets.slice(0, index).find((other) => socketsCollide(other, socket));
    if (earlier !== undefined) {
      return [
        {
          field: socket.what.startsWith("backup") ? "backup_rtp_port" : "rtp_port",
          message: `the ${socket.what} on ${describeSocket(socket)} overlaps the ${earlier.what} of the same channel`,
        },
      ];
    }
  }
  const resolved = resolveRedundancy(channel.redundancy, channelInputs(channel));
  if (Either.isLeft(resolved)) return resolved.left;
  const mergeProblem = resolved.right.mode === "merge" ? mergeInputsProblem(channel) : null;
  if (mergeProblem !== null) return [{ field: "redundancy.mode", message: mergeProblem }];
  // The backup gets its chance first: the slate starts no earlier than a failover would.
  const failover = resolved.right.failover_after_ms;
  if (channel.slate != null && channel.slate.after_ms < failover) {
    return [
      {
        field: "slate.after_ms",
        message: `must be at least the channel's failover time (redundancy.failover_after_ms, ${failover} ms), so that a backup input takes over before the slate does; got ${channel.slate.after_ms}`,
      },
    ];
  }
  return [];
};

/**
 * An input's SRT listener on a port shared by stream id (`mode=listener&streamid=…`): its port and the name its
 * caller asks for; null for any other input. Such inputs share their port (and their rtp_port, which only names
 * them) with each other, each with its own stream id.
 */
const srtRouteOf = (
  channel: ChannelConfig,
  role: "primary" | "backup",
): { readonly port: number; readonly name: string } | null => {
  const url = role === "primary" ? channel.input_url : channel.backup_input_url;
  if (url == null || !/^srt:/i.test(url)) return null;
  const parsed = parseOutputUrl(url);
  if (Either.isLeft(parsed) || parsed.right.protocol !== "srt") return null;
  const name = listenerRoute(parsed.right);
  return name === null ? null : { port: parsed.right.port, name };
};

const roleOf = (socket: InputSocket) => (socket.what.startsWith("backup") ? "backup" : "primary");

/** Another channel's SRT input already has this input's stream id on its shared port (409). */
const srtRouteConflict = (
  channel: ChannelConfig,
  others: ReadonlyArray<ChannelConfig>,
  sight: Sight,
): ControlError | undefined => {
  for (const role of ["primary", "backup"] as const) {
    const mine = srtRouteOf(channel, role);
    if (mine === null) continue;
    for (const other of others) {
      if (other.id === channel.id) continue;
      for (const theirRole of ["primary", "backup"] as const) {
        const theirs = srtRouteOf(other, theirRole);
        if (theirs === null || theirs.port !== mine.port || theirs.name !== mine.name) continue;
        const field = role === "primary" ? "input_url" : "backup_input_url";
        const shown = maskStreamId(mine.name).shown;
        const message = sight(other)
          ? `the stream id '${shown}' on SRT port ${mine.port} is already taken by the ${theirRole} input of ${channelFor(sight, other)}; give this channel its own streamid`
          : `the stream id '${shown}' on SRT port ${mine.port} is taken by ${channelFor(sight, other)}; give this channel its own streamid`;
        return new ControlError({
          reason: "conflict",
          message: `${field}: ${message}`,
          errors: [{ field, message }],
        });
      }
    }
  }
  return undefined;
};

/** Another channel already listens where this one would (409); named only when the caller sees it. */
const inputConflict = (
  channel: ChannelConfig,
  others: ReadonlyArray<ChannelConfig>,
  sight: Sight,
): ControlError | undefined => {
  const routed = srtRouteConflict(channel, others, sight);
  if (routed !== undefined) return routed;
  for (const socket of inputSockets(channel)) {
    const mine = srtRouteOf(channel, roleOf(socket));
    for (const other of others) {
      if (other.id === channel.id) continue;
      // Two SRT inputs on one port shared by stream id (checked above) do not collide.
      const taken = inputSockets(other).find(
        (theirs) =>
          socketsCollide(theirs, socket) && !(mine !== null && srtRouteOf(other, roleOf(theirs)) !== null),
      );
      if (taken !== undefined) {
        const field = socket.what.startsWith("backup") ? "backup_rtp_port" : "rtp_port";
        const message = sight(other)
          ? `the ${socket.what} ${describeSocket(socket)} is already used by ${channelFor(sight, other)} as its ${taken.what}`
          : `the ${socket.what} ${describeSocket(socket)} is taken by ${channelFor(sight, other)}; choose another port`;
        return new ControlError({
          reason: "conflict",
          message: `${field}: ${message}`,
          errors: [{ field, message }],
        });
      }
    }
  }
  return undefined;
};

/**
 * A channel's inputs are sound and free among `others`, and neither its outputs nor the others' feed an input
 * of this host (`localAddresses`: every address of this machine's interfaces). Another channel in the way is
 * named only when `sight` (the caller's grants) reaches it.
 */
export const checkChannel = (
  channel: ChannelConfig,
  others: ReadonlyArray<ChannelConfig>,
  localAddresses: ReadonlyArray<string>,
  sight: Sight = seesEveryChannel,
): ControlError | undefined => {
  const problems = ownInputProblems(channel);
  if (problems.length > 0) return invalid(problems);
  return inputConflict(channel, others, sight) ?? feedbackLoop(channel, others, localAddresses, sight);
};

/** A new channel's id that another channel has (409): which one only when the caller sees it. */
export const idTaken = (id: string, holder: ChannelConfig, sight: Sight): ControlError =>
  new ControlError({
    reason: "conflict",
    message: sight(holder)
      ? `id: channel '${id}' already exists`
      : "id: is not available, taken by a channel you cannot see; choose another id",
  });

const duplicateOutputIds = (outputs: ReadonlyArray<{ readonly id: string }>): ControlError | undefined => {
  const seen = new Set<string>();
  for (const [index, output] of outputs.entries()) {
    if (seen.has(output.id)) {
      const message = `output id '${output.id}' is used twice`;
      return new ControlError({
        reason: "conflict",
        message: `outputs[${index}].id: ${message}`,
        errors: [{ field: `outputs[${index}].id`, message }],
      });
    }
    seen.add(output.id);
  }
  return undefined;
};

const generatedName = (taken: ReadonlyArray<{ readonly name: string }>) => {
  const names = new Set(taken.map((output) => output.name));
  let n = taken.length + 1;
  while (names.has(`Output ${n}`)) n += 1;
  return `Output ${n}`;
};

/**
 * A masked URL (`****` where a key or passphrase was) is accepted only where it stands for the URL this server
 * already keeps: sent back unchanged, it means "keep the stored one".
 */
export const unmask = (
  url: string,
  existing: { readonly url: string } | undefined,
  field: string,
): Either.Either<string, FieldIssue> => {
  if (!url.includes("****")) return Either.right(url);
  if (existing !== undefined && maskUrl(existing.url) === url) return Either.right(existing.url);
  return Either.left({
    field,
    message: "is masked (****); give the full URL, or import onto the server it was exported from",
  });
};

/** The stored output a request body describes; `previous` when it replaces one. */
export const buildOutput = (
  body: OutputBody,
  siblings: ReadonlyArray<OutputConfig>,
  previous?: OutputConfig,
): OutputConfig => ({
  id: previous?.id ?? body.id ?? newOutputId(),
  name:
    body.name !== undefined && body.name.trim() !== ""
      ? body.name
      : (previous?.name ?? generatedName(siblings)),
  protocol: body.protocol,
  url: body.url,
  enabled: body.enabled ?? previous?.enabled ?? true,
  ...policyOf(body.policy, previous?.policy),
});

/** The policy a body gives (null: none), else the stored one; none is stored as no field. */
export const policyOf = (
  given: OutputPolicy | null | undefined,
  stored: OutputPolicy | null | undefined,
): { readonly policy?: OutputPolicy } => {
  const policy = given === undefined ? stored : given;
  return policy == null ? {} : { policy };
};

/** The tags field a channel keeps: none is stored as absent, as a channel from before tags is. */
const tagsOf = (tags: ReadonlyArray<string> | undefined) =>
  tags === undefined || tags.length === 0 ? {} : { tags };

/** The stored channel a request body (or an imported channel) describes. */
export const buildChannel = (
  body: ChannelBody,
  base: { readonly desired: "running" | "stopped"; readonly created_at: string },
  existing?: ChannelConfig,
): Either.Either<ChannelConfig, ControlError> => {
  const outputs: OutputConfig[] = [];
  const issues: FieldIssue[] = [];
  for (const [index, outputBody] of (body.outputs ?? []).entries()) {
    const previous = existing?.outputs.find((output) => output.id === outputBody.id);
    const url = unmask(outputBody.url, previous, `outputs[${index}].url`);
    if (Either.isLeft(url)) issues.push(url.left);
    else outputs.push(buildOutput({ ...outputBody, url: url.right }, outputs));
  }
  const inputUrl = unmaskInput(body.input_url, existing?.input_url, "input_url");
  const backupInputUrl = unmaskInput(body.backup_input_url, existing?.backup_input_url, "backup_input_url");
  if (Either.isLeft(inputUrl)) issues.push(inputUrl.left);
  if (Either.isLeft(backupInputUrl)) issues.push(backupInputUrl.left);
  if (issues.length > 0 || Either.isLeft(inputUrl) || Either.isLeft(backupInputUrl))
    return Either.left(invalid(issues));
  const duplicate = duplicateOutputIds(outputs);
  if (duplicate !== undefined) return Either.left(duplicate);
  const backupIp = body.backup_rtp_ip ?? null;
  const backupPort = body.backup_rtp_port ?? null;
  return Either.right({
    id: body.id ?? newChannelId(),
    name: body.name,
    ...tagsOf(body.tags),
    rtp_ip: body.rtp_ip,
    rtp_port: body.rtp_port,
    // A backup port alone means the same address as the primary, as MediaLive's two pipelines often use.
    backup_rtp_ip: backupIp ?? (backupPort === null ? null : body.rtp_ip),
    backup_rtp_port: backupPort,
    ...(body.rtp_allowed_sources == null ? {} : { rtp_allowed_sources: body.rtp_allowed_sources }),
    ...(body.backup_rtp_allowed_sources == null
      ? {}
      : { backup_rtp_allowed_sources: body.backup_rtp_allowed_sources }),
    ...(inputUrl.right === null ? {} : { input_url: inputUrl.right }),
    ...(backupInputUrl.right === null ? {} : { backup_input_url: backupInputUrl.right }),
    redundancy: body.redundancy ?? {},
    ...(body.expect_cues_within_s == null ? {} : { expect_cues_within_s: body.expect_cues_within_s }),
    ...(body.nodes == null || body.nodes.length === 0 ? {} : { nodes: body.nodes }),
    ...(body.medialive == null ? {} : { medialive: body.medialive }),
    ...slateOf(body.slate, existing?.slate),
    ...(body.schedule == null ? {} : { schedule: body.schedule }),
    desired: base.desired,
    created_at: base.created_at,
    outputs,
  });
};

/** A channel with a PATCH applied: given fields replace, the rest stays; null removes an input URL. */
export const patchChannel = (channel: ChannelConfig, changes: ChannelPatch): ChannelConfig => {
  const inputUrl = (given: string | null | undefined, stored: string | null | undefined) =>
    given === undefined ? (stored ?? null) : given?.includes("****") ? (stored ?? null) : given;
  const rtpIp = changes.rtp_ip ?? channel.rtp_ip;
  // Clearing either half of the backup removes it; a backup port alone shares the primary's address.
  const dropBackup = changes.backup_rtp_ip === null || changes.backup_rtp_port === null;
  const backupPort = dropBackup ? null : (changes.backup_rtp_port ?? channel.backup_rtp_port);
  const backupIp = dropBackup
    ? null
    : (changes.backup_rtp_ip ?? channel.backup_rtp_ip ?? (backupPort === null ? null : rtpIp));
  const { tags: _tags, ...untagged } = channel;
  const patched: ChannelConfig = {
    ...untagged,
    name: changes.name ?? channel.name,
    ...tagsOf(changes.tags ?? channel.tags),
    rtp_ip: rtpIp,
    rtp_port: changes.rtp_port ?? channel.rtp_port,
    backup_rtp_ip: backupIp,
    backup_rtp_port: backupPort,
    rtp_allowed_sources:
      changes.rtp_allowed_sources === undefined ? channel.rtp_allowed_sources : changes.rtp_allowed_sources,
    // Removing the backup removes its allow-list.
    backup_rtp_allowed_sources:
      changes.backup_rtp_allowed_sources !== undefined
        ? changes.backup_rtp_allowed_sources
        : backupPort === null
          ? null
          : channel.backup_rtp_allowed_sources,
    input_url: inputUrl(changes.input_url, channel.input_url),
    backup_input_url: inputUrl(changes.backup_input_url, channel.backup_input_url),
    redundancy: { ...channel.redundancy, ...changes.redundancy },
    expect_cues_within_s:
      changes.expect_cues_within_s === undefined
        ? channel.expect_cues_within_s
        : changes.expect_cues_within_s,
    nodes: changes.nodes ?? channel.nodes,
    // null unlinks the MediaLive channel.
    medialive: changes.medialive === undefined ? channel.medialive : changes.medialive,
    // null removes the schedule.
    schedule: changes.schedule === undefined ? channel.schedule : changes.schedule,
  };
  const slate = slateFromBody(changes.slate, channel.slate);
  if (slate === null) {
    const { slate: _removed, ...rest } = patched;
    return rest;
  }
  return { ...patched, slate };
};

/** The slate field a body leads to: absent stays absent, so a channel without one is stored as before. */
const slateOf = (
  body: SlateBody | SlateConfig | null | undefined,
  stored: SlateConfig | null | undefined,
) => {
  const slate = slateFromBody(body, stored);
  return slate === null ? {} : { slate };
};

/** The running channel must apply this change to its inputs or its slate (live: its outputs go on). */
export const inputChanged = (before: ChannelConfig, after: ChannelConfig): boolean => {
  const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  return (
    before.rtp_ip !== after.rtp_ip ||
    before.rtp_port !== after.rtp_port ||
    before.backup_rtp_ip !== after.backup_rtp_ip ||
    before.backup_rtp_port !== after.backup_rtp_port ||
    (before.input_url ?? null) !== (after.input_url ?? null) ||
    (before.backup_input_url ?? null) !== (after.backup_input_url ?? null) ||
    !same(before.rtp_allowed_sources, after.rtp_allowed_sources) ||
    !same(before.backup_rtp_allowed_sources, after.backup_rtp_allowed_sources) ||
    !same(before.redundancy, after.redundancy) ||
    !same(before.slate, after.slate)
  );
};

/** The channel with `output` added, or put in place of the one with its id. */
export const withOutput = (channel: ChannelConfig, output: OutputConfig): ChannelConfig => {
  const exists = channel.outputs.some((candidate) => candidate.id === output.id);
  return {
    ...channel,
    outputs: exists
      ? channel.outputs.map((candidate) => (candidate.id === output.id ? output : candidate))
      : [...channel.outputs, output],
  };
};

/** One channel of the original project's `channels.json` in our import format: its key is the channel id. */
export const fromOriginal = (
  id: ChannelId,
  entry: OriginalChannel,
  outputs: ReadonlyArray<OriginalOutput>,
): ChannelImport => ({
  id,
  name: entry.config.name,
  rtp_ip: entry.config.rtp_ip,
  rtp_port: entry.config.rtp_port,
  backup_rtp_ip: entry.config.backup_rtp_ip ?? null,
  backup_rtp_port: entry.config.backup_rtp_port ?? null,
  outputs: outputs.map((output) => ({
    ...(output.id === undefined ? {} : { id: OutputId.make(output.id) }),
    name: output.name ?? "",
    protocol: output.protocol,
    url: output.url,
  })),
  ...(entry.created_at === undefined ? {} : { created_at: entry.created_at }),
});

/** The same error with every field name under `prefix`, e.g. `channels[2].`. */
export const prefixed = (error: ControlError, prefix: string): ControlError =>
  new ControlError({
    reason: error.reason,
    message:
      error.errors === undefined
        ? error.message
        : error.errors.map((i) => `${prefix}${i.field}: ${i.message}`).join("; "),
    errors: error.errors?.map((issue) => ({ field: `${prefix}${issue.field}`, message: issue.message })),
  });
