/**
 * A hand-over reported once (handover/report.ts) is what people see of it: a `handover` event in the
 * channel's event log with from, to, the packets at the cut and the duration, the line the log and the pages
 * write, the metrics, whose lost and repeated series read 0 from the start, and a fleet's audit row.
 */
import * as Effect from "effect/Effect";
import * as Fiber from "effect/Fiber";
import { expect, it } from "vitest";
import type { DatabaseShape } from "../../src/effects/config/postgres/database.ts";
import { EventBus } from "../../src/effects/events/event-bus.ts";
import { describeEvent } from "../../src/effects/events/event-log.ts";
import { auditCommands } from "../../src/effects/fleet/command-audit.ts";
import { reportHandover } from "../../src/effects/handover/report.ts";
import { makeMetrics } from "../../src/effects/status/metrics.ts";

it("puts the hand-over in the channel's event log, the log's words and the metrics", async () => {
  const metrics = makeMetrics(
    () => {
      throw new Error("no snapshot is read for these series");
    },
    () => true,
  );
  const packets = () => metrics.registry.getSingleMetricAsString("distributary_handover_packets_total");
  // The promise is 0, and the series say so before any hand-over.
  expect(await packets()).toContain('distributary_handover_packets_total{kind="thread",result="lost"} 0');
  expect(await packets()).toContain(
    'distributary_handover_packets_total{kind="upgrade",result="repeated"} 0',
  );

  const events = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        yield* reportHandover({
          kind: "thread",
          channel: "news",
          from: "thread 1",
          to: "thread 2",
          packetsAtCut: 120_345,
          durationMs: 4.26,
          lost: 0,
          repeated: 0,
          mode: "thread",
        });
        yield* reportHandover({
          kind: "move",
          channel: "sport",
          from: "node-a",
          to: "node-b",
          packetsAtCut: 9000,
          durationMs: 18,
          lost: 3,
          repeated: 1,
          mode: "margin",
        });
        return (yield* EventBus).recent({ types: ["handover"] });
      }),
    ).pipe(Effect.provide(EventBus.Default)),
  );
  expect(events.map((event) => event.channel)).toEqual(["news", "sport"]);
  expect(events[0]).toMatchObject({
    type: "handover",
    kind: "thread",
    mode: "thread",
    from: "thread 1",
    to: "thread 2",
    packets_at_cut: 120_345,
    duration_ms: 4.3,
    lost: 0,
    repeated: 0,
  });
  const [level, words] = describeEvent(events[0] as (typeof events)[number]) ?? [];
  expect(level).toBe("info");
  expect(words).toContain(
    "handed over (thread move) from thread 1 to thread 2 in 4 ms, after 120345 TS packets",
  );
  expect(describeEvent(events[1] as (typeof events)[number])?.[0]).toBe("warn");

  for (const event of events) metrics.countEvent(event);
  const handovers = await metrics.registry.getSingleMetricAsString("distributary_handovers_total");
  expect(handovers).toContain('distributary_handovers_total{kind="thread",mode="thread"} 1');
  expect(handovers).toContain('distributary_handovers_total{kind="move",mode="margin"} 1');
  expect(await packets()).toContain('distributary_handover_packets_total{kind="move",result="lost"} 3');
  expect(await packets()).toContain('distributary_handover_packets_total{kind="move",result="repeated"} 1');
  expect(await packets()).toContain('distributary_handover_packets_total{kind="thread",result="lost"} 0');
});

it("copies each hand-over into a fleet's audit trail, by the service itself", async () => {
  const rows: Array<ReadonlyArray<unknown>> = [];
  const db = {
    query: (_sql: string, params: ReadonlyArray<unknown>) =>
      Effect.sync(() => {
        rows.push(params);
        return [];
      }),
  } as unknown as DatabaseShape;
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const bus = yield* EventBus;
        const auditing = yield* Effect.forkScoped(auditCommands(bus, db, "node-a"));
        // The audit's subscription starts with its fiber: the hand-over is told until a row is written.
        while (rows.length === 0) {
          yield* reportHandover({
            kind: "drain",
            channel: "news",
            from: "node-a",
            to: "node-b",
            packetsAtCut: 5000,
            durationMs: 12,
            lost: 0,
            repeated: 0,
            mode: "agreed",
          });
          yield* Effect.sleep("10 millis");
        }
        yield* Fiber.interrupt(auditing);
      }),
    ).pipe(Effect.provide(EventBus.Default)),
  );
  // at, node, actor, action, detail, channel, …
  expect(rows[0]?.slice(1, 4)).toEqual(["node-a", "system", "handover.drain"]);
  expect(rows[0]?.[4]).toBe(
    "handed over (drain) from node-a to node-b in 12 ms, after 5000 TS packets: 0 lost, 0 repeated (cut agreed by both)",
  );
  expect(rows[0]?.[5]).toBe("news");
});
