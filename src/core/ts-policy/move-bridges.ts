/**
 * An output that moves between policies while the input flows (an untouched output given a policy, a policy
 * changed, one taken away) may start to receive a PID it did not receive a moment ago: a stream a drop list
 * gives back, an SCTE-35 PID a strip no longer holds, audio remapped back to its own PID. The input's counters
 * on that PID went on meanwhile, so the receiver would count the jump as a continuity error. Ahead of the move
 * the output gets, on each such PID, one adaptation-only packet whose discontinuity_indicator flags the jump,
 * its CC that of the PID's last packet (the next one then follows it): the input's packets stay as they came.
 */
import { NULL_PID, PACKET, writeAdaptationOnly } from "../ts/index.ts";

/** What a path makes of an input PID: the PID it goes out on, or null when withheld. */
export type Route = (pid: number) => number | null;

export const untouchedRoute: Route = (pid) => pid;

/**
 * The bridges for an output moving from `before` to `after`, given each input PID's last continuity counter
 * as it left the channel's stages (`lastCc`); null when it needs none.
 */
export const moveBridges = (
  before: Route,
  after: Route,
  lastCc: ReadonlyMap<number, number>,
): Uint8Array | null => {
  const bridged: Array<[number, number]> = [];
  for (const [pid, cc] of lastCc) {
    if (pid === NULL_PID) continue;
    const to = after(pid);
    if (to !== null && to !== before(pid)) bridged.push([to, cc]);
  }
  if (bridged.length === 0) return null;
  const packets = new Uint8Array(bridged.length * PACKET);
  bridged.forEach(([pid, cc], i) => {
    writeAdaptationOnly(packets, i * PACKET, pid, cc, true, -1);
  });
  return packets;
};
