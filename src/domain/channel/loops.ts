/**
 * The rules against loops: a UDP or RTP output sent to an input of this host would feed the stream back into
 * the service, which forwards it again, multiplying it until the channel stops. A channel is checked both
 * ways: its outputs against every input here, and its inputs against every other channel's outputs.
 */
import { isIP } from "node:net";
import * as Either from "effect/Either";
import type { ControlError } from "../base/errors.ts";
import { invalid } from "../base/validate.ts";
import { channelFor, type Sight, seesEveryChannel } from "../control/access.ts";
import { maskUrl, parseOutputUrl } from "../url/url.ts";
import {
  type ChannelConfig,
  describeSocket,
  type InputSocket,
  inputSockets,
  normalizeAddress,
  type OutputConfig,
} from "./channel.ts";

/** Where a UDP or RTP output sends; null for the other protocols, which cannot reach a UDP input. */
type Destination = { readonly host: string; readonly port: number } | null;
// Every check compares a channel with every other channel's outputs: an import of thousands of outputs parses
// each URL once, not once per channel (a stored output is never mutated, only replaced).
const destinations = new WeakMap<OutputConfig, Destination>();
const datagramDestination = (output: OutputConfig): Destination => {
  const known = destinations.get(output);
  if (known !== undefined) return known;
  const found = parseDestination(output);
  destinations.set(output, found);
  return found;
};
const parseDestination = (output: OutputConfig): Destination => {
  if (output.protocol !== "udp" && output.protocol !== "rtp") return null;
  const target = parseOutputUrl(output.url);
  if (Either.isLeft(target) || (target.right.protocol !== "udp" && target.right.protocol !== "rtp"))
    return null;
  const host = target.right.host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return { host: isIP(host) === 0 ? host : normalizeAddress(host), port: target.right.port };
};
const localSets = new WeakMap<ReadonlyArray<string>, ReadonlySet<string>>();
const localSet = (addresses: ReadonlyArray<string>): ReadonlySet<string> => {
  let set = localSets.get(addresses);
  if (set === undefined) {
    set = new Set(addresses.map(normalizeAddress));
    localSets.set(addresses, set);
  }
  return set;
};

export const isMulticastGroup = (ip: string) =>
  isIP(ip) === 6
    ? ip.startsWith("ff")
    : isIP(ip) === 4 && Number(ip.split(".")[0]) >= 224 && Number(ip.split(".")[0]) <= 239;
export const isLoopback = (host: string) =>
  host === "::1" ||
  (isIP(host) === 4 && host.startsWith("127.")) ||
  host === "localhost" ||
  host.endsWith(".localhost");
const isWildcard = (ip: string) => ip === "0.0.0.0" || ip === "::";

/**
 * Whether datagrams sent to `destination` on this host reach a socket listening on `input`. A multicast input
 * hears its group (the sender's own copy loops back); a unicast one its address, or every local address when
 * it listens on all of them. Sending to 0.0.0.0 (or ::) reaches the loopback address.
 */
const reachesInput = (
  destination: { readonly host: string; readonly port: number },
  input: InputSocket,
  localAddresses: ReadonlySet<string>,
): boolean => {
  if (destination.port !== input.port) return false;
  const listening = normalizeAddress(input.ip);
  if (isMulticastGroup(listening)) return destination.host === listening;
  const local =
    isWildcard(destination.host) || isLoopback(destination.host) || localAddresses.has(destination.host);
  if (!local) return false;
  if (isWildcard(listening)) return listening === "::" || isIP(destination.host) !== 6;
  if (isWildcard(destination.host)) return isLoopback(listening);
  return (
    destination.host === listening ||
    ((destination.host === "localhost" || destination.host.endsWith(".localhost")) && isLoopback(listening))
  );
};

/** The UDP sockets a channel listens on: an SRT input receives through libsrt and is left out. */
const udpInputSockets = (channel: ChannelConfig): ReadonlyArray<InputSocket> =>
  inputSockets(channel).filter((socket) =>
    socket.what.startsWith("backup") ? channel.backup_input_url == null : channel.input_url == null,
  );

/**
 * The first input among `channels` that `output` would feed, described for the person who must change it: a
 * UDP or RTP output sent to an input of this host sends the stream back into the service, which forwards it
 * again, a loop that multiplies it until the channel stops.
 */
export const outputLoop = (
  output: OutputConfig,
  field: string,
  channels: ReadonlyArray<ChannelConfig>,
  localAddresses: ReadonlyArray<string>,
  sight: Sight = seesEveryChannel,
): ControlError | undefined =>
  feedsAnInput(
    output,
    field,
    channels.map((channel) => [channel, udpInputSockets(channel)] as const),
    localSet(localAddresses),
    sight,
  );

/**
 * The channel's outputs that would feed an input among `channels` (the channel itself among them), each with its
 * index and the reason in words; the field is what `field` names for that index.
 */
export const loopingOutputs = (
  channel: ChannelConfig,
  channels: ReadonlyArray<ChannelConfig>,
  localAddresses: ReadonlyArray<string>,
  field: (index: number) => string,
): ReadonlyArray<{ readonly index: number; readonly error: ControlError }> => {
  const local = localSet(localAddresses);
  const listening = channels.map((other) => [other, udpInputSockets(other)] as const);
  return channel.outputs.flatMap((output, index) => {
    const error = feedsAnInput(output, field(index), listening, local);
    return error === undefined ? [] : [{ index, error }];
  });
};

const feedsAnInput = (
  output: OutputConfig,
  field: string,
  listening: ReadonlyArray<readonly [ChannelConfig, ReadonlyArray<InputSocket>]>,
  local: ReadonlySet<string>,
  sight: Sight = seesEveryChannel,
): ControlError | undefined => {
  const destination = datagramDestination(output);
  if (destination === null) return undefined;
  for (const [channel, sockets] of listening) {
    const input = sockets.find((socket) => reachesInput(destination, socket, local));
    if (input === undefined) continue;
    const where = `${output.protocol}://${describeSocket({ ...input, ip: destination.host })}`;
    const whose = sight(channel)
      ? `the ${input.what} of ${channelFor(sight, channel)}`
      : `an input of ${channelFor(sight, channel)}`;
    const message = `${where} is ${whose} on this host: an output sent there would feed the stream back into the service, a loop that multiplies it; send to another port or host`;
    return invalid([{ field, message }]);
  }
  return undefined;
};

/** Whether one of the channel's outputs, or an output of another channel, feeds one of its inputs. */
export const feedbackLoop = (
  channel: ChannelConfig,
  others: ReadonlyArray<ChannelConfig>,
  localAddresses: ReadonlyArray<string>,
  sight: Sight = seesEveryChannel,
): ControlError | undefined => {
  const local = localSet(localAddresses);
  const mine = udpInputSockets(channel);
  // The channel being checked is the caller's own: only the others may be out of its sight.
  const sees: Sight = (other) => other.id === channel.id || sight(other);
  if (channel.outputs.length > 0) {
    const listening = [
      [channel, mine] as const,
      ...others
        .filter((other) => other.id !== channel.id)
        .map((other) => [other, udpInputSockets(other)] as const),
    ];
    for (const [index, output] of channel.outputs.entries()) {
      const problem = feedsAnInput(output, `outputs[${index}].url`, listening, local, sees);
      if (problem !== undefined) return problem;
    }
  }
  for (const other of others) {
    if (other.id === channel.id) continue;
    for (const output of other.outputs) {
      const destination = datagramDestination(output);
      if (destination === null) continue;
      const input = mine.find((socket) => reachesInput(destination, socket, local));
      if (input === undefined) continue;
      const field = input.what.startsWith("backup") ? "backup_rtp_port" : "rtp_port";
      const message = sight(other)
        ? `the ${input.what} ${describeSocket(input)} is where output '${output.name}' of ${channelFor(sight, other)} sends (${maskUrl(output.url)}): listening there would feed that output back into the service, a loop that multiplies the stream; choose another port`
        : `the ${input.what} ${describeSocket(input)} is where an output of ${channelFor(sight, other)} sends: listening there would feed that output back into the service, a loop that multiplies the stream; choose another port`;
      return invalid([{ field, message }]);
    }
  }
  return undefined;
};
