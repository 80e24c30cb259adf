/**
 * What the Channels service asks of one running channel on its worker (pool.ts): each a request to the worker
 * that runs it (protocol.ts), and the changes to its outputs and inputs kept in the supervisor's spec (mirror.ts
 * `Entry`), which a restart or a move starts the channel from.
 */
import * as Effect from "effect/Effect";
import type { ChannelId, OutputId } from "../../../domain/base/ids.ts";
import type { InputRole } from "../../../domain/channel/redundancy.ts";
import type { ChannelError, ChannelSpec, InsertedCue, OutputSpec } from "../channel-types.ts";
import type { HolderCut, Resumed, Resumption } from "../cut-stage.ts";
import type { Entry } from "./mirror.ts";
import { request, type Slot } from "./threads.ts";

type WithEntry = <A>(
  id: ChannelId,
  use: (entry: Entry, slot: Slot) => Effect.Effect<A, ChannelError>,
) => Effect.Effect<A, ChannelError>;

export const channelCommands = (withEntry: WithEntry) => ({
  applyOutput: (channelId: ChannelId, output: OutputSpec) =>
    withEntry(channelId, (entry, slot) =>
      Effect.tap(request(slot, { op: "applyOutput", channel: channelId, output }), () => {
        entry.spec = {
          ...entry.spec,
          outputs: [...entry.spec.outputs.filter((o) => o.id !== output.id), output],
        };
      }),
    ),
  reconfigure: (spec: ChannelSpec) =>
    withEntry(spec.id, (entry, slot) =>
      Effect.tap(request(slot, { op: "reconfigure", spec }), () => {
        entry.spec = { ...spec, outputs: entry.spec.outputs };
      }),
    ),
  removeOutput: (channelId: ChannelId, outputId: OutputId) =>
    withEntry(channelId, (entry, slot) =>
      Effect.tap(request(slot, { op: "removeOutput", channel: channelId, output: outputId }), () => {
        entry.spec = { ...entry.spec, outputs: entry.spec.outputs.filter((o) => o.id !== outputId) };
      }),
    ),
  switchInput: (channelId: ChannelId, role: InputRole) =>
    withEntry(channelId, (_, slot) => request(slot, { op: "switchInput", channel: channelId, role })),
  insertCue: (channelId: ChannelId, section: Uint8Array, program: number | null, by: string) =>
    withEntry(channelId, (_, slot) =>
      request<InsertedCue>(slot, { op: "insertCue", channel: channelId, section, program, by }),
    ),
  fleetCut: (id: ChannelId) =>
    withEntry(id, (_, slot) => request<HolderCut | null>(slot, { op: "fleetCut", channel: id })),
  fleetResume: (id: ChannelId, how: Resumption) =>
    withEntry(id, (_, slot) => request<void>(slot, { op: "fleetResume", channel: id, how })),
  fleetResumed: (id: ChannelId, withinMs: number) =>
    withEntry(id, (_, slot) => request<Resumed | null>(slot, { op: "fleetResumed", channel: id, withinMs })),
});
