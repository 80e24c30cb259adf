/**
 * The service's Effect services wired together, given a document store: one event bus, the channel
 * supervisor, the configuration, the read model over both, the commands, import/export and the tokens.
 * The service and the tests build the same graph from here.
 */
import { Layer } from "effect";
import { Auth } from "./auth.ts";
import { Channels } from "./channels.ts";
import { ConfigState } from "./config-state.ts";
import { ConfigTransfer } from "./config-transfer.ts";
import { Control } from "./control.ts";
import { EventBus } from "./event-bus.ts";
import { ReadModel } from "./read-model.ts";

export const ServicesLive = Layer.mergeAll(ConfigTransfer.Default, Auth.Default).pipe(
  Layer.provideMerge(Control.Default),
  Layer.provideMerge(ReadModel.Default),
  Layer.provideMerge(Layer.mergeAll(Channels.Default, ConfigState.Default)),
  Layer.provideMerge(EventBus.Default),
);
