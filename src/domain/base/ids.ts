import * as Schema from "effect/Schema";

// Ids travel in URLs, file names of logs and metric labels: a short, plain alphabet keeps them safe everywhere.
const idPattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const idMessage = "must be 1–64 letters, digits, '-' or '_', starting with a letter or digit";

export const ChannelId = Schema.String.pipe(
  Schema.pattern(idPattern, { message: () => idMessage }),
  Schema.brand("ChannelId"),
);
export type ChannelId = typeof ChannelId.Type;

export const OutputId = Schema.String.pipe(
  Schema.pattern(idPattern, { message: () => idMessage }),
  Schema.brand("OutputId"),
);
export type OutputId = typeof OutputId.Type;

/** A fleet node's id (`DISTRIBUTARY_NODE_ID`): in metric labels, URLs and the nodes list. */
export const NodeId = Schema.String.pipe(
  Schema.pattern(idPattern, { message: () => idMessage }),
  Schema.brand("NodeId"),
);
export type NodeId = typeof NodeId.Type;

export const TokenId = Schema.String.pipe(Schema.brand("TokenId"));
export type TokenId = typeof TokenId.Type;

export const newChannelId = (): ChannelId => ChannelId.make(crypto.randomUUID());
export const newOutputId = (): OutputId => OutputId.make(crypto.randomUUID());
