/**
 * One measured run of a contender: warm-up, the window (CPU, RSS and open files sampled, /metrics scraped,
 * REST probed or driven by API clients), and the sinks read at the window's ends.
 */
import { loadavg } from "node:os";
import { Effect, Exit, Scope } from "effect";
import { srtListenerPeer } from "../../test/support/peers.ts";
import { ristReceiverPeer } from "../../test/support/rist-peers.ts";
import { openSink, type SinkReport, type SourceCounts, startSource } from "./children.ts";
import { type Contender, eventually, type Service } from "./contenders.ts";
import { type NginxStat, nginxStat, rtmpFrames } from "./nginx.ts";
import {
  HEALTH,
  outputsOf,
  plan,
  REBALANCE,
  SAMPLE_MS,
  SCRAPE_MS,
  sleep,
  type TsProtocol,
  WARMUP,
} from "./options.ts";
import { threadUsage, type Usage, udpBound, usage } from "./proc.ts";
import { type Rebalance, rebalance, withSilences } from "./rebalance.ts";

interface LagSample {
  readonly series: string;
  readonly p99: number;
  readonly max: number;
}
const scrapeLag = async (base: string): Promise<ReadonlyArray<LagSample>> => {
  const text = await (await fetch(`${base}/metrics`)).text();
  const bySeries = new Map<string, { p99: number; max: number }>();
  for (const match of text.matchAll(/^(\w*eventloop_lag)_(p99|max)_seconds(\{[^}]*\})? (\S+)$/gm)) {
    const series = `${match[1]}${match[3] ?? ""}`;
    const entry = bySeries.get(series) ?? { p99: 0, max: 0 };
    entry[match[2] === "p99" ? "p99" : "max"] = Number(match[4]) * 1000;
    bySeries.set(series, entry);
  }
  // Each forwarding worker's own loop: `distributary_worker_event_loop_delay_seconds{worker,quantile}`, named
  // with the scheduling the worker runs at (`distributary_worker_scheduling_info`).
  const scheduling = new Map(
    [...text.matchAll(/^distributary_worker_scheduling_info\{worker="(\d+)",priority="(\w+)"\} 1$/gm)].map(
      (match) => [match[1], match[2]],
    ),
  );
  for (const match of text.matchAll(
    /^distributary_worker_event_loop_delay_seconds\{worker="(\d+)",quantile="([^"]+)"\} (\S+)$/gm,
  )) {
    const priority = scheduling.get(match[1] ?? "");
    const series = `worker ${match[1]}${priority === undefined ? "" : ` (${priority})`}`;
    const entry = bySeries.get(series) ?? { p99: 0, max: 0 };
    entry[match[2] === "0.99" ? "p99" : "max"] = Number(match[3]) * 1000;
    bySeries.set(series, entry);
  }
  return [...bySeries].map(([series, { p99, max }]) => ({ series, p99, max }));
};

interface ApiLoad {
  readonly stop: () => Promise<{ requests: number; durations: number[] }>;
}
const driveApi = async (service: Service, clients: number): Promise<ApiLoad> => {
  // 20 WebSockets a token is the service's limit: viewer tokens for the sockets, 20 to each.
  const tokens = await service.viewerTokens(Math.ceil(clients / 20));
  const sockets = Array.from(
    { length: clients },
    (_, i) => new WebSocket(`${service.base.replace("http", "ws")}/ws?token=${tokens[Math.floor(i / 20)]}`),
  );
  let running = true;
  const durations: number[] = [];
  const pollers = Array.from({ length: clients }, async () => {
    while (running) {
      const at = performance.now();
      const response = await fetch(`${service.base}/api/channels`, {
        headers: { authorization: `Bearer ${service.admin}` },
      }).catch(() => null);
      await response?.arrayBuffer();
      durations.push(performance.now() - at);
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(pollers);
      for (const socket of sockets) socket.close();
      return { requests: durations.length, durations };
    },
  };
};

type HealthTally = NonNullable<Measured["health"]>;

/** What the channels' health rules say of our inputs (only with --health), at one moment of the window. */
const healthTally = async (service: {
  readonly base: string;
  readonly admin: string;
}): Promise<HealthTally | null> => {
  if (HEALTH === null) return null;
  const response = await fetch(`${service.base}/api/channels`, {
    headers: { authorization: `Bearer ${service.admin}` },
  });
  const { channels } = (await response.json()) as {
    channels: ReadonlyArray<{
      inputs: ReadonlyArray<{
        health: { state: string; rules: Record<string, { state: boolean | null; figure: string }> } | null;
      }>;
    }>;
  };
  const judged = channels.flatMap((channel) => channel.inputs.flatMap((input) => input.health ?? []));
  return {
    judged: judged.length,
    unhealthy: judged.filter((health) => health.state === "unhealthy").length,
    holding: [
      ...new Set(
        judged.flatMap((health) =>
          Object.entries(health.rules)
            .filter(([, rule]) => rule.state === true)
            .map(([name, rule]) => `${name}: ${rule.figure}`),
        ),
      ),
    ],
  };
};

/** Each channel's forwarding worker (`load C` → the worker it runs on), read from /api/channels. */
const placements = async (service: Service): Promise<ReadonlyMap<number, number | null>> => {
  const response = await fetch(`${service.base}/api/channels`, {
    headers: { authorization: `Bearer ${service.admin}` },
  });
  const { channels } = (await response.json()) as {
    channels: ReadonlyArray<{ name: string; worker: number | null }>;
  };
  return new Map(channels.map((channel) => [Number(channel.name.replace("load ", "")), channel.worker]));
};

/**
 * The window's tallies as one: the inputs judged and unhealthy at the last scrape (at the first, an input may
 * still be clearing from before its stream began: no PCR, no video yet), every rule that held at any.
 */
const windowTally = (tallies: ReadonlyArray<HealthTally>): HealthTally => ({
  judged: tallies.at(-1)?.judged ?? 0,
  unhealthy: tallies.at(-1)?.unhealthy ?? 0,
  holding: [...new Set(tallies.flatMap((tally) => tally.holding))],
});

export interface Measured {
  readonly name: string;
  readonly apiClients: number;
  readonly windowSeconds: number;
  readonly source: { readonly whole: SourceCounts; readonly windowStart: SourceCounts };
  /** at the window's start and end (as the generator ends), and once everything in flight has landed */
  readonly sinks: Record<
    TsProtocol,
    { readonly start: SinkReport; readonly windowEnd: SinkReport; readonly end: SinkReport } | null
  >;
  /** RTMP outputs: nginx's figures at the window's ends, and the frames our outputs sent and dropped */
  readonly rtmp: {
    readonly start: NginxStat;
    readonly windowEnd: NginxStat;
    readonly frames: { readonly sent: number; readonly dropped: number } | null;
  } | null;
  readonly cpuSeconds: number;
  readonly usageStart: Usage;
  readonly usageEnd: Usage;
  readonly samples: ReadonlyArray<{ at: number; rss: number; fds: number }>;
  readonly lag: ReadonlyArray<LagSample>;
  readonly rest: { requests: number; durations: number[] } | null;
  readonly loadAverage: ReadonlyArray<number>;
  /** Our inputs by the channels' health rules (--health, read at each scrape): judged and unhealthy at the
   * window's last scrape, the rules that held at any. */
  readonly health: {
    readonly judged: number;
    readonly unhealthy: number;
    readonly holding: ReadonlyArray<string>;
  } | null;
  /**
   * The service's channels by their forwarding worker at the window's start and end (`load C` → C): a channel
   * whose worker changed moved in the window. Null for the others.
   */
  readonly placements: {
    readonly start: ReadonlyMap<number, number | null>;
    readonly end: ReadonlyMap<number, number | null>;
  } | null;
  /** --rebalance: the moves a quarter into the window and each output's longest silence during them */
  readonly rebalance: Rebalance | null;
  /** the service's threads over the window (CPU seconds by thread name), null for the others */
  readonly threads: { readonly start: Map<string, number>; readonly end: Map<string, number> } | null;
}

export const measure = async (
  contender: Contender,
  seconds: number,
  apiClients: number,
): Promise<Measured> => {
  process.stderr.write(
    `load: ${contender.name}${apiClients > 0 ? ` + ${apiClients} API clients` : ""}, ${seconds} s\n`,
  );
  const scope = Effect.runSync(Scope.make());
  try {
    for (const output of outputsOf("srt"))
      await Effect.runPromise(
        Scope.extend(srtListenerPeer({ port: output.srt, forwardTo: output.sink }), scope),
      );
    // RIST outputs reach their sinks through ristreceiver, as SRT's through srt-live-transmit.
    for (const output of outputsOf("rist"))
      await Effect.runPromise(
        Scope.extend(ristReceiverPeer({ mode: "listen", port: output.srt, udpPort: output.sink }), scope),
      );
    const udpSink = await openSink(outputsOf("udp").map((output) => output.sink));
    const srtSink = await openSink(outputsOf("srt").map((output) => output.sink));
    const ristSink = await openSink(outputsOf("rist").map((output) => output.sink));
    const sinks = [udpSink, srtSink, ristSink].filter((sink) => sink !== null);
    // Each contender knows it is ready when something has bound its input ports: nothing may hold them before
    // it starts (a contender before it still going away would pass for it).
    await eventually(
      "the input ports to be free before the next contender",
      () => !plan.some((channel) => udpBound(channel.input)),
      30_000,
    );
    const running = await contender.start();
    const source = await startSource(WARMUP + seconds);
    await sleep(WARMUP * 1000);
    for (const sink of sinks) sink.restartWindow();
    const windowStart = await source.counts();
    const udpStart = await udpSink?.report();
    const srtStart = await srtSink?.report();
    const ristStart = await ristSink?.report();
    const rtmp = outputsOf("rtmp").length > 0;
    const nginxStart = rtmp ? await nginxStat() : null;
    const usageStart = usage(running.pids());
    const service = running.service === undefined ? null : (running.pids()[0] ?? null);
    const threadsStart = service === null ? null : threadUsage(service);
    const placedStart =
      running.service === undefined ? null : await placements(running.service).catch(() => null);
    const startedAt = performance.now();
    const samples: Array<{ at: number; rss: number; fds: number }> = [];
    const lag: LagSample[] = [];
    const tallies: HealthTally[] = [];
    const probes: number[] = [];
    const api =
      running.service !== undefined && apiClients > 0 ? await driveApi(running.service, apiClients) : null;
    // --rebalance: a quarter into the window, while the generator still sends for three quarters of it.
    const rebalancing =
      REBALANCE && running.service !== undefined && udpSink !== null
        ? sleep((seconds * 1000) / 4).then(() =>
            rebalance(running.service as Service, udpSink, startedAt).catch((error: unknown) => {
              process.stderr.write(`load: the rebalance failed: ${String(error)}\n`);
              return null;
            }),
          )
        : Promise.resolve(null);
    let sampling = true;
    let scrapedAt = Number.NEGATIVE_INFINITY;
    const sampler = (async () => {
      while (sampling) {
        const now = usage(running.pids());
        samples.push({ at: (performance.now() - startedAt) / 1000, rss: now.rss, fds: now.fds });
        if (running.service !== undefined) {
          // Half a sample of slack: the samples drift by the time each takes, and a scrape is not put off a whole one.
          if (performance.now() - scrapedAt >= SCRAPE_MS - SAMPLE_MS / 2) {
            scrapedAt = performance.now();
            lag.push(...(await scrapeLag(running.service.base).catch(() => [])));
            const tally = await healthTally(running.service).catch(() => null);
            if (tally !== null) tallies.push(tally);
          }
          if (api === null) {
            const at = performance.now();
            const response = await fetch(`${running.service.base}/api/channels`, {
              headers: { authorization: `Bearer ${running.service.admin}` },
            }).catch(() => null);
            await response?.arrayBuffer();
            probes.push(performance.now() - at);
          }
        }
        await sleep(SAMPLE_MS);
      }
    })();
    const whole = await source.done;
    const rebalanced = await rebalancing;
    const usageEnd = usage(running.pids());
    const threadsEnd = service === null ? null : threadUsage(service);
    const placedEnd =
      running.service === undefined ? null : await placements(running.service).catch(() => null);
    const windowSeconds = (performance.now() - startedAt) / 1000;
    // read at the same moments as the generator's counts, so that what is in flight is left out at both ends
    const udpWindowEnd = await udpSink?.report();
    const srtWindowEnd = await srtSink?.report();
    const ristWindowEnd = await ristSink?.report();
    const nginxEnd = rtmp ? await nginxStat() : null;
    sampling = false;
    await sampler;
    const rest =
      api !== null
        ? await api.stop()
        : running.service
          ? { requests: probes.length, durations: probes }
          : null;
    // what is still in flight lands before the sinks are read
    await sleep(1000);
    const udpEnd = await udpSink?.close();
    const srtEnd = await srtSink?.close();
    const ristEnd = await ristSink?.close();
    const frames = rtmp && running.service !== undefined ? await rtmpFrames(running.service) : null;
    const health = tallies.length === 0 ? null : windowTally(tallies);
    await running.stop();
    return {
      name: contender.name,
      apiClients: api === null ? 0 : apiClients,
      windowSeconds,
      source: { whole, windowStart },
      sinks: {
        udp:
          udpStart && udpWindowEnd && udpEnd
            ? { start: udpStart, windowEnd: udpWindowEnd, end: udpEnd }
            : null,
        srt:
          srtStart && srtWindowEnd && srtEnd
            ? { start: srtStart, windowEnd: srtWindowEnd, end: srtEnd }
            : null,
        rist:
          ristStart && ristWindowEnd && ristEnd
            ? { start: ristStart, windowEnd: ristWindowEnd, end: ristEnd }
            : null,
      },
      rtmp: nginxStart && nginxEnd ? { start: nginxStart, windowEnd: nginxEnd, frames } : null,
      cpuSeconds: usageEnd.cpuSeconds - usageStart.cpuSeconds,
      usageStart,
      usageEnd,
      samples,
      lag,
      rest,
      loadAverage: loadavg(),
      health,
      placements: placedStart === null || placedEnd === null ? null : { start: placedStart, end: placedEnd },
      rebalance:
        rebalanced === null || udpWindowEnd === undefined ? null : withSilences(rebalanced, udpWindowEnd),
      threads: threadsStart === null || threadsEnd === null ? null : { start: threadsStart, end: threadsEnd },
    };
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void));
  }
};
