import type { PacketCore } from "../../src/core/packet-core.ts";
import type { CoreEvent } from "../../src/core/packet-core-events.ts";

export const drain = (core: PacketCore): CoreEvent[] => {
  const events: CoreEvent[] = [];
  core.drainEvents((event) => events.push(event));
  return events;
};

export const ofType = <T extends CoreEvent["type"]>(
  events: ReadonlyArray<CoreEvent>,
  type: T,
): Array<Extract<CoreEvent, { type: T }>> =>
  events.filter((event): event is Extract<CoreEvent, { type: T }> => event.type === type);

export const joinPackets = (packets: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(packets.length * 188);
  packets.forEach((packet, i) => {
    out.set(packet, i * 188);
  });
  return out;
};

export const pidOf = (core: PacketCore, pid: number) =>
  core.snapshot().pids.find((entry) => entry.pid === pid);
