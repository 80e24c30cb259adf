/**
 * SMPTE 2022-1 FEC for one input: the column (port + 2) and row (port + 4) streams are received beside the
 * media, and the FEC core rebuilds lost media packets from them. Each rebuilt datagram goes to `onRecovered`
 * as soon as it exists, to enter the input path as if it had been received.
 *
 * `onRecovered` gets a view into the core's memory: it must use the bytes before it returns.
 */
import type { RemoteInfo } from "node:dgram";
import * as Effect from "effect/Effect";
import { FecCore, type FecSnapshot } from "../../core/redundancy-core.ts";
import type { InputEndpoint } from "../../domain/channel/redundancy.ts";
import { FEC_COLUMN_PORT_OFFSET, FEC_ROW_PORT_OFFSET } from "../../domain/channel/redundancy.ts";
import type { ReadPace } from "../runtime/sockets/batch-reader.ts";
import { bindInput } from "./udp-receiver.ts";

export interface FecInput {
  /** Keeps a media datagram from the wire for later recoveries; hands on any recovery it completes. */
  readonly media: (datagram: Uint8Array) => void;
  readonly snapshot: () => FecSnapshot;
}

/**
 * `accepts` asks the input's sender allow-list; FEC from another sender is dropped and handed to `onRefused`
 * to be counted with the input's.
 */
export const bindFec = (
  endpoint: InputEndpoint,
  onRecovered: (datagram: Uint8Array) => void,
  accepts: (address: string) => boolean,
  onRefused: () => void,
  pace?: ReadPace,
) =>
  Effect.gen(function* () {
    const core = FecCore.load();
    const handOn = (count: number) => {
      for (let i = 0; i < count; i++) onRecovered(core.recovered(i));
    };
    const onFec = (datagram: Uint8Array, sender: RemoteInfo) => {
      if (accepts(sender.address)) handOn(core.fec(datagram));
      else onRefused();
    };
    yield* bindInput({ ...endpoint, port: endpoint.port + FEC_COLUMN_PORT_OFFSET }, onFec, undefined, pace);
    yield* bindInput({ ...endpoint, port: endpoint.port + FEC_ROW_PORT_OFFSET }, onFec, undefined, pace);
    return {
      media: (datagram) => handOn(core.media(datagram)),
      snapshot: () => core.snapshot(),
    } satisfies FecInput;
  });
