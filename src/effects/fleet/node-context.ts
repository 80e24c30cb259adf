/**
 * What the coordinator (coordinator.ts) hands the parts that act for it on the leases, its pass over them
 * (lease-pass.ts) and the operators' commands (commands.ts): who this node is, its database and the guard's way
 * into it, what it knows of the leases and which it holds.
 */
import type * as Effect from "effect/Effect";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import type { Queryable } from "../config/postgres/database.ts";
import type { FleetClock } from "./fleet-clock.ts";
import type { Guard } from "./guard.ts";
import type { LeaseBook } from "./lease-book.ts";

export interface NodeContext {
  readonly me: string;
  readonly bootId: string;
  /** The fleet's clock (fleet-clock.ts). */
  readonly clock: FleetClock;
  readonly q: Queryable;
  readonly book: LeaseBook;
  /** The terms this node holds, by channel. */
  readonly held: ReadonlyMap<string, number>;
  readonly sql: Guard["sql"];
  readonly stored: (channelId: string) => ChannelConfig | undefined;
  /** Stops sending a channel at once, without waiting for the API's lock (sending.ts). */
  readonly stopSending: (channelId: string, why: string) => Effect.Effect<void>;
}
