/**
 * Failover on what the picture, the sound and the stream say (redundancy.health), on real links: an encoder
 * sends a primary and a backup (ffmpeg-made, same PIDs, each paced by its own PCR) to the service.
 *
 * - The primary turns black and silent mid-stream and later recovers (one encode): the backup is on air within
 *   for_ms + 1 s, byte for byte, no black reaches the output after the switch, and the primary is back once it
 *   has been healthy for clear_after_ms and the revert time.
 * - Both inputs lose their video PID (a TS rule): the standby being unhealthy too, nothing switches; a channel
 *   whose slate says on_unhealthy goes on its slate until the backup is healthy again, one without stays.
 *
 *   enc ══ svc ── rx      two links enc–svc (primary, backup); UDP outputs to rx
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Effect } from "effect";
import { execa } from "execa";
import { expect, it } from "vitest";
import { payloadOffset, pidAt } from "../../src/core/ts/index.ts";
import { eventually } from "../support/app.ts";
import { channelOf, startedChannel } from "../support/lab-channel.ts";
import { encodeContentStream } from "../support/media.ts";
import { describeLab, labSend, labSink, throughService, useLab } from "../support/netlab.ts";
import { chunkAt, pacedSlots, sourced } from "../support/paced-slots.ts";
import { chunksByPcr } from "../support/pcr-chunks.ts";
import { injectFault, packetClock } from "../support/ts-faults.ts";

const FAILOVER_AFTER_MS = 500;

interface SwitchEvent {
  readonly from: string;
  readonly to: string;
  readonly reason: string;
  readonly rule?: string;
  readonly at: string;
}
interface SlateEvent {
  readonly type: string;
  readonly reason?: string;
  readonly at: string;
}

/** The video PID: the one whose PES carry stream id 0xE0. */
const videoPidOf = (ts: Uint8Array): number => {
  for (let at = 0; at + 188 <= ts.length; at += 188) {
    const packet = ts.subarray(at, at + 188);
    if ((packet[1] ?? 0) & 0x40 && packet[payloadOffset(packet) + 3] === 0xe0) return pidAt(packet);
  }
  throw new Error("no video PES in the stream");
};

/** What blackdetect finds in a TS file: the black stretches it prints, and how many pictures it decoded. */
const blackIn = async (file: string) => {
  const { stderr } = await execa(
    "ffmpeg",
    ["-hide_banner", "-nostats", "-i", file, "-an", "-vf", "blackdetect=d=0.4:pix_th=0.1", "-f", "null", "-"],
    { reject: false },
  );
  const frames = Number(/frame=\s*(\d+)/.exec(stderr)?.[1] ?? 0);
  return { black: stderr.split("\n").filter((line) => line.includes("black_start")), frames };
};

describeLab("failover on health rules", () => {
  const lab = useLab("health");
  let world: ReturnType<typeof throughService> | undefined;
  const topology = () => {
    world ??= throughService(lab);
    return world;
  };

  it("black and silent primary: the backup within for_ms + 1 s, byte for byte, no black after the switch; back after clear_after_ms and the revert", async () => {
    const { enc, svc, service, sink, udpOutput } = await topology();
    const primaryLink = await lab.link(enc, svc);
    const backupLink = await lab.link(enc, svc);
    const primaryFile = join(lab.dir, "primary.ts");
    const backupFile = join(lab.dir, "backup.ts");
    // The same programme on both (same PIDs, same codecs), at two video bitrates so that each datagram says
    // which input it came from; the primary black and silent from 6 s to 12 s.
    await Effect.runPromise(
      Effect.all(
        [
          encodeContentStream(primaryFile, [
            { kind: "programme", seconds: 6 },
            { kind: "black", seconds: 6 },
            { kind: "programme", seconds: 10 },
          ]),
          encodeContentStream(backupFile, [{ kind: "programme", seconds: 22 }], "640x360", "900k"),
        ],
        { concurrency: 2 },
      ),
    );
    const primary = chunksByPcr(await readFile(primaryFile));
    const backup = chunksByPcr(await readFile(backupFile));
    const FOR_MS = 2000;
    const CLEAR_AFTER_MS = 2000;
    const REVERT_AFTER_MS = 1000;
    const channel = await startedChannel(service, {
      name: "Health",
      rtp_ip: primaryLink.b.address,
      rtp_port: 5000,
      backup_rtp_ip: backupLink.b.address,
      backup_rtp_port: 5002,
      redundancy: {
        mode: "failover",
        failover_after_ms: FAILOVER_AFTER_MS,
        revert: "auto",
        revert_after_ms: REVERT_AFTER_MS,
        health: {
          rules: {
            black: { black: { pixel_threshold: 0.1, picture_ratio: 0.98 }, for_ms: FOR_MS },
            silent: { silent: { noise_db: -60 }, for_ms: FOR_MS },
            no_video: { pid_missing: "video", for_ms: 1000 },
          },
          unhealthy_when: "no_video || (black && silent)",
          clear_after_ms: CLEAR_AFTER_MS,
        },
      },
      outputs: [udpOutput],
    });
    const sender = await labSend(
      lab,
      enc,
      join(lab.dir, "health-schedule"),
      pacedSlots([primary, backup]),
      1,
      [`${primaryLink.b.address}:5000`, `${backupLink.b.address}:5002`],
    );
    // While on the backup: what the channel says of its primary.
    const unhealthy = await eventually(
      "the primary judged unhealthy",
      async () => {
        const view = await channelOf(service, channel);
        const health = view.inputs[0]?.health as
          | { state: string; rules: Record<string, { state: boolean | null; figure: string }> }
          | undefined;
        return health?.state === "unhealthy" && view.inputs[1]?.active === true ? health : undefined;
      },
      30_000,
    );
    await sender.done;
    const tail = Buffer.from(primary.at(-1)?.bytes ?? []);
    await eventually("the end of the primary at the output", () =>
      sink.arrivals.at(-1)?.datagram.equals(tail) ? true : undefined,
    );

    // Each datagram at the output: from which input, and which of its datagrams.
    const arrivals = sourced(sink.arrivals, primary, backup);
    expect(arrivals.filter((arrival) => arrival.input === "other")).toEqual([]);
    const switchAt = arrivals.findIndex((arrival) => arrival.input === "backup");
    const revertAt = arrivals.findIndex((arrival, i) => i > switchAt && arrival.input === "primary");
    expect(switchAt).toBeGreaterThan(0);
    expect(revertAt).toBeGreaterThan(switchAt);
    // Byte for byte: the primary from its start, then the backup's datagrams in order, then the primary's.
    const consecutive = (from: number, to: number) =>
      arrivals
        .slice(from + 1, to)
        .every((arrival, i) => arrival.index === (arrivals[from + i]?.index ?? 0) + 1);
    expect(arrivals[0]?.index).toBe(0);
    expect(consecutive(0, switchAt)).toBe(true);
    expect(consecutive(switchAt, revertAt)).toBe(true);
    expect(consecutive(revertAt, arrivals.length)).toBe(true);
    expect(arrivals.at(-1)?.index).toBe(primary.length - 1);

    // When: the black began (its first picture at the output, from the primary), the switch; the primary's
    // programme back (sent in the same slot as the backup's datagram of that time, which the output carried).
    const blackIndex = chunkAt(primary, 6);
    const blackSentAt =
      arrivals.find((arrival) => arrival.input === "primary" && arrival.index >= blackIndex)?.atMs ?? 0;
    const switchedAt = arrivals[switchAt]?.atMs ?? 0;
    const recoveredIndex = chunkAt(backup, 12);
    const recoveredAt =
      arrivals.find((arrival) => arrival.input === "backup" && arrival.index >= recoveredIndex)?.atMs ?? 0;
    const revertedAt = arrivals[revertAt]?.atMs ?? 0;
    const events = (
      (await (await service.api(`/api/channels/${channel}/events?type=input_switched`)).json()) as {
        events: SwitchEvent[];
      }
    ).events;
    console.log(
      `Health failover: the primary black and silent; on the backup ${Math.round(switchedAt - blackSentAt)} ms after its first black datagram (for_ms ${FOR_MS}); ` +
        `back on the primary ${Math.round(revertedAt - recoveredAt)} ms after its programme came back (clear_after_ms ${CLEAR_AFTER_MS} + revert_after_ms ${REVERT_AFTER_MS}); ` +
        `the primary's rules meanwhile: ${Object.entries(unhealthy.rules)
          .map(([name, rule]) => `${name} ${rule.state} (${rule.figure})`)
          .join(", ")}; ` +
        `switches: ${events.map((event) => `${event.from}→${event.to} (${event.reason}${event.rule === undefined ? "" : `: ${event.rule}`})`).join(", ")}`,
    );
    expect(switchedAt).toBeGreaterThan(blackSentAt);
    expect(switchedAt - blackSentAt).toBeLessThanOrEqual(FOR_MS + 1000);
    expect(revertedAt - recoveredAt).toBeGreaterThanOrEqual(CLEAR_AFTER_MS + REVERT_AFTER_MS - 200);
    expect(revertedAt - recoveredAt).toBeLessThanOrEqual(CLEAR_AFTER_MS + REVERT_AFTER_MS + 1500);
    expect(unhealthy.rules.black?.state).toBe(true);
    expect(unhealthy.rules.silent?.state).toBe(true);
    expect(unhealthy.rules.no_video?.state).toBe(false);
    expect(events).toMatchObject([
      { from: "primary", to: "backup", reason: "rule", rule: "black && silent" },
      { from: "backup", to: "primary", reason: "primary_restored" },
    ]);

    // What viewers saw: black before the switch (the rule's time of it), none after.
    const write = async (name: string, from: number, to: number) => {
      const file = join(lab.dir, name);
      await writeFile(file, Buffer.concat(sink.arrivals.slice(from, to).map((arrival) => arrival.datagram)));
      return file;
    };
    const before = await blackIn(await write("before.ts", 0, switchAt));
    const after = await blackIn(await write("after.ts", switchAt, arrivals.length));
    console.log(
      `blackdetect: before the switch ${before.black.join("; ")} (${before.frames} pictures); after it ${after.black.length} black stretches in ${after.frames} pictures`,
    );
    expect(before.black.length).toBe(1);
    expect(after.frames).toBeGreaterThan(200);
    expect(after.black).toEqual([]);
  }, 180_000);

  it("both inputs without their video: the standby unhealthy, nothing switches; the slate with on_unhealthy, else the primary stays; the backup once healthy again", async () => {
    const { enc, svc, rx, service, udpOutput } = await topology();
    const rxAddress = new URL(udpOutput.url).hostname;
    const [slateSink, staySink] = [
      await labSink(lab, rx, rxAddress, 7001),
      await labSink(lab, rx, rxAddress, 7002),
    ];
    const primaryLink = await lab.link(enc, svc);
    const backupLink = await lab.link(enc, svc);
    const files = [join(lab.dir, "p2.ts"), join(lab.dir, "b2.ts")] as const;
    await Effect.runPromise(
      Effect.all(
        [
          encodeContentStream(files[0], [{ kind: "programme", seconds: 20 }]),
          encodeContentStream(files[1], [{ kind: "programme", seconds: 20 }], "640x360", "900k"),
        ],
        { concurrency: 2 },
      ),
    );
    // The video PID (which carries the PCR, as ffmpeg muxes) dropped: the backup's from 3 s to 13 s, the
    // primary's from 8 s to 16 s. Each datagram keeps the time the clean stream's PCR gives it.
    const without = async (file: string, fromMs: number, forMs: number) => {
      const clean = await readFile(file);
      const pid = videoPidOf(clean);
      const { ts } = injectFault(clean, packetClock(clean, 0), { kind: "drop_pid", pid, fromMs, forMs });
      return chunksByPcr(clean).map((chunk, i) => ({
        ...chunk,
        bytes: ts.subarray(i * 1316, i * 1316 + chunk.bytes.length),
      }));
    };
    const primary = await without(files[0], 8000, 8000);
    const backup = await without(files[1], 3000, 10_000);
    const CLEAR_AFTER_MS = 1000;
    const health = {
      rules: { no_video: { pid_missing: "video", for_ms: 1000 } },
      unhealthy_when: "no_video",
      clear_after_ms: CLEAR_AFTER_MS,
    };
    const channelWith = (name: string, port: number, slate: Record<string, unknown> | null, output: number) =>
      startedChannel(service, {
        name,
        rtp_ip: primaryLink.b.address,
        rtp_port: port,
        backup_rtp_ip: backupLink.b.address,
        backup_rtp_port: port + 2,
        redundancy: { mode: "failover", failover_after_ms: FAILOVER_AFTER_MS, revert: "sticky", health },
        slate,
        outputs: [{ ...udpOutput, url: `udp://${rxAddress}:${output}` }],
      });
    const onSlate = await channelWith(
      "Slate when unhealthy",
      5010,
      { after_ms: 1000, on_unhealthy: true },
      7001,
    );
    const stays = await channelWith("Stays when unhealthy", 5020, null, 7002);
    const sender = await labSend(
      lab,
      enc,
      join(lab.dir, "both-schedule"),
      pacedSlots([primary, backup], 2),
      1,
      [5010, 5012, 5020, 5022].map(
        (port, i) => `${(i % 2 === 0 ? primaryLink : backupLink).b.address}:${port}`,
      ),
    );
    type Health =
      | { state: string; rules: Record<string, { state: boolean | null; figure: string }> }
      | undefined;
    const healthOf = async (channel: string) => {
      const view = await channelOf(service, channel);
      return {
        active: view.inputs.find((input) => input.active === true)?.role,
        primary: view.inputs[0]?.health as Health,
        backup: view.inputs[1]?.health as Health,
        slate: view.slate as { on: boolean; reason: string | null } | null,
      };
    };
    // The standby unhealthy while the primary is well: nothing moves.
    const standbyBad = await eventually(
      "the backup judged unhealthy",
      async () => {
        const now = await healthOf(stays);
        return now.backup?.state === "unhealthy" ? now : undefined;
      },
      20_000,
    );
    expect(standbyBad).toMatchObject({ active: "primary", primary: { state: "healthy" } });
    // Both unhealthy: the slate on one, the primary kept on the other.
    const bothBad = await eventually(
      "both inputs unhealthy",
      async () => {
        const [slated, stayed] = [await healthOf(onSlate), await healthOf(stays)];
        return slated.slate?.on === true && stayed.primary?.state === "unhealthy"
          ? { slated, stayed }
          : undefined;
      },
      20_000,
    );
    expect(bothBad.slated).toMatchObject({ active: "primary", slate: { on: true, reason: "unhealthy" } });
    expect(bothBad.stayed).toMatchObject({
      active: "primary",
      primary: { state: "unhealthy" },
      backup: { state: "unhealthy" },
    });
    expect(bothBad.stayed.primary?.rules.no_video?.state).toBe(true);
    await sender.done;
    const lastBackup = Buffer.from(backup.at(-1)?.bytes ?? []);
    for (const sink of [slateSink, staySink])
      await eventually("the end of the backup at the output", () =>
        sink.arrivals.at(-1)?.datagram.equals(lastBackup) ? true : undefined,
      );

    const eventsOf = async (channel: string, type: string) =>
      (
        (await (await service.api(`/api/channels/${channel}/events?type=${type}`)).json()) as {
          events: Array<SwitchEvent & SlateEvent>;
        }
      ).events;
    // When the backup's video came back: its datagram of that time at the output that stayed on the primary
    // (same slot) is not there, so its send time is read from the primary's datagram of the same slot.
    // The channel that stayed: the primary's datagrams from its first, then the backup's to its last, byte for
    // byte (a datagram of the dropped video is all null packets, the same bytes many times over: compared in
    // place, not looked up).
    const stayed = staySink.arrivals;
    const switchAt = stayed.findIndex(
      (arrival, i) => !arrival.datagram.equals(primary[i]?.bytes ?? Buffer.alloc(0)),
    );
    const backupFrom = backup.length - (stayed.length - switchAt);
    expect(switchAt).toBeGreaterThan(0);
    expect(
      stayed
        .slice(switchAt)
        .every((arrival, i) => arrival.datagram.equals(backup[backupFrom + i]?.bytes ?? Buffer.alloc(0))),
    ).toBe(true);
    const backAt = backup.findIndex((chunk) => chunk.due >= 13);
    // When the backup's video came back: the time of the primary's datagram sent in the same slot.
    const backSentAt = stayed.find((_, i) => i < switchAt && (primary[i]?.due ?? 0) >= 13)?.atMs ?? 0;
    const stayedSwitchAt = stayed[switchAt]?.atMs ?? 0;
    const stayEvents = await eventsOf(stays, "input_switched");
    const slated = sourced(slateSink.arrivals, primary, backup);
    const runs = slated
      .reduce<Array<[string, number]>>((all, arrival) => {
        const last = all.at(-1);
        if (last?.[0] === arrival.input) last[1]++;
        else all.push([arrival.input, 1]);
        return all;
      }, [])
      .map(([input, count]) => `${input}×${count}`)
      .join(" ");
    const firstSlate = slated.findIndex((arrival) => arrival.input === "other");
    /** The slate: the first stretch of datagrams from neither input (the return's bridges come later, mixed in). */
    const slateEnd = slated.findIndex((arrival, i) => i > firstSlate && arrival.input !== "other");
    const slateEvents = await eventsOf(onSlate, "slate_on");
    const slateOff = await eventsOf(onSlate, "slate_off");
    const slateSwitches = await eventsOf(onSlate, "input_switched");
    console.log(
      `Both inputs unhealthy: the stay channel on its primary until ${Math.round(stayedSwitchAt - backSentAt)} ms after the backup's video came back (clear_after_ms ${CLEAR_AFTER_MS}), then ${stayEvents.map((event) => `${event.from}→${event.to} (${event.reason}: ${event.rule})`).join(", ")}; ` +
        `the slate channel's output ${runs}, ${slateEvents.map((event) => `slate_on (${event.reason})`).join(", ")}, ${slateOff.length} slate_off, then ${slateSwitches.map((event) => `${event.from}→${event.to} (${event.reason})`).join(", ")}`,
    );
    // The standby is checked before it takes the air: the switch only once it has been healthy for clear_after_ms.
    expect(backAt).toBeGreaterThan(0);
    expect(stayedSwitchAt - backSentAt).toBeGreaterThanOrEqual(CLEAR_AFTER_MS - 200);
    expect(stayedSwitchAt - backSentAt).toBeLessThanOrEqual(CLEAR_AFTER_MS + 2000);
    expect(stayEvents).toMatchObject([{ from: "primary", to: "backup", reason: "rule", rule: "no_video" }]);
    // The slate channel: the primary, the slate (none of either input's datagrams), then the backup.
    expect(slateEvents).toMatchObject([{ reason: "unhealthy" }]);
    expect(slateOff).toHaveLength(1);
    expect(slateSwitches).toMatchObject([
      { from: "primary", to: "backup", reason: "rule", rule: "no_video" },
    ]);
    expect(firstSlate).toBeGreaterThan(0);
    expect(slateEnd - firstSlate).toBeGreaterThan(50);
    expect(slated.slice(0, firstSlate).every((arrival) => arrival.input !== "backup")).toBe(true);
    // From the return on: the backup, bridges (a keyframe's first datagram cut where it starts, each PID's
    // flagged first packet) among its first datagrams only, and nothing of the primary.
    const returned = slated.slice(slateEnd);
    expect(returned[0]?.input).toBe("backup");
    expect(returned.filter((arrival) => arrival.input === "primary")).toEqual([]);
    expect(returned.slice(100).filter((arrival) => arrival.input === "other")).toEqual([]);
    // The slate came once the primary was unhealthy too: after its video stopped (8 s into the stream).
    const primaryDarkAt = stayed.find((_, i) => (primary[i]?.due ?? 0) >= 8)?.atMs ?? 0;
    expect(slated[firstSlate]?.atMs ?? 0).toBeGreaterThan(primaryDarkAt);
  }, 180_000);
});
