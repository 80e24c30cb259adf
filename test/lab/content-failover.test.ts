/**
 * Content failover in key-frame mode (the default) on time, on real links: an encoder sends a primary that
 * turns black and silent in the middle of a 2 s GOP (broadcast-like x264: B-frames, key frames every 50
 * pictures, none where the picture changes), and a healthy backup, to three channels that fail over on
 * `black`, `silent` and `black && silent` (`for_ms` 3000): each has the backup on air within for_ms + 1 s of
 * the black's first datagram, and not a GOP less half a second before for_ms (a black picture is seen only at
 * a key frame, so the black is counted from half a second after the key frame before it). A fourth
 * channel's primary stops sending while its backup flows but is itself silent: the silence failover does not
 * take it, and says why.
 *
 *   enc ══ svc ── rx      two links enc–svc (primary, backup); UDP outputs to rx
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Effect } from "effect";
import { expect, it } from "vitest";
import { eventually } from "../support/app.ts";
import { channelOf, startedChannel } from "../support/lab-channel.ts";
import { encodeContentStream } from "../support/media.ts";
import { describeLab, labSend, labSink, throughService, useLab } from "../support/netlab.ts";
import { chunkAt, pacedSlots, sourced } from "../support/paced-slots.ts";
import { chunksByPcr } from "../support/pcr-chunks.ts";

const FOR_MS = 3000;
/** Where the black begins: 1.6 s before the next key frame (the GOP is 2 s, from 0). */
const BLACK_AT_S = 6.4;
const GOP = { frames: 50, atStarts: false } as const;
const BROADCAST = ["-preset", "veryfast", "-bf", "2"] as const;

interface ChannelEvent {
  readonly type: string;
  readonly from?: string;
  readonly to?: string;
  readonly reason?: string;
  readonly rule?: string;
}
type Health =
  | {
      readonly state: string;
      readonly rules: Record<string, { state: boolean | null; figure: string }>;
      readonly watcher: { gop_ms: number | null } | null;
    }
  | undefined;

describeLab("content failover in key-frame mode", () => {
  const lab = useLab("h5");

  it("black, silent, black && silent: the backup on air within for_ms + 1 s with a 2 s GOP; a silent standby is not taken for a silence", async () => {
    const { enc, svc, rx, service, udpOutput } = await throughService(lab);
    const rxAddress = new URL(udpOutput.url).hostname;
    const primaryLink = await lab.link(enc, svc);
    const backupLink = await lab.link(enc, svc);
    const [primaryFile, backupFile] = [join(lab.dir, "primary.ts"), join(lab.dir, "backup.ts")];
    await Effect.runPromise(
      Effect.all(
        [
          encodeContentStream(
            primaryFile,
            [
              { kind: "programme", seconds: BLACK_AT_S },
              { kind: "black", seconds: 7.6 },
            ],
            "640x360",
            "1M",
            BROADCAST,
            GOP,
          ),
          encodeContentStream(
            backupFile,
            [{ kind: "programme", seconds: 14 }],
            "640x360",
            "900k",
            BROADCAST,
            GOP,
          ),
        ],
        { concurrency: 2 },
      ),
    );
    const primary = chunksByPcr(await readFile(primaryFile));
    const backup = chunksByPcr(await readFile(backupFile));
    // The fourth channel: a primary (the programme) that stops at 10 s, and for backup the stream that is
    // black and silent from 6.4 s on, judged unhealthy by its `silent` rule from about 7.4 s.
    const stopping = backup.filter((chunk) => chunk.due < 10);
    const silentBackup = primary;

    const rules = {
      black: { black: { pixel_threshold: 0.1, picture_ratio: 0.98 }, for_ms: FOR_MS },
      silent: { silent: { noise_db: -60 }, for_ms: FOR_MS },
    };
    const cases = [
      { name: "Black", when: "black", port: 5000, out: 7001 },
      { name: "Silent", when: "silent", port: 5010, out: 7002 },
      { name: "Black and silent", when: "black && silent", port: 5020, out: 7003 },
    ] as const;
    const sinks = await Promise.all(cases.map((c) => labSink(lab, rx, rxAddress, c.out)));
    const channels = await Promise.all(
      cases.map((c) =>
        startedChannel(service, {
          name: c.name,
          rtp_ip: primaryLink.b.address,
          rtp_port: c.port,
          backup_rtp_ip: backupLink.b.address,
          backup_rtp_port: c.port + 2,
          redundancy: {
            mode: "failover",
            // Long: a moment's stall of a loaded machine must not fail over on silence first.
            failover_after_ms: 2000,
            revert: "sticky",
            // No `decode`: key frames only, the default.
            health: { rules, unhealthy_when: c.when },
          },
          outputs: [{ ...udpOutput, url: `udp://${rxAddress}:${c.out}` }],
        }),
      ),
    );
    const standbySink = await labSink(lab, rx, rxAddress, 7004);
    const standby = await startedChannel(service, {
      name: "Silent standby",
      rtp_ip: primaryLink.b.address,
      rtp_port: 5030,
      backup_rtp_ip: backupLink.b.address,
      backup_rtp_port: 5032,
      redundancy: {
        mode: "failover",
        failover_after_ms: 1000,
        revert: "sticky",
        health: { rules: { silent: { silent: { noise_db: -60 }, for_ms: 1000 } }, unhealthy_when: "silent" },
      },
      outputs: [{ ...udpOutput, url: `udp://${rxAddress}:7004` }],
    });

    const sender = await labSend(
      lab,
      enc,
      join(lab.dir, "content-schedule"),
      pacedSlots([primary, backup, primary, backup, primary, backup, stopping, silentBackup]),
      1,
      [5000, 5002, 5010, 5012, 5020, 5022, 5030, 5032].map(
        (port, i) => `${(i % 2 === 0 ? primaryLink : backupLink).b.address}:${port}`,
      ),
    );
    // The GOP the watchers measure: 2 s, key frames only.
    const gop = await eventually(
      "the primary's GOP measured",
      async () => {
        const health = (await channelOf(service, channels[0] as string)).inputs[0]?.health as Health;
        return health?.watcher?.gop_ms ?? undefined;
      },
      20_000,
    );
    await sender.done;
    const lastBackup = Buffer.from(backup.at(-1)?.bytes ?? []);
    for (const sink of sinks)
      await eventually("the end of the backup at the output", () =>
        sink.arrivals.at(-1)?.datagram.equals(lastBackup) ? true : undefined,
      );

    const blackIndex = chunkAt(primary, BLACK_AT_S);
    const results = await Promise.all(
      cases.map(async (c, i) => {
        const arrivals = sourced((sinks[i] as (typeof sinks)[number]).arrivals, primary, backup);
        const switchAt = arrivals.findIndex((arrival) => arrival.input === "backup");
        const blackSentAt =
          arrivals.find((arrival) => arrival.input === "primary" && arrival.index >= blackIndex)?.atMs ?? 0;
        const events = (
          (await (await service.api(`/api/channels/${channels[i]}/events?type=input_switched`)).json()) as {
            events: ChannelEvent[];
          }
        ).events;
        return { ...c, switchAt, afterMs: (arrivals[switchAt]?.atMs ?? 0) - blackSentAt, events };
      }),
    );
    console.log(
      `Content failover, key frames only, GOP ${Math.round(gop)} ms, for_ms ${FOR_MS}, the black ${BLACK_AT_S} s into the stream: ` +
        results
          .map(
            (r) =>
              `${r.when}: the backup on air ${Math.round(r.afterMs)} ms after the black (${r.events.map((e) => `${e.from}→${e.to}, ${e.reason}: ${e.rule ?? ""}`).join("; ")})`,
          )
          .join("; "),
    );
    expect(gop).toBeGreaterThan(1800);
    expect(gop).toBeLessThan(2200);
    // Soft: each case says how it fared, and the standby's below too.
    for (const r of results) {
      expect.soft(r.switchAt, r.when).toBeGreaterThan(0);
      expect.soft(r.afterMs, r.when).toBeLessThanOrEqual(FOR_MS + 1000);
      // The sound is judged on every frame; the picture on key frames, up to a GOP less 0.5 s early.
      const early = r.when === "silent" ? 0 : gop - 500;
      expect.soft(r.afterMs, r.when).toBeGreaterThan(FOR_MS - early - 200);
      expect
        .soft(r.events, r.when)
        .toMatchObject([{ from: "primary", to: "backup", reason: "rule", rule: r.when }]);
    }

    // The silent standby: the primary stopped (by now long since), the backup flowed and was unhealthy:
    // nothing switched, and an event says why.
    const eventsOf = async (type: string) =>
      (
        (await (await service.api(`/api/channels/${standby}/events?type=${type}`)).json()) as {
          events?: ChannelEvent[];
        }
      ).events ?? [];
    expect.soft(await eventsOf("input_switched")).toEqual([]);
    await eventually("the held event", async () => {
      const events = await eventsOf("input_switch_held");
      return events.length > 0 ? events : undefined;
    });
    const view = await channelOf(service, standby);
    expect(await eventsOf("input_switch_held")).toMatchObject([
      { from: "primary", to: "backup", reason: "silence", rule: "silent" },
    ]);
    expect(view.inputs.find((input) => input.active === true)?.role).toBe("primary");
    expect((view.inputs[1]?.health as Health)?.state).toBe("unhealthy");
    // Nothing of the silent backup reached its output.
    expect(sourced(standbySink.arrivals, stopping, silentBackup).filter((a) => a.input === "backup")).toEqual(
      [],
    );
  }, 180_000);
});
