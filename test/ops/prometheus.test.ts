/**
 * The metrics as on-call staff meet them: a real Prometheus (Debian's) scrapes the service while a channel
 * streams TS with SCTE-35 cues, one SRT output cannot connect, and the primary input goes silent so the backup
 * takes over. Every expression of every Grafana panel returns data, every metric an alert rule names exists,
 * the output-down and running-on-backup alerts go pending, the output bitrate from rate() matches the stream,
 * the cue counters match the cues sent, and no planted secret reaches /metrics or the log.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Either, Layer, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { base64ToBytes } from "../../src/core/scte35/index.ts";
import { OutputDefaults } from "../../src/effects/channel/channels.ts";
import { ADMIN_TOKEN, eventually, freeUdpPort, json, useTestApp } from "../support/app.ts";
import { fixturePath } from "../support/fixtures.ts";
import { ForeignDatagrams } from "../support/foreign.ts";
import * as peers from "../support/peers.ts";
import { ristReceiverPeer } from "../support/rist-peers.ts";
import { asRtp, chunkTs, sendInterleaved, sendPaced } from "../support/sender.ts";
import { servicePort } from "../support/service.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const STREAM_KEY = "planted-stream-key-4d1c9a";
const PASSPHRASE = "planted-passphrase-77e0b3";
const CHANNEL = "ops";
/** Datagrams per millisecond: 0.2 × 1316 bytes = 263,200 TS bytes a second (2.1 Mbit/s). */
const PACE = 0.2;
const BYTES_PER_SECOND = PACE * 1000 * 7 * 188;

interface Sample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

const app = useTestApp({
  extra: Layer.succeed(OutputDefaults, { reconnect: { firstDelay: "200 millis", maxDelay: "500 millis" } }),
});
let prometheus: { readonly url: string; readonly stop: () => Promise<void> };
const scope = Effect.runSync(Scope.make());
let scrapeToken = "";
let cuesSent = 0;
let foreignSent = 0;
/** When the last datagram was sent (Unix seconds). */
let streamEnd = 0;

const query = async (expr: string): Promise<ReadonlyArray<Sample>> => {
  const response = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await response.json()) as { status: string; error?: string; data?: { result: Sample[] } };
  if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
  return body.data?.result ?? [];
};

const startPrometheus = async (target: string, token: string) => {
  const dir = await mkdtemp(join(tmpdir(), "distributary-prometheus-"));
  // A server's TCP port (one free for UDP may be another server's: the rehearsal's Prometheus could not bind).
  const port = await servicePort();
  await writeFile(join(dir, "token"), token);
  const rules = await readFile("prometheus/alerts.yml", "utf8");
  await writeFile(join(dir, "alerts.yml"), rules);
  await writeFile(
    join(dir, "prometheus.yml"),
    [
      "global: { scrape_interval: 1s, evaluation_interval: 1s }",
      `rule_files: ["${join(dir, "alerts.yml")}"]`,
      "scrape_configs:",
      "  - job_name: distributary",
      "    authorization: { type: Bearer, credentials_file: token }",
      `    static_configs: [{ targets: ["${target}"] }]`,
    ].join("\n"),
  );
  const child = spawn(
    "prometheus",
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    { stdio: "ignore" },
  );
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    "Prometheus to be ready",
    async () => ((await fetch(`${url}/-/ready`).catch(() => null))?.ok ? true : undefined),
    30_000,
  );
  return {
    url,
    stop: async () => {
      await peers.stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
};

beforeAll(async () => {
  const port = await app.listen();
  // A scrape token of its own: a viewer token created through the API, itself a secret to keep out of logs.
  const created = await json(
    await app.request("/api/tokens", {
      method: "POST",
      body: JSON.stringify({ name: "prometheus", role: "viewer" }),
    }),
  );
  scrapeToken = String(created.token);
  prometheus = await startPrometheus(`127.0.0.1:${port}`, scrapeToken);

  const [sink, srtSink, ristSink] = await Promise.all([
    Effect.runPromise(Scope.extend(peers.udpSink, scope)),
    Effect.runPromise(Scope.extend(peers.udpSink, scope)),
    Effect.runPromise(Scope.extend(peers.udpSink, scope)),
  ]);
  const srtPeer = await Effect.runPromise(
    Scope.extend(peers.srtListenerPeer({ forwardTo: srtSink.port }), scope),
  );
  // A RIST receiver, so that the RIST link's series exist (the dashboard's RIST panels, its loss alert).
  const ristPort = await freeUdpPort();
  await Effect.runPromise(
    Scope.extend(ristReceiverPeer({ mode: "listen", port: ristPort, udpPort: ristSink.port }), scope),
  );
  const [primary, backup, nobody, rtmpNobody] = await Promise.all([
    freeUdpPort(),
    freeUdpPort(),
    freeUdpPort(),
    freeUdpPort(),
  ]);
  const response = await app.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      id: CHANNEL,
      name: "Ops Channel",
      rtp_ip: "127.0.0.1",
      rtp_port: primary,
      backup_rtp_ip: "127.0.0.1",
      backup_rtp_port: backup,
      // Health rules, so that their series exist (a rule the stream never meets: no input turns unhealthy).
      redundancy: {
        failover_after_ms: 300,
        revert: "sticky",
        health: { rules: { cc: { cc_errors: 100_000, window_ms: 1000 } }, unhealthy_when: "cc" },
      },
      expect_cues_within_s: 60,
      // A slate, so that its series exist (its stream has no picture to match: it never goes on).
      slate: { after_ms: 5000 },
      outputs: [
        { id: "udp", name: "Playout", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` },
        {
          id: "srt",
          name: "Partner",
          protocol: "srt",
          url: `srt://127.0.0.1:${srtPeer.port}?mode=caller&latency=80`,
        },
        {
          id: "dead",
          name: "Dead CDN",
          protocol: "srt",
          url: `srt://127.0.0.1:${nobody}?mode=caller&passphrase=${PASSPHRASE}`,
        },
        { id: "rist", name: "Contribution", protocol: "rist", url: `rist://127.0.0.1:${ristPort}` },
        {
          id: "rtmp",
          name: "Social",
          protocol: "rtmp",
          url: `rtmp://127.0.0.1:${rtmpNobody}/live/${STREAM_KEY}`,
        },
      ],
    }),
  });
  expect(response.status).toBe(201);
  expect((await app.request(`/api/channels/${CHANNEL}/start`, { method: "POST" })).status).toBe(200);

  // 14 s on the primary with a time_signal cue (a segmentation descriptor, placement opportunity start)
  // every 2 s, then 8 s on the backup alone: the primary goes silent and the channel fails over.
  const vectors = JSON.parse(await readFile(fixturePath("scte35", "vectors.json"), "utf8")) as Array<{
    id: string;
    encoded: string;
  }>;
  const cue = Either.getOrThrow(base64ToBytes(vectors.find((vector) => vector.id === "v001")?.encoded ?? ""));
  const generator = new TsGenerator({ seed: 11, bitrate: 2_000_000 });
  for (let at = 500; at < 14_000; at += 2000) {
    generator.insertScte35(cue, at);
    cuesSent += 1;
  }
  const seconds = (s: number) => Math.round((s * BYTES_PER_SECOND) / 188 / 7) * 7;
  // RTP, as MediaLive sends it. A stranger sends plain TS to the primary now and then: dropped, counted as
  // the other kind.
  const primaryStream = asRtp(chunkTs(generator.packets(seconds(15))));
  const stranger = new ForeignDatagrams({ ssrc: 0x5eed });
  const strangers = primaryStream.map((_, i) => (i % 100 === 50 ? stranger.of("raw_ts") : undefined));
  foreignSent = strangers.filter((datagram) => datagram !== undefined).length;
  await Effect.runPromise(
    sendInterleaved([{ datagrams: primaryStream }, { datagrams: strangers }], primary, PACE),
  );
  await Effect.runPromise(sendPaced(asRtp(chunkTs(generator.packets(seconds(8)))), backup, PACE));
  streamEnd = Date.now() / 1000;
}, 120_000);

afterAll(async () => {
  await prometheus?.stop();
  await Effect.runPromise(Scope.close(scope, { _tag: "Success", value: undefined } as never));
});

describe("Prometheus scraping a running channel", () => {
  it("the output bitrate from rate() matches the stream within 5%", async () => {
    // The backup streamed 8 s at the same pace: a 5 s window ending half a second before its end lies in it.
    const at = (streamEnd - 0.5).toFixed(3);
    const [udp] = await query(
      `rate(distributary_output_sent_bytes_total{channel="${CHANNEL}",output="udp"}[5s] @ ${at})`,
    );
    const measured = Number(udp?.value[1]);
    console.log(
      `output bitrate from rate(): ${((measured * 8) / 1e6).toFixed(3)} Mbit/s, sent ${((BYTES_PER_SECOND * 8) / 1e6).toFixed(3)} Mbit/s`,
    );
    expect(Math.abs(measured - BYTES_PER_SECOND) / BYTES_PER_SECOND).toBeLessThan(0.05);
  });

  it("the cue counters match the cues sent", async () => {
    const byCommand = await query(`distributary_channel_scte35_cues_total{channel="${CHANNEL}"}`);
    expect(byCommand.map((sample) => [sample.metric.command, Number(sample.value[1])])).toEqual([
      ["time_signal", cuesSent],
    ]);
    const bySegmentation = await query(
      `distributary_channel_scte35_segmentation_descriptors_total{channel="${CHANNEL}"}`,
    );
    expect(
      bySegmentation.map((sample) => [sample.metric.segmentation_type, Number(sample.value[1])]),
    ).toEqual([["52", cuesSent]]);
  });

  it("the stranger's datagrams are counted by input and reason, and no other", async () => {
    const rejected = await query(`distributary_input_rejected_datagrams_total{channel="${CHANNEL}"}`);
    const counts = Object.fromEntries(
      rejected.map((sample) => [`${sample.metric.input}/${sample.metric.reason}`, Number(sample.value[1])]),
    );
    const reasons = [
      "not_ts",
      "other_kind",
      "foreign_ssrc",
      "payload_type",
      "sender_not_allowed",
      "own_output",
    ];
    expect(counts).toEqual(
      Object.fromEntries(
        ["primary", "backup"].flatMap((input) =>
          reasons.map((reason) => [
            `${input}/${reason}`,
            input === "primary" && reason === "other_kind" ? foreignSent : 0,
          ]),
        ),
      ),
    );
    expect(foreignSent).toBeGreaterThan(0);
  });

  it("the output-down and running-on-backup alerts become pending", async () => {
    const alerts = await eventually(
      "the two alerts",
      async () => {
        const response = await fetch(`${prometheus.url}/api/v1/alerts`);
        const body = (await response.json()) as {
          data: { alerts: Array<{ labels: Record<string, string>; state: string }> };
        };
        const names = body.data.alerts.map(
          (alert) =>
            `${alert.labels.alertname}/${alert.labels.output ?? alert.labels.channel}/${alert.state}`,
        );
        return names.includes("DistributaryOutputDown/dead/pending") &&
          names.includes(`DistributaryRunningOnBackup/${CHANNEL}/pending`)
          ? names
          : undefined;
      },
      20_000,
    );
    // The connected outputs do not alert.
    expect(
      alerts.filter(
        (name) =>
          name.startsWith("DistributaryOutputDown/udp") || name.startsWith("DistributaryOutputDown/srt/"),
      ),
    ).toEqual([]);
  });

  it("every expression of every dashboard panel returns data", async () => {
    const empty: string[] = [];
    for (const name of ["fleet", "channel", "outputs", "scte35"]) {
      const dashboard = JSON.parse(await readFile(`grafana/dashboards/${name}.json`, "utf8")) as {
        panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
      };
      // The MediaLive panel reads a channel linked to MediaLive (test/medialive/ checks its series).
      for (const panel of dashboard.panels.filter((candidate) => !candidate.title.startsWith("MediaLive"))) {
        for (const target of panel.targets ?? []) {
          const expr = target.expr.replaceAll("$channel", CHANNEL);
          if ((await query(expr)).length === 0) empty.push(`${name} / ${panel.title}: ${expr}`);
        }
      }
    }
    expect(empty).toEqual([]);
  });

  it("every metric an alert rule names exists", async () => {
    const rules = parse(await readFile("prometheus/alerts.yml", "utf8")) as {
      groups: Array<{ name: string; rules: Array<{ alert: string; expr: string }> }>;
    };
    const missing: string[] = [];
    // The fleet's group names series only nodes of a fleet have (test/fleet/ checks them there), the MediaLive
    // group series only channels linked to MediaLive have (test/medialive/ checks them there), the notifications'
    // series only notifiers that sent something have (test/notify/webhooks.test.ts checks them there).
    const oneBox = rules.groups.filter(
      (group) =>
        group.name !== "distributary-fleet" &&
        group.name !== "distributary-medialive" &&
        group.name !== "distributary-notifications",
    );
    for (const rule of oneBox.flatMap((group) => group.rules)) {
      const names = rule.expr.match(/\b(?:distributary_[a-z0-9_]+|nodejs_[a-z0-9_]+|up)(?=[{\s[)]|$)/g) ?? [];
      for (const metric of new Set(names)) {
        if ((await query(`count(${metric})`)).length === 0) missing.push(`${rule.alert}: ${metric}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("no planted stream key, passphrase or token in /metrics or the log; labels stay bounded", async () => {
    const response = await app.request("/metrics", { token: scrapeToken });
    expect(response.status).toBe(200);
    const text = await response.text();
    const log = app.logs.join("\n");
    for (const secret of [STREAM_KEY, PASSPHRASE, scrapeToken, ADMIN_TOKEN]) {
      expect(text).not.toContain(secret);
      expect(log).not.toContain(secret);
    }
    // Label values are ids, fixed words and numbers; names only in the _info metrics; never a URL or address.
    expect(text).not.toMatch(/(srt|rtmp|udp):\/\//);
    expect(text).not.toMatch(/127\.0\.0\.1/);
    expect((await app.request("/metrics", { token: null })).status).toBe(401);
  });
});
