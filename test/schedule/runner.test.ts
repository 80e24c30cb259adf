/**
 * The schedule's runner in the service, on Effect's TestClock, against the real service graph (a memory store,
 * a real moto_server for MediaLive): each phase at its time and each action once (MediaLive started at the
 * warming, the outputs enabled on the slate at the preroll, the slate lifted at T0, the slate again at the
 * postroll, the outputs disabled and MediaLive stopped at the end), the cost guard idle inside the window, a
 * restart mid-window that joins the phase and repeats nothing, a window that passed while the service was
 * down (missed, an event), and manual staging waiting for the operator. MediaLive's HTTP calls are real; only
 * the waiting is the TestClock's.
 */
import { DescribeChannelCommand } from "@aws-sdk/client-medialive";
import { Effect, Schema } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChannelId } from "../../src/domain/base/ids.ts";
import { ChannelBody } from "../../src/domain/channel/channel.ts";
import { ConfigState } from "../../src/effects/config/config-state.ts";
import { Control } from "../../src/effects/control/control.ts";
import { EventBus } from "../../src/effects/events/event-bus.ts";
import { MediaLive } from "../../src/effects/medialive/medialive.ts";
import { ScheduleRunner } from "../../src/effects/schedule/runner.ts";
import { eventually, freeUdpPort } from "../support/app.ts";
import { createMediaLiveChannel, type Moto, motoMissing, startMoto } from "../support/moto.ts";
import { advanceTo, eventsOf, keptStore, phases, run, settledSleepers } from "./support.ts";

const missing = motoMissing();
let moto: Moto;
const CREDENTIALS = { AWS_ACCESS_KEY_ID: "AKIASCHEDULETEST", AWS_SECRET_ACCESS_KEY: "schedule-test-secret" };

beforeAll(async () => {
  if (missing !== null) return;
  Object.assign(process.env, CREDENTIALS);
  moto = await startMoto();
}, 60_000);
afterAll(async () => {
  for (const name of Object.keys(CREDENTIALS)) delete process.env[name];
  await moto?.stop();
});

const S = 1000;
const MIN = 60 * S;
/** The TestClock's start: a Saturday in December 2026, 18:00 UTC. */
const START = Date.parse("2026-12-05T18:00:00Z");
const T0 = START + 10 * MIN;
const iso = (ms: number) => new Date(ms).toISOString();

const window = (extra: Record<string, unknown> = {}) => ({
  id: "match",
  start: iso(T0),
  time_zone: "Europe/Paris",
  duration_s: 20 * 60,
  medialive_lead_s: 60,
  preroll_s: 30,
  postroll_s: 20,
  outputs: ["out1"],
  ...extra,
});
const WARM = T0 - 90 * S;
const PREROLL = T0 - 30 * S;
const POSTROLL = T0 + 20 * MIN;
const END = POSTROLL + 20 * S;

/** A channel's body as the API decodes it (the schedule's defaults filled in). */
const channelBody = async (id: string, extra: Record<string, unknown> = {}) =>
  Schema.decodeUnknownSync(ChannelBody)({
    id: id as ChannelId,
    name: `scheduled ${id}`,
    rtp_ip: "127.0.0.1",
    rtp_port: await freeUdpPort(),
    slate: { after_ms: 1000 },
    outputs: [
      {
        id: "out1",
        name: "listed",
        protocol: "udp",
        url: `udp://127.0.0.1:${await freeUdpPort()}`,
        enabled: false,
      },
      {
        id: "out2",
        name: "not listed",
        protocol: "udp",
        url: `udp://127.0.0.1:${await freeUdpPort()}`,
        enabled: false,
      },
    ],
    ...extra,
  });

/** The stored state the actions change: the listed output's switch and the schedule's slate flag. */
const stored = (id: string) =>
  Effect.map(ConfigState, (configs) => {
    const channel = configs.channel(id as ChannelId);
    return {
      out1: channel?.outputs.find((output) => output.id === "out1")?.enabled,
      out2: channel?.outputs.find((output) => output.id === "out2")?.enabled,
      slate: channel?.slate?.scheduled ?? false,
    };
  });

describe.skipIf(missing !== null)("the schedule's runner on the TestClock", () => {
  it("runs each phase at its time, each action once; the cost guard stays idle inside the window", async () => {
    const client = moto.client();
    const mediaLiveId = await createMediaLiveChannel(client, {
      name: "scheduled",
      destinations: ["rtp://127.0.0.1:5000"],
    });
    const body = await channelBody("ml", {
      medialive: { channel_id: mediaLiveId, region: "eu-west-1", stop_when_idle: true, idle_minutes: 10 },
      schedule: { windows: [window()] },
    });
    const stateInMoto = async () =>
      (await client.send(new DescribeChannelCommand({ ChannelId: mediaLiveId }))).State;
    const program = Effect.gen(function* () {
      const control = yield* Control;
      const medialive = yield* MediaLive;
      const configs = yield* ConfigState;
      yield* control.create(body);
      const sleepers = yield* settledSleepers;
      const at = (ms: number) => advanceTo(ms, sleepers);

      yield* at(WARM - S);
      expect(yield* phases("ml")).toEqual([]);
      expect(yield* eventsOf("ml", "medialive_action")).toEqual([]);
      expect(yield* Effect.promise(stateInMoto)).toBe("IDLE");

      yield* at(WARM + S);
      expect(yield* phases("ml")).toEqual(["warming by schedule"]);
      // MediaLive's answer is real HTTP: waited for in real time, the TestClock standing still.
      const bus = yield* EventBus;
      yield* Effect.promise(() =>
        eventually("the schedule's start of MediaLive", () =>
          bus.recent({ channel: "ml", types: ["medialive_action"] }).length > 0 ? true : undefined,
        ),
      );
      const started = yield* eventsOf("ml", "medialive_action");
      expect(started).toMatchObject([{ action: "start", by: "schedule", ok: true }]);
      expect(["STARTING", "RUNNING"]).toContain(yield* Effect.promise(stateInMoto));
      expect(yield* stored("ml")).toEqual({ out1: false, out2: false, slate: false });

      yield* at(PREROLL - S);
      expect(yield* stored("ml")).toEqual({ out1: false, out2: false, slate: false });
      yield* at(PREROLL + S);
      expect(yield* stored("ml")).toEqual({ out1: true, out2: false, slate: true });

      yield* at(T0 - S);
      expect((yield* stored("ml")).slate).toBe(true);
      yield* at(T0 + S);
      expect(yield* stored("ml")).toEqual({ out1: true, out2: false, slate: false });

      // Inside the window nothing of ours sends (no input): the cost guard would stop MediaLive after 10 min.
      yield* at(POSTROLL - S);
      const channel = configs.channel("ml" as ChannelId);
      expect(
        channel === undefined ? undefined : medialive.view(channel, Date.now())?.pending_stop,
      ).toBeNull();
      expect(yield* Effect.promise(stateInMoto)).toBe("RUNNING");
      expect(yield* stored("ml")).toEqual({ out1: true, out2: false, slate: false });
      yield* at(POSTROLL + S);
      expect(yield* stored("ml")).toEqual({ out1: true, out2: false, slate: true });

      yield* at(END + S);
      yield* Effect.promise(() =>
        eventually("the schedule's stop of MediaLive", () =>
          bus.recent({ channel: "ml", types: ["medialive_action"] }).length > 1 ? true : undefined,
        ),
      );
      expect(yield* stored("ml")).toEqual({ out1: false, out2: false, slate: false });
      expect(["STOPPING", "IDLE"]).toContain(yield* Effect.promise(stateInMoto));
      yield* at(END + 30 * S);
      expect(yield* phases("ml")).toEqual([
        "warming by schedule",
        "preroll by schedule",
        "live by schedule",
        "postroll by schedule",
        "ending by schedule",
        "idle by schedule",
      ]);
      const actions = yield* eventsOf("ml", "medialive_action");
      expect(actions.map((event) => `${event.action} by ${event.by}`)).toEqual([
        "start by schedule",
        "stop by schedule",
      ]);
      // Each change the schedule made is in the audit trail, in its name, once.
      const audit = (yield* eventsOf("ml", "api_change")).filter((event) => event.actor === "schedule");
      // The slate goes up before the outputs are enabled: their first packet is the slate's.
      expect(audit.map((event) => event.action)).toEqual([
        "slate.scheduled_on",
        "output.update",
        "slate.scheduled_off",
        "slate.scheduled_on",
        "output.update",
        "slate.scheduled_off",
      ]);
      const view = yield* (yield* ScheduleRunner).view("ml" as ChannelId);
      expect(view.phase).toBe("idle");
    });
    await run(keptStore(), START, program, { DISTRIBUTARY_AWS_ENDPOINT: moto.endpoint });
  }, 120_000);
});

describe("the schedule's runner: restarts, misses and the operator", () => {
  it("a restart mid-window joins the phase (a takeover) and repeats nothing", async () => {
    const store = keptStore();
    const body = await channelBody("rs", { schedule: { windows: [window()] } });
    await run(
      store,
      START,
      Effect.gen(function* () {
        yield* (yield* Control).create(body);
        const sleepers = yield* settledSleepers;
        yield* advanceTo(PREROLL + 2 * S, sleepers);
        expect(yield* stored("rs")).toEqual({ out1: true, out2: false, slate: true });
        expect(yield* phases("rs")).toEqual(["warming by schedule", "preroll by schedule"]);
      }),
    );
    // The service is back 5 minutes into the programme.
    await run(
      store,
      T0 + 5 * MIN,
      Effect.gen(function* () {
        const sleepers = yield* settledSleepers;
        yield* advanceTo(T0 + 5 * MIN + 3 * S, sleepers);
        expect(yield* phases("rs")).toEqual(["live by takeover"]);
        expect(yield* stored("rs")).toEqual({ out1: true, out2: false, slate: false });
        const audit = (yield* eventsOf("rs", "api_change")).filter((event) => event.actor === "schedule");
        // Only the slate's lift: the outputs were enabled before the restart.
        expect(audit.map((event) => event.action)).toEqual(["slate.scheduled_off"]);
        const view = yield* (yield* ScheduleRunner).view("rs" as ChannelId);
        expect(view.current).toMatchObject({
          window: "match",
          phase: "live",
          done: ["slate_on", "enable_outputs", "go_live"],
          waiting: null,
          live_at: iso(T0),
          end_at: iso(END),
        });
      }),
    );
  });

  it("each phase begins on its millisecond, whatever the second the loop began on", async () => {
    const body = await channelBody("ms0", { schedule: { windows: [window()] } });
    // Made 437 ms past a second: the loop's one-a-second looks fall between the phases' times.
    await run(
      keptStore(),
      START + 437,
      Effect.gen(function* () {
        yield* (yield* Control).create(body);
        const sleepers = yield* settledSleepers;
        for (const [at, seen] of [
          [WARM, ["warming by schedule"]],
          [PREROLL, ["warming by schedule", "preroll by schedule"]],
          [T0, ["warming by schedule", "preroll by schedule", "live by schedule"]],
        ] as const) {
          yield* advanceTo(at - 1, sleepers);
          expect(yield* phases("ms0")).toEqual(seen.slice(0, -1));
          yield* advanceTo(at, sleepers);
          expect(yield* phases("ms0")).toEqual(seen);
        }
        expect(yield* stored("ms0")).toEqual({ out1: true, out2: false, slate: false });
      }),
    );
  });

  it("a window that passed while the service was down is missed: an event, no action", async () => {
    const store = keptStore();
    const body = await channelBody("ms", { schedule: { windows: [window()] } });
    await run(
      store,
      START,
      Effect.gen(function* () {
        yield* (yield* Control).create(body);
        yield* advanceTo(START + 3 * S, yield* settledSleepers);
      }),
    );
    await run(
      store,
      END + 10 * MIN,
      Effect.gen(function* () {
        yield* advanceTo(END + 10 * MIN + 3 * S, yield* settledSleepers);
        const missed = yield* eventsOf("ms", "schedule_missed");
        expect(missed).toHaveLength(1);
        expect(missed[0]).toMatchObject({ window: "match", occurrence: iso(T0) });
        expect(missed[0]?.message).toContain("passed with nothing done");
        expect(yield* stored("ms")).toEqual({ out1: false, out2: false, slate: false });
        // Said once.
        yield* advanceTo(END + 11 * MIN, yield* settledSleepers);
        expect(yield* eventsOf("ms", "schedule_missed")).toHaveLength(1);
      }),
    );
  });

  it("manual staging waits for the operator's go-live and end; a command out of its phase is refused in words", async () => {
    const body = await channelBody("mn", {
      schedule: { windows: [window({ staging: "manual", duration_s: 120 })] },
    });
    const POSTROLL = T0 + 2 * MIN;
    await run(
      keptStore(),
      START,
      Effect.gen(function* () {
        yield* (yield* Control).create(body);
        const runner = yield* ScheduleRunner;
        const sleepers = yield* settledSleepers;
        const refusal = yield* Effect.flip(runner.command("mn" as ChannelId, { kind: "end" }));
        expect(refusal.message).toContain("cannot be ended");
        yield* advanceTo(T0 + MIN, sleepers);
        expect(yield* stored("mn")).toEqual({ out1: true, out2: false, slate: true });
        const waiting = yield* runner.view("mn" as ChannelId);
        expect(waiting).toMatchObject({ phase: "preroll", current: { waiting: "go_live" } });

        const live = yield* runner.command("mn" as ChannelId, { kind: "go-live" });
        expect(live.phase).toBe("live");
        yield* advanceTo(T0 + MIN + 2 * S, sleepers);
        expect(yield* stored("mn")).toEqual({ out1: true, out2: false, slate: false });

        // Past its programme's end it stays live, waiting for the operator's end.
        yield* advanceTo(POSTROLL + MIN, sleepers);
        expect(yield* runner.view("mn" as ChannelId)).toMatchObject({
          phase: "live",
          current: { waiting: "end" },
        });
        yield* runner.command("mn" as ChannelId, { kind: "end" });
        yield* advanceTo(POSTROLL + MIN + 2 * S, sleepers);
        expect((yield* stored("mn")).slate).toBe(true);
        yield* advanceTo(POSTROLL + MIN + 25 * S, sleepers);
        expect(yield* stored("mn")).toEqual({ out1: false, out2: false, slate: false });
        expect(yield* phases("mn")).toEqual([
          "warming by schedule",
          "preroll by schedule",
          "live by operator",
          "postroll by operator",
          "ending by schedule",
          "idle by schedule",
        ]);
        const audit = (yield* eventsOf("mn", "api_change")).map((event) => event.action);
        expect(audit).toContain("schedule.go-live");
        expect(audit).toContain("schedule.end");
      }),
    );
  });
});
