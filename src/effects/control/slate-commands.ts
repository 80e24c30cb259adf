/**
 * The commands on a channel's slate: putting it on the slate by hand or taking it off (or the schedule doing
 * so, under its own flag), and the picture it shows. They change the stored slate and apply it to the running channel, its outputs going on; they are part
 * of `Control` (control.ts), apart from the channel and output commands because they act on a slate that must
 * exist and carry a picture's checks of their own.
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import * as Effect from "effect/Effect";
import { readSlateImage } from "../../core/slate/image.ts";
import { ControlError } from "../../domain/base/errors.ts";
import type { ChannelId } from "../../domain/base/ids.ts";
import { invalid } from "../../domain/base/validate.ts";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import type { SlateConfig, SlateImage } from "../../domain/channel/slate.ts";
import { Channels } from "../channel/channels.ts";
import { ConfigState } from "../config/config-state.ts";
import { ReadModel } from "../status/read-model.ts";
import { controlShared } from "./shared.ts";

/** A picture that cannot be a slate: a 400 that says what to send instead. */
const invalidImage = (problem: string) => Effect.fail(invalid([{ field: "(body)", message: problem }]));

/** The channel's slate, which must exist: a hand switch or a picture needs one to apply to. */
const withSlate = (channel: ChannelConfig, what: string) =>
  channel.slate == null
    ? Effect.fail(
        new ControlError({
          reason: "conflict",
          message: `channel '${channel.name}' has no slate; turn one on first with PATCH /api/channels/${channel.id} {"slate": {"after_ms": 1000}} before ${what}`,
        }),
      )
    : Effect.succeed(channel.slate);

export const slateCommands = Effect.gen(function* () {
  const channels = yield* Channels;
  const { find } = yield* ConfigState;
  const readModel = yield* ReadModel;
  const { locked, done, isRunning, spec, commitChannel, applyRuntime } = yield* controlShared;

  /** Stores a slate change and applies it to the running channel (its outputs go on). */
  const commitSlate = (channel: ChannelConfig, slate: SlateConfig) =>
    Effect.gen(function* () {
      const next = { ...channel, slate };
      yield* commitChannel(next);
      if (isRunning(channel.id)) yield* applyRuntime(channels.reconfigure(spec(next)));
    });

  /** Puts the channel on its slate by hand, or takes it off (then the inputs decide, as without a hand). */
  const switchSlate = Effect.fn("Control.switchSlate")(function* (id: ChannelId, on: boolean) {
    const channel = yield* find(id);
    const slate = yield* withSlate(channel, on ? "putting it on the slate" : "taking it off the slate");
    yield* commitSlate(channel, { ...slate, manual: on });
    yield* done(
      on ? "slate.on" : "slate.off",
      `channel ${id} (${channel.name}) ${on ? "put on the slate" : "taken off the slate"} by hand`,
      id,
    );
    return yield* readModel.channel(id);
  }, locked);

  /**
   * The schedule's slate (its preroll and postroll), put on or lifted as an operator's is, under its own flag:
   * lifting it leaves an operator's own slate on. A channel without a slate has none to show: false, nothing
   * changed (its outputs carry the input).
   */
  const scheduleSlate = Effect.fn("Control.scheduleSlate")(function* (id: ChannelId, on: boolean) {
    const channel = yield* find(id);
    if (channel.slate == null) return false;
    if ((channel.slate.scheduled ?? false) === on) return true;
    yield* commitSlate(channel, { ...channel.slate, scheduled: on });
    yield* done(
      on ? "slate.scheduled_on" : "slate.scheduled_off",
      `channel ${id} (${channel.name}) ${on ? "put on the slate" : "taken off the slate"} by its schedule`,
      id,
    );
    return true;
  }, locked);

  /** A new picture for the slate (checked: PNG or JPEG, bounded), or none: the generated card. */
  const putSlateImage = Effect.fn("Control.putSlateImage")(function* (
    id: ChannelId,
    bytes: Uint8Array | null,
  ) {
    const channel = yield* find(id);
    const slate = yield* withSlate(channel, "giving it a picture");
    let image: SlateImage | null = null;
    if (bytes !== null) {
      const read = readSlateImage(bytes);
      if ("problem" in read) return yield* invalidImage(read.problem);
      image = {
        type: read.type,
        width: read.width,
        height: read.height,
        bytes: bytes.length,
        sha256: createHash("sha256").update(bytes).digest("hex"),
        data: Buffer.from(bytes).toString("base64"),
      };
    }
    yield* commitSlate(channel, { ...slate, image });
    yield* done(
      "slate.image",
      image === null
        ? `channel ${id} (${channel.name}): its slate shows the generated card`
        : `channel ${id} (${channel.name}): its slate shows a ${image.width}×${image.height} ${image.type === "image/png" ? "PNG" : "JPEG"} picture`,
      id,
    );
    return yield* readModel.channel(id);
  }, locked);

  /** The slate's uploaded picture; a 404 that says so when there is none. */
  const slateImage = Effect.fn("Control.slateImage")(function* (id: ChannelId) {
    const channel = yield* find(id);
    const image = channel.slate?.image;
    if (image == null)
      return yield* new ControlError({
        reason: "not_found",
        message: `channel '${channel.name}' has no slate picture; its slate (if on) shows a generated card`,
      });
    return image;
  });

  return { switchSlate, scheduleSlate, putSlateImage, slateImage } as const;
});
