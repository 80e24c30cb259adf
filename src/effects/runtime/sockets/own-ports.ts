/**
 * The local ports the service's own UDP and RTP outputs send from, seen by every thread: an input that hears
 * one of them from an address of this host is hearing the service itself (an output aimed, by whatever path,
 * at an input), and drops the datagram instead of forwarding it again in a loop that multiplies the stream.
 *
 * One count per port in a SharedArrayBuffer the main thread makes and hands to each forwarding worker at its
 * start (`forWorker`, `adoptOwnPorts`), so an output on one thread and an input on another see the same
 * counts; a count rather than a bit, since two sockets bound to different addresses may share a port number.
 * Each thread also counts its own share, so that a worker that dies without closing its sockets
 * (`releaseWorker`) takes its ports out with it.
 */
import { networkInterfaces } from "node:os";

const PORTS = 65536;
const counts = () => new Uint16Array(new SharedArrayBuffer(PORTS * Uint16Array.BYTES_PER_ELEMENT));

let all = counts();
let mine = counts();

/** What a forwarding worker is given at its start: the process-wide counts and a share of its own. */
export interface OwnPortsShare {
  readonly all: SharedArrayBuffer;
  readonly mine: SharedArrayBuffer;
}

/** A new worker's share (main thread). */
export const forWorker = (): OwnPortsShare => ({
  all: all.buffer as SharedArrayBuffer,
  mine: counts().buffer as SharedArrayBuffer,
});

/** In a worker, before any socket: the counts it was given. */
export const adoptOwnPorts = (share: OwnPortsShare): void => {
  all = new Uint16Array(share.all);
  mine = new Uint16Array(share.mine);
};

/** A worker ended (main thread): whatever its sockets still held is theirs no more. */
export const releaseWorker = (share: OwnPortsShare): void => {
  const held = new Uint16Array(share.mine);
  for (let port = 0; port < PORTS; port++) {
    const count = Atomics.exchange(held, port, 0);
    if (count !== 0) Atomics.sub(all, port, count);
  }
};

/** An output's socket now sends from `port`; `release` when it closes. */
export const markOwnPort = (port: number): (() => void) => {
  Atomics.add(all, port, 1);
  Atomics.add(mine, port, 1);
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    Atomics.sub(all, port, 1);
    Atomics.sub(mine, port, 1);
  };
};

/** Whether one of the service's outputs sends from `port`: one read, per datagram. */
export const isOwnPort = (port: number): boolean => all[port] !== 0;

/** Every address of this machine's interfaces, loopback included, as os.networkInterfaces() lists them. */
export const localAddresses = (): ReadonlyArray<string> =>
  Object.values(networkInterfaces()).flatMap((addresses) =>
    (addresses ?? []).map((address) => address.address.replace(/%.*$/, "")),
  );
