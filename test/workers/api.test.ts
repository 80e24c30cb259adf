/**
 * Forwarding workers through the API and /metrics: a channel shows the worker that runs it, an operator moves
 * it to another (audited; a worker that does not exist is a 409 that names the ones that do), and Prometheus
 * reads each worker's channels, restarts and event-loop delay. One worker runs until it is busy: past the
 * line, the next starts and takes half its streaming channels, each output whole.
 */
import { Effect } from "effect";
import { afterEach, describe, expect, it } from "vitest";
import { analyse } from "../support/analyse.ts";
import { eventually, freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";
import { udpSink } from "../support/peers.ts";
import { asRtp, chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe("forwarding workers", () => {
  it("a channel shows its worker, moves to another on request, and /metrics reads every worker", async () => {
    app = await makeTestApp(undefined, undefined, { DISTRIBUTARY_WORKERS: "2" });
    const port = await freeUdpPort();
    await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({ id: "news", name: "News", rtp_ip: "127.0.0.1", rtp_port: port }),
    });
    const started = await json(await app.request("/api/channels/news/start", { method: "POST" }));
    expect(started.worker).toBe(0);

    const moved = await app.request("/api/channels/news/move", {
      method: "POST",
      body: JSON.stringify({ worker: 1 }),
    });
    expect(moved.status).toBe(200);
    expect((await json(moved)).worker).toBe(1);
    const events = await json(await app.request("/api/events?type=api_change"));
    expect(JSON.stringify(events)).toContain("moved from forwarding worker 0 to 1");
    // The hand-over itself, in the channel's event log and the metrics: from, to, and nothing lost or repeated.
    const handovers = (await json(await app.request("/api/events?type=handover&channel=news")))
      .events as Array<Record<string, unknown>>;
    expect(handovers).toHaveLength(1);
    expect(handovers[0]).toMatchObject({
      kind: "thread",
      mode: "thread",
      from: "thread 0",
      to: "thread 1",
      lost: 0,
      repeated: 0,
    });
    expect(handovers[0]?.duration_ms).toBeGreaterThan(0);

    const nowhere = await app.request("/api/channels/news/move", {
      method: "POST",
      body: JSON.stringify({ worker: 7 }),
    });
    expect(nowhere.status).toBe(409);
    expect(String((await json(nowhere)).detail)).toContain("there is no forwarding worker 7 (0–1)");
    const invalid = await app.request("/api/channels/news/move", {
      method: "POST",
      body: JSON.stringify({ worker: -1 }),
    });
    expect(invalid.status).toBe(400);
    const anonymous = await app.request("/api/channels/news/move", {
      method: "POST",
      body: JSON.stringify({ worker: 0 }),
      token: null,
    });
    expect(anonymous.status).toBe(401);

    const metrics = await (await app.request("/metrics")).text();
    expect(metrics).toContain('distributary_worker_channels{worker="0"} 0');
    expect(metrics).toContain('distributary_worker_channels{worker="1"} 1');
    expect(metrics).toContain('distributary_worker_restarts_total{worker="0"} 0');
    expect(metrics).toContain('distributary_handovers_total{kind="thread",mode="thread"} 1');
    expect(metrics).toContain('distributary_handover_packets_total{kind="thread",result="lost"} 0');
    expect(metrics).toMatch(
      /distributary_worker_event_loop_delay_seconds\{worker="1",quantile="0\.99"\} [0-9.e-]+/,
    );
  });

  it("one worker until it is busy; past the line the next one starts and takes half the streaming channels, every byte once", async () => {
    // A busy line of 1 % of a core: two streaming channels are over it within one 5-s window. The move line,
    // not set, is the busy line.
    app = await makeTestApp(undefined, undefined, {
      DISTRIBUTARY_WORKERS: "2",
      DISTRIBUTARY_WORKER_BUSY_PERCENT: "1",
    });
    const running = app;
    const workerOf = async (id: string) => (await json(await running.request(`/api/channels/${id}`))).worker;
    const workerSeries = async (name: string) =>
      (await (await running.request("/metrics")).text())
        .split("\n")
        .filter((line) => line.startsWith(`${name}{`));
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const ids = ["left", "right"];
          const sinks = [yield* udpSink, yield* udpSink];
          const inputs: number[] = [];
          for (const [index, id] of ids.entries()) {
            const input = yield* Effect.promise(freeUdpPort);
            inputs.push(input);
            const created = yield* Effect.promise(() =>
              running.request("/api/channels", {
                method: "POST",
                body: JSON.stringify({
                  id,
                  name: id,
                  rtp_ip: "127.0.0.1",
                  rtp_port: input,
                  outputs: [{ name: "out", protocol: "udp", url: `udp://127.0.0.1:${sinks[index]?.port}` }],
                }),
              }),
            );
            expect(created.status).toBe(201);
            yield* Effect.promise(() => running.request(`/api/channels/${id}/start`, { method: "POST" }));
          }
          // Both on worker 0, the only thread so far.
          expect([
            yield* Effect.promise(() => workerOf("left")),
            yield* Effect.promise(() => workerOf("right")),
          ]).toEqual([0, 0]);
          expect(yield* Effect.promise(() => workerSeries("distributary_worker_channels"))).toEqual([
            'distributary_worker_channels{worker="0"} 2',
          ]);
          // 12 s of 3 Mbit/s into each.
          const streams = [1, 2].map((seed) => {
            const ts = new TsGenerator({ seed, bitrate: 3_000_000 }).packets(
              Math.round((12 * 3_000_000) / (188 * 8)),
            );
            const datagrams = asRtp(chunkTs(ts));
            return { ts, datagrams, perMs: datagrams.length / 12_000 };
          });
          const sending = yield* Effect.fork(
            Effect.all(
              streams.map((stream, index) => sendPaced(stream.datagrams, inputs[index] ?? 0, stream.perMs)),
              { concurrency: "unbounded", discard: true },
            ),
          );
          yield* Effect.promise(() =>
            eventually(
              "one channel on each worker",
              async () => {
                const placed = [await workerOf("left"), await workerOf("right")];
                return placed.includes(0) && placed.includes(1) ? true : undefined;
              },
              11_000,
            ),
          );
          expect(running.logs.join("")).toMatch(
            /forwarding worker 0 is busy \(\d+ % of a core over 5 s\): 1 of its 2 channels move to worker 1, started for them/,
          );
          yield* Effect.promise(() =>
            eventually("worker 1's CPU share in /metrics", async () =>
              (await workerSeries("distributary_worker_cpu_ratio")).some((line) =>
                line.startsWith('distributary_worker_cpu_ratio{worker="1"}'),
              )
                ? true
                : undefined,
            ),
          );
          yield* Effect.fromFiber(sending);
          for (const [index, stream] of streams.entries()) {
            const sink = sinks[index];
            if (sink === undefined) throw new Error("no sink");
            yield* Effect.promise(() =>
              eventually(`${ids[index]}'s whole stream`, async () =>
                sink.totalBytes() >= stream.ts.length ? true : undefined,
              ),
            );
            // Every byte once, in order, across the move.
            expect(sink.bytes().equals(Buffer.from(stream.ts)), ids[index]).toBe(true);
            expect(analyse(sink.bytes()).ccErrors).toBe(0);
          }
        }),
      ),
    );
  }, 60_000);
});
