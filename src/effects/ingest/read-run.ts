/**
 * The host's side of a UDP input's whole read (the vector path): the core checks every datagram of a
 * recvmmsg(2) read where it landed, in one call, and stops only at a sender it was not told to trust; the
 * input path (input-binding.ts `runOf`) hands a read here only while no datagram needs a place in a sequence.
 */
import type { RemoteInfo } from "node:dgram";
import { CoreStatus, type PacketCore } from "../../core/packet-core.ts";
import type { CoreEvent } from "../../core/packet-core-events.ts";
import type { ChannelId } from "../../domain/base/ids.ts";
import { isOwnPort } from "../runtime/sockets/own-ports.ts";
import type { InputsHealth } from "./input-health.ts";
import type { InputRuntime } from "./input-types.ts";
import type { Selector } from "./selector.ts";
import { fromThisHost } from "./sender-filter.ts";

/** What a read's run reaches: made once when the input path starts, never per read. */
export interface RunPath {
  readonly channel: ChannelId;
  readonly onDatagram: ((channelId: string) => void) | undefined;
  readonly selector: Selector;
  readonly health: InputsHealth;
  readonly forwardRun: ((core: PacketCore) => void) | undefined;
  readonly onCoreEvent: (event: CoreEvent) => void;
}

const ignoreEvent = () => {};

/**
 * A whole read of a UDP input, checked by its core where recvmmsg(2) wrote it (one call for all of its
 * datagrams, PacketCore `pushMany`): the core stops at a sender it was not told to trust, and the host
 * decides about that sender as `receive` does for one datagram. What the core accepted reaches the
 * outputs as one run. Not with FEC or merge (each datagram has its place in a sequence there), nor while the
 * channel's outputs take datagrams one by one: then the reader hands each to `receive`.
 */
export const takeRun = (
  path: RunPath,
  input: InputRuntime,
  count: number,
  senderAt: (slot: number) => RemoteInfo | null,
) => {
  const { selector, health, onCoreEvent } = path;
  const core = input.core;
  path.onDatagram?.(path.channel);
  // The port the trusted sender had may since be one of the service's own outputs' (a port used again):
  // the core then asks about every sender again, so the loop rule holds.
  const trusted = input.trusted;
  if (trusted !== null && isOwnPort(trusted.port) && fromThisHost(trusted.address)) {
    input.trusted = null;
    core.distrustSender();
  }
  const at = performance.now();
  let slot = core.pushMany(0, count, at);
  while (slot < count) {
    const sender = senderAt(slot);
    if (sender === null) core.rejectSlot(slot, CoreStatus.SenderNotAllowed);
    else if (isOwnPort(sender.port) && fromThisHost(sender.address))
      core.rejectSlot(slot, CoreStatus.OwnOutput);
    else if (input.accepts !== null && !input.accepts(sender.address))
      core.rejectSlot(slot, CoreStatus.SenderNotAllowed);
    else {
      input.sender = sender;
      input.trusted = sender;
      core.trustSender(slot);
      slot = core.pushMany(slot, count, at);
      continue;
    }
    slot = core.pushMany(slot + 1, count, at);
  }
  const accepted = core.runAccepted > 0;
  if (accepted) {
    selector.arrival(input.role, at);
    const watch = health.feeds[input.role];
    if (watch !== null) core.runPayloads(watch);
  }
  const forwarding = selector.active() === input.role;
  if (accepted && forwarding) path.forwardRun?.(core);
  core.drainEvents(forwarding ? onCoreEvent : ignoreEvent);
};
