/**
 * A schedule owns the outputs it names (issue 63, point 9): outside its windows they are off, whatever the
 * order in which the channel was started and the schedule saved. On Effect's TestClock against the real service
 * graph, each channel fed a real UDP input (a generated TS, a datagram every 5 ms) with its output a real UDP
 * sink: a schedule saved and its channel started (both orders), the service restarted before the window, a
 * configuration stored before owning existed (outputs enabled beside a schedule): nothing reaches the sink while
 * the input flows before the window, the output's status says it is off until the window because of the
 * schedule, and at T0 the window's phases go on as before (the sink receives the programme, then nothing after
 * the end). An operator's enable outside the window is refused in words; an output added to a channel whose
 * windows run every output is stored off; an enable the commands did not make is undone by the runner.
 */
import { Effect, Schema } from "effect";
import { afterEach, describe, expect, it } from "vitest";
import type { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import { ChannelBody, ChannelPatch, type OutputBody } from "../../src/domain/channel/channel.ts";
import { Channels } from "../../src/effects/channel/channels.ts";
import { ConfigState } from "../../src/effects/config/config-state.ts";
import { Control } from "../../src/effects/control/control.ts";
import { ReadModel } from "../../src/effects/status/read-model.ts";
import { eventually, freeUdpPort, type UdpSink, udpSink, udpSource } from "../support/app.ts";
import { advanceTo, documentStore, phases, run, settledSleepers } from "./support.ts";

const S = 1000;
const MIN = 60 * S;
/** The TestClock's start: a Saturday in December 2026, 18:00 UTC (19:00 in Paris). */
const START = Date.parse("2026-12-05T18:00:00Z");
const T0 = START + 30 * S;
const END = T0 + 20 * S;
const iso = (ms: number) => new Date(ms).toISOString();
/** What the output's status says before the window: its preroll (no preroll: T0) in the window's zone. */
const HELD = "off until the window h6-match at 2026-12-05 19:00:30 Europe/Paris (schedule)";

const schedule = (outputs: "all" | ReadonlyArray<string> = ["out1"]) => ({
  windows: [
    {
      id: "h6-match",
      start: iso(T0),
      time_zone: "Europe/Paris",
      duration_s: 20,
      outputs,
    },
  ],
});

const closing: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
});

/** A real UDP sink for the output and a real UDP source on the channel's input port, closed after the test. */
const peers = async () => {
  const sink = await udpSink();
  const input = await freeUdpPort();
  closing.push(sink.close);
  return { sink, input };
};
/** `program` on a fresh service graph (its own store) from START, with fresh peers. */
const onFreshGraph = async <A, E>(
  // biome-ignore lint/suspicious/noExplicitAny: what the service graph provides
  program: (peers: { readonly sink: UdpSink; readonly input: number }) => Effect.Effect<A, E, any>,
) => run(documentStore().layer, START, program(await peers()));

const feed = (port: number) => {
  const source = udpSource(port);
  closing.push(source.close);
};

const channelBody = (id: string, input: number, sink: UdpSink, extra: Record<string, unknown> = {}) =>
  Schema.decodeUnknownSync(ChannelBody)({
    id,
    name: `scheduled ${id}`,
    rtp_ip: "127.0.0.1",
    rtp_port: input,
    // Enabled, as the API's default has them: the schedule owns them all the same.
    outputs: [{ id: "out1", name: "to the sink", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
    ...extra,
  });

/**
 * The input carried `bytes` more (in real time, the TestClock standing still) while the sink got nothing more:
 * the channel ran, its output did not send.
 */
const inputCarries = (id: string, bytes: number) =>
  Effect.gen(function* () {
    const channels = yield* Channels;
    const inputBytes = () => channels.summary(id as ChannelId)?.inputs[0]?.core.bytes ?? 0;
    const from = inputBytes();
    yield* Effect.promise(() =>
      eventually(
        `channel ${id}'s input to carry ${bytes} bytes more`,
        () => (inputBytes() - from >= bytes ? true : undefined),
        15_000,
      ),
    );
  });
const silentWhileFlowing = (id: string, sink: UdpSink, bytes = 200_000) =>
  Effect.gen(function* () {
    const before = sink.bytes();
    yield* inputCarries(id, bytes);
    expect(sink.bytes() - before).toBe(0);
  });

const receives = (sink: UdpSink, what: string) =>
  Effect.promise(() => {
    const from = sink.bytes();
    return eventually(what, () => (sink.bytes() - from > 50_000 ? true : undefined), 15_000);
  });

const outputView = (id: string) =>
  Effect.flatMap(ReadModel, (model) => model.output(id as ChannelId, "out1" as OutputId));

const storedEnabled = (id: string) =>
  Effect.map(
    ConfigState,
    (configs) => configs.channel(id as ChannelId)?.outputs.find((output) => output.id === "out1")?.enabled,
  );

/** From just before T0 to after the end: nothing, the programme from T0, nothing after the end. */
const theWindow = (id: string, sink: UdpSink, sleepers: number) =>
  Effect.gen(function* () {
    yield* advanceTo(T0 - S, sleepers);
    yield* silentWhileFlowing(id, sink);
    yield* advanceTo(T0 + S, sleepers);
    yield* receives(sink, "the programme at the sink from T0");
    expect((yield* outputView(id)).schedule).toBeUndefined();
    yield* advanceTo(END + 2 * S, sleepers);
    expect(yield* storedEnabled(id)).toBe(false);
    yield* silentWhileFlowing(id, sink);
    expect(yield* phases(id)).toEqual(["live by schedule", "ending by schedule", "idle by schedule"]);
  });

describe("a schedule owns the outputs it names: off outside its windows", () => {
  it("schedule saved, then the channel started: nothing at the output before the window, its status says why", async () => {
    await onFreshGraph(({ sink, input }) =>
      Effect.gen(function* () {
        const control = yield* Control;
        const created = yield* control.create(channelBody("h6-first", input, sink, { schedule: schedule() }));
        expect(created.outputs[0]?.enabled).toBe(false);
        yield* control.start("h6-first" as ChannelId);
        feed(input);
        const sleepers = yield* settledSleepers;
        yield* silentWhileFlowing("h6-first", sink);
        const view = yield* outputView("h6-first");
        expect(view).toMatchObject({ enabled: false, state: "disabled", schedule: HELD });
        yield* theWindow("h6-first", sink, sleepers);
      }),
    );
  }, 60_000);

  it("channel started, then schedule saved: the output goes off with the save and back on at the window", async () => {
    await onFreshGraph(({ sink, input }) =>
      Effect.gen(function* () {
        const control = yield* Control;
        yield* control.create(channelBody("h6-later", input, sink));
        yield* control.start("h6-later" as ChannelId);
        feed(input);
        yield* receives(sink, "the programme at the sink before any schedule");
        const patched = yield* control.patch(
          "h6-later" as ChannelId,
          Schema.decodeUnknownSync(ChannelPatch)({ schedule: schedule("all") }),
        );
        expect(patched.outputs[0]).toMatchObject({ enabled: false, schedule: HELD });
        // What was on its way when the answer came has arrived once the channel has read on past it.
        yield* inputCarries("h6-later", 20_000);
        const sleepers = yield* settledSleepers;
        yield* silentWhileFlowing("h6-later", sink);
        yield* theWindow("h6-later", sink, sleepers);
      }),
    );
  }, 60_000);

  it("a restart before the window keeps the output off; a configuration stored with outputs enabled beside a schedule starts them off", async () => {
    const { sink, input } = await peers();
    const store = documentStore();
    await run(
      store.layer,
      START,
      Effect.gen(function* () {
        const control = yield* Control;
        yield* control.create(channelBody("h6-restart", input, sink, { schedule: schedule() }));
        yield* control.start("h6-restart" as ChannelId);
      }),
    );
    feed(input);
    // The service back 10 s on: the channel resumes, its output still off.
    await run(
      store.layer,
      START + 10 * S,
      Effect.gen(function* () {
        const sleepers = yield* settledSleepers;
        yield* silentWhileFlowing("h6-restart", sink);
        expect(yield* outputView("h6-restart")).toMatchObject({ enabled: false, schedule: HELD });
        yield* theWindow("h6-restart", sink, sleepers);
      }),
    );
    // As an earlier version stored it: the schedule beside an enabled output, the channel running.
    const stored = JSON.parse(store.documents.get("channels.json") ?? "{}") as {
      channels: Array<{ outputs: Array<{ enabled: boolean }>; schedule: unknown }>;
    };
    const [channel] = stored.channels;
    if (channel === undefined) throw new Error("no channel stored");
    for (const output of channel.outputs) output.enabled = true;
    channel.schedule = {
      windows: [{ ...schedule().windows[0], start: iso(START + 3 * MIN), staging: "auto" }],
    };
    store.documents.set("channels.json", JSON.stringify(stored));
    await run(
      store.layer,
      START + 2 * MIN,
      Effect.gen(function* () {
        yield* settledSleepers;
        yield* silentWhileFlowing("h6-restart", sink);
        expect(yield* storedEnabled("h6-restart")).toBe(false);
        expect((yield* outputView("h6-restart")).schedule).toBe(
          "off until the window h6-match at 2026-12-05 19:03 Europe/Paris (schedule)",
        );
      }),
    );
  }, 90_000);

  it("outside the window an operator's enable is refused in words, an added output is stored off, and an enable the commands did not make is undone", async () => {
    await onFreshGraph(({ sink, input }) =>
      Effect.gen(function* () {
        const control = yield* Control;
        const configs = yield* ConfigState;
        yield* control.create(channelBody("h6-owner", input, sink, { schedule: schedule("all") }));
        const refusal = yield* Effect.flip(
          control.patchOutput("h6-owner" as ChannelId, "out1" as OutputId, { enabled: true }),
        );
        expect(refusal.reason).toBe("conflict");
        expect(refusal.message).toBe(
          "output out1 is run by the schedule (window h6-match): it is off until the window at 2026-12-05 19:00:30 Europe/Paris; to send it outside the windows, leave it out of the window's outputs or remove the schedule",
        );
        const added = yield* control.addOutput(
          "h6-owner" as ChannelId,
          {
            id: "out2",
            name: "added",
            protocol: "udp",
            url: `udp://127.0.0.1:${sink.port}`,
            enabled: true,
          } as OutputBody,
        );
        expect(added).toMatchObject({ enabled: false, schedule: HELD });
        yield* control.start("h6-owner" as ChannelId);
        const sleepers = yield* settledSleepers;
        // Enabled behind the commands' back (as an earlier version's node in a fleet would store it).
        const channel = configs.channel("h6-owner" as ChannelId);
        if (channel === undefined) throw new Error("no channel");
        yield* configs.commit(
          configs.replacing({
            ...channel,
            outputs: channel.outputs.map((output) => ({ ...output, enabled: true })),
          }),
        );
        yield* advanceTo(START + 3 * S, sleepers);
        expect(yield* storedEnabled("h6-owner")).toBe(false);
        expect(configs.channel("h6-owner" as ChannelId)?.outputs.map((output) => output.enabled)).toEqual([
          false,
          false,
        ]);
        // Inside the window the runner enables them both; an operator may then switch one off and on.
        yield* advanceTo(T0 + S, sleepers);
        expect(configs.channel("h6-owner" as ChannelId)?.outputs.map((output) => output.enabled)).toEqual([
          true,
          true,
        ]);
        const off = yield* control.patchOutput("h6-owner" as ChannelId, "out1" as OutputId, {
          enabled: false,
        });
        // Off by the operator inside the window: plain disabled, no hold to state.
        expect(off).toMatchObject({ enabled: false, state: "disabled" });
        expect(off.schedule).toBeUndefined();
        const back = yield* control.patchOutput("h6-owner" as ChannelId, "out1" as OutputId, {
          enabled: true,
        });
        expect(back.enabled).toBe(true);
      }),
    );
  }, 60_000);
});
