/**
 * The commands that act on a running channel and change nothing stored: an operator's switch of input, a cue
 * inserted now, a move to another forwarding worker, and the senders its inputs trust taken up live. They are
 * part of `Control` (control.ts), apart from the commands that change the configuration: each first asks that
 * the channel runs, and what it changes lasts only as long as the channel does.
 */
import { Buffer } from "node:buffer";
import { randomInt } from "node:crypto";
import * as Effect from "effect/Effect";
import { encodeOperatorCue } from "../../core/cue-insert/operator-cue.ts";
import { ControlError } from "../../domain/base/errors.ts";
import type { ChannelId } from "../../domain/base/ids.ts";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import type { CueInsertBody } from "../../domain/channel/cue-insert.ts";
import { Channels } from "../channel/channels.ts";
import { CurrentActor } from "../config/actor.ts";
import { ConfigState } from "../config/config-state.ts";
import { operatorCuesPerMinute } from "../config/settings.ts";
import { unavailableHere } from "../runtime/process/runtime.ts";
import { ReadModel } from "../status/read-model.ts";
import { makeCueLimit } from "./cue-limit.ts";
import { controlShared } from "./shared.ts";

/** A live command asked of a channel that is not running: a conflict that says what to do first. */
const notRunning = (channel: ChannelConfig, what: string) =>
  new ControlError({ reason: "conflict", message: `channel '${channel.name}' is not running; ${what}` });

/** What the running channel refused, as a conflict in its own words. */
const conflict = (error: { readonly message: string }) =>
  new ControlError({ reason: "conflict", message: error.message });

export const liveCommands = Effect.gen(function* () {
  const channels = yield* Channels;
  const configs = yield* ConfigState;
  const readModel = yield* ReadModel;
  const { locked, done, isRunning, spec, applyRuntime } = yield* controlShared;
  const cuesPerMinute = yield* Effect.orDie(operatorCuesPerMinute);
  const cueLimit = makeCueLimit(cuesPerMinute);

  /** It changes nothing stored, so it takes no write lock: an operator's switch never waits behind a command. */
  const switchInput = Effect.fn("Control.switchInput")(function* (
    id: ChannelId,
    active: "primary" | "backup",
  ) {
    const channel = yield* configs.find(id);
    if (!isRunning(id)) return yield* notRunning(channel, "start it before switching inputs");
    yield* channels.switchInput(id, active).pipe(Effect.mapError(conflict));
    yield* done("input.switch", `channel ${id}: operator switched to the ${active} input`, id);
    return yield* readModel.channel(id);
  });

  /**
   * "Insert a break now": the operator's cue, encoded here, onto the running channel's SCTE-35 PID (one is
   * added to its PMT when the input has none) and to every output whose policy keeps it. Nothing stored
   * changes; the audit names the operator, and the cue log keeps it with its origin.
   */
  const insertCue = Effect.fn("Control.insertCue")(function* (id: ChannelId, body: CueInsertBody) {
    const channel = yield* configs.find(id);
    if (!isRunning(id)) return yield* notRunning(channel, "start it before inserting a cue");
    const wait = cueLimit.wait(id);
    if (wait !== null) {
      return yield* new ControlError({
        reason: "rate_limited",
        retry_after_s: wait,
        message: `channel '${channel.name}' has had ${cuesPerMinute} operator cues in the last minute, the most it takes (DISTRIBUTARY_OPERATOR_CUES_PER_MINUTE); nothing was inserted: the next may go in ${wait} s`,
      });
    }
    const actor = yield* CurrentActor;
    const eventId = body.event_id ?? randomInt(1, 0xffffffff);
    const section = encodeOperatorCue(body, eventId);
    const inserted = yield* channels
      .insertCue(id, section, body.program ?? null, actor.name)
      .pipe(Effect.mapError(conflict));
    cueLimit.taken(id);
    const what = `${body.command} ${body.command === "splice_insert" && body.out === false ? "in" : "out"}`;
    const length = body.duration_s === undefined ? "open-ended" : `${body.duration_s} s`;
    const when = body.at_pts === undefined ? "immediate" : `at PTS ${body.at_pts}`;
    yield* done(
      "cue.insert",
      `channel ${id}: operator inserted a ${what} (event ${eventId}, ${length}, ${when}) on PID ${inserted.pid}`,
      id,
    );
    return {
      id: inserted.id,
      pid: inserted.pid,
      event_id: eventId,
      section_base64: Buffer.from(section).toString("base64"),
    };
  });

  /**
   * A running channel's inputs take the senders they trust now (the linked MediaLive channel's egress
   * endpoints changed), live: the outputs go on. Nothing stored changes, so nothing is audited.
   */
  const applySenders = Effect.fn("Control.applySenders")(function* (id: ChannelId) {
    const channel = configs.channel(id);
    if (channel === undefined || !isRunning(id)) return;
    yield* applyRuntime(channels.reconfigure(spec(channel)));
    yield* Effect.logInfo(
      `channel ${id} (${channel.name}): its inputs' allowed senders follow MediaLive's egress`,
    );
  }, locked);

  /** A running channel to another forwarding worker, its outputs going on (Channels.move). */
  const move = Effect.fn("Control.move")(function* (id: ChannelId, worker: number) {
    const channel = yield* configs.find(id);
    if (unavailableHere.move !== null)
      return yield* new ControlError({ reason: "unavailable", message: unavailableHere.move });
    if (!isRunning(id)) return yield* notRunning(channel, "only a running channel moves between workers");
    const from = channels.placement(id);
    yield* channels.move(id, worker).pipe(Effect.mapError(conflict));
    yield* done("channel.move", `channel ${id}: moved from forwarding worker ${from} to ${worker}`, id);
    return yield* readModel.channel(id);
  }, locked);

  return { switchInput, insertCue, applySenders, move } as const;
});
