/**
 * The cost guard as the service runs it, on Effect's TestClock, against a real moto_server: the service's
 * own loop describes a RUNNING MediaLive channel that nothing of ours sends for, shows the pending stop, and
 * stops it once the linger has passed on the clock — never before, never a channel whose guard is off, never
 * one that no configuration links. The HTTP calls to moto are real; only the waiting is the TestClock's.
 */
import { DescribeChannelCommand, StartChannelCommand } from "@aws-sdk/client-medialive";
import { Chunk, Effect, TestClock, TestContext } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChannelId } from "../../src/domain/base/ids.ts";
import { ConfigState } from "../../src/effects/config/config-state.ts";
import { Control } from "../../src/effects/control/control.ts";
import { EventBus } from "../../src/effects/events/event-bus.ts";
import { MediaLive } from "../../src/effects/medialive/medialive.ts";
import { ServicesTest } from "../../src/effects/services.ts";
import { ADMIN_TOKEN, eventually, freeUdpPort } from "../support/app.ts";
import { createMediaLiveChannel, type Moto, motoMissing, startMoto } from "../support/moto.ts";

const missing = motoMissing();
let moto: Moto;

// The service finds credentials through the SDK's standard chain, the environment first; moto takes any.
const CREDENTIALS = { AWS_ACCESS_KEY_ID: "AKIAGUARDTEST", AWS_SECRET_ACCESS_KEY: "guard-test-secret" };

beforeAll(async () => {
  if (missing !== null) return;
  Object.assign(process.env, CREDENTIALS);
  moto = await startMoto();
}, 60_000);
afterAll(async () => {
  for (const name of Object.keys(CREDENTIALS)) delete process.env[name];
  await moto?.stop();
});

const MINUTE = 60_000;

/** A MediaLive channel in moto, RUNNING. */
const runningChannel = async (name: string) => {
  const client = moto.client();
  const id = await createMediaLiveChannel(client, { name, destinations: ["rtp://127.0.0.1:5000"] });
  await client.send(new StartChannelCommand({ ChannelId: id }));
  await client.send(new DescribeChannelCommand({ ChannelId: id }));
  return id;
};
const stateInMoto = async (id: string) =>
  (await moto.client().send(new DescribeChannelCommand({ ChannelId: id }))).State;

/** Real time: the condition is about what moto and the service's loop did, not about the TestClock. */
const waitFor = <A>(what: string, check: () => A | undefined | Promise<A | undefined>) =>
  Effect.promise(() => eventually(what, check));

describe.skipIf(missing !== null)("the cost guard in the service, on the TestClock (moto)", () => {
  it("stops an idle linked channel after 15 minutes on the clock, and nothing it should not", async () => {
    const [guarded, unguarded, unlinked] = [
      await runningChannel("guarded"),
      await runningChannel("unguarded"),
      await runningChannel("unlinked"),
    ];
    const ports = [await freeUdpPort(), await freeUdpPort()];
    const layer = ServicesTest(ADMIN_TOKEN, undefined, {
      DISTRIBUTARY_AWS_ENDPOINT: moto.endpoint,
      DISTRIBUTARY_WORKERS: "0",
    });
    const program = Effect.gen(function* () {
      const control = yield* Control;
      const medialive = yield* MediaLive;
      const bus = yield* EventBus;
      for (const [index, [id, guard]] of (
        [
          [guarded, true],
          [unguarded, false],
        ] as const
      ).entries()) {
        yield* control.create({
          id: `ch${index}` as ChannelId,
          name: `channel ${index}`,
          rtp_ip: "127.0.0.1",
          rtp_port: ports[index] ?? 0,
          medialive: { channel_id: id, region: "eu-west-1", stop_when_idle: guard },
        });
      }
      const configs = yield* ConfigState;
      /** The view as the read model takes it: plain figures, read without the service's clock or fibers. */
      const viewNow = (id: string) => {
        const channel = configs.channel(id as ChannelId);
        const view = channel === undefined ? undefined : medialive.view(channel, Date.now());
        if (view === undefined) throw new Error(`${id} is not linked`);
        return view;
      };
      const viewOf = (id: string) => Effect.sync(() => viewNow(id));
      /** Polls in real time (the loop waits for moto's answers) until the TestClock has `count` sleepers. */
      const asleep = (count: number) =>
        Effect.gen(function* () {
          while (Chunk.size(yield* TestClock.sleeps()) < count)
            yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)));
        });
      /**
       * The clock moved on by `minutes`, a poll period (15 s) at a time, each step waiting in real time until
       * every loop (the reconcile, the two channels') has answered and sleeps again: moto's answers are real.
       */
      const advance = (minutes: number) =>
        Effect.gen(function* () {
          for (let step = 0; step < minutes * 4; step++) {
            yield* TestClock.adjust("15 seconds");
            yield* asleep(3);
          }
        });

      yield* TestClock.adjust("1 second");
      yield* waitFor("ch0's first look", () => (viewNow("ch0").checked_at === null ? undefined : true));
      yield* asleep(3);
      const first = yield* viewOf("ch0");
      expect(first.state).toBe("RUNNING");
      expect(first.pending_stop).toEqual({
        at: new Date(MINUTE / 60 + 15 * MINUTE).toISOString(),
        held: false,
      });
      expect((yield* viewOf("ch1")).pending_stop).toBeNull();

      yield* advance(14);
      expect(yield* Effect.promise(() => stateInMoto(guarded))).toBe("RUNNING");
      expect((yield* viewOf("ch0")).pending_stop?.held).toBe(false);

      yield* advance(2);
      yield* waitFor("the guard's stop to reach MediaLive", async () =>
        (await stateInMoto(guarded)) === "IDLE" ? true : undefined,
      );
      const stopped = bus.recent({ channel: "ch0" }).find((event) => event.type === "medialive_action");
      expect(stopped).toMatchObject({ action: "stop", by: "cost_guard", ok: true });
      expect(stopped?.type === "medialive_action" && stopped.message).toContain("no output sent for 15 min");
      expect(yield* Effect.promise(() => stateInMoto(unguarded))).toBe("RUNNING");
      expect(yield* Effect.promise(() => stateInMoto(unlinked))).toBe("RUNNING");
    });
    await Effect.runPromise(
      program.pipe(Effect.provide(layer), Effect.scoped, Effect.provide(TestContext.TestContext)),
    );
  }, 60_000);
});
