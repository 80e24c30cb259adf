/**
 * What a new or changed channel must satisfy of its inputs, as pure functions over the stored configuration: its
 * own inputs sound (fleet addresses, backup fields, redundancy, slate timing), none listening where another
 * channel does (SRT inputs sharing a port by stream id aside), no output feeding an input of this host (loops.ts),
 * and an id no other channel has. The commands (effects/control/) call these under the write lock.
 */
import * as Either from "effect/Either";
import { ControlError, type FieldIssue } from "../base/errors.ts";
import { invalid } from "../base/validate.ts";
import { channelFor, type Sight, seesEveryChannel } from "../control/access.ts";
import { listenerRoute, maskStreamId } from "../url/srt.ts";
import { parseOutputUrl } from "../url/url.ts";
import {
  type ChannelConfig,
  describeSocket,
  type InputSocket,
  inputSockets,
  socketsCollide,
} from "./channel.ts";
import { feedbackLoop, isLoopback, isMulticastGroup } from "./loops.ts";
import { type InputEndpoint, resolveRedundancy } from "./redundancy.ts";
import { ssmSourcesProblem } from "./sources.ts";

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
  for (const [field, ip, sources, url] of [
    ["rtp_allowed_sources", channel.rtp_ip, channel.rtp_allowed_sources, channel.input_url],
    [
      "backup_rtp_allowed_sources",
      channel.backup_rtp_ip,
      channel.backup_rtp_allowed_sources,
      channel.backup_input_url,
    ],
  ] as const) {
    const problem = ip === null || url != null ? null : ssmSourcesProblem(ip, sources);
    if (problem !== null) return [{ field, message: problem }];
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
