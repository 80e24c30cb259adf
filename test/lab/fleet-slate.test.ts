/**
 * The slate in a fleet ("the slate follows the holder; a takeover while on the slate stays on the slate"): two
 * real nodes a and b on one PostgreSQL, one channel listing both with a slate (1 s) and one UDP output to rx.
 * tx sends a paced 640×360 H.264 + AAC stream to both nodes' addresses (MediaLive's two pipelines); rx records
 * every datagram with its source, which tells the holders apart. In order:
 *   - while the input runs the slate is prepared on both nodes (ready), the holder on its input;
 *   - by hand: POST /slate {"on": true} sent to the standby puts the holder on the slate (reason manual, a
 *     slate_on event on the holder), and {"on": false} takes it off again;
 *   - the sender stops: rx is silent for at most about after_ms, then carries the slate (input_lost);
 *   - the holder is killed (SIGKILL): the standby takes the lease and its output carries the slate on; the gap
 *     at rx is measured and printed, what arrives from the new holder is H.264 640×360 with a keyframe within a
 *     GOP of the clip (a takeover hands over where the stream is) and decodes without an error from there on,
 *     and the new holder's view says the slate is on.
 *
 *   db, a, b, tx, rx on one bridge; PostgreSQL in db; a and b each a node
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Effect } from "effect";
import { execa } from "execa";
import { afterAll, expect, it } from "vitest";
import { json } from "../support/app.ts";
import type { Received } from "../support/fleet-analysis.ts";
import { type Receiver, type Sender, useFleetLab } from "../support/fleet-lab.ts";
import { awaitHolder, awaitOnAir, inputsOf, nowMs, pause, report, since } from "../support/fleet-scenario.ts";
import { encodeTestStream } from "../support/media.ts";
import { describeLab } from "../support/netlab.ts";
import { chunkTs, DATAGRAM_BYTES } from "../support/sender.ts";
import { pidAt, randomAccess } from "../support/ts-packets.ts";

const LEASE_MS = 3000;
const AFTER_MS = 1000;
const SECONDS = 60;
const CHANNEL = "news";
const INPUT_PORT = 5000;
const OUTPUT_PORT = 7000;
const PAIR = () => ["a", "b"];
/** What fleet-takeover.test.ts asserts of a killed holder (fast takeover): each output back within 1.5 s. */
const TAKEOVER_MS = 1500;

interface SlateView {
  readonly on: boolean;
  readonly reason: string | null;
  readonly ready: boolean;
  readonly manual?: boolean;
}

/** The longest silence between arrivals (epoch ms) in [fromMs, untilMs], and where it ends. */
const longestSilence = (
  arrivals: ReadonlyArray<Received>,
  fromMs = 0,
  untilMs = Number.POSITIVE_INFINITY,
) => {
  let gap = 0;
  let endsAt = 0;
  for (let i = 1; i < arrivals.length; i++) {
    const [before, after] = [arrivals[i - 1]?.atMs ?? 0, arrivals[i]?.atMs ?? 0];
    if (after < fromMs || before > untilMs) continue;
    if (after - before > gap) {
      gap = after - before;
      endsAt = after;
    }
  }
  return { gap, endsAt };
};

describeLab("a slate in a fleet of two nodes", () => {
  const fleet = useFleetLab("fls", { nodes: ["a", "b"], leaseMs: LEASE_MS });
  const node = (id: string) => fleet.node(id);

  const slateOf = async (id: string) =>
    ((await json(await node(id).api(`/api/channels/${CHANNEL}`))).slate ?? null) as SlateView | null;
  const slateEvents = async (id: string) =>
    (
      (await json(await node(id).api(`/api/events?channel=${CHANNEL}&limit=1000`))).events as Array<{
        type: string;
        reason?: string;
      }>
    ).filter((event) => event.type === "slate_on" || event.type === "slate_off");
  const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`${what}: not in ${timeoutMs} ms`);
      await pause(100);
    }
  };

  let receiver: Receiver | undefined;
  let sender: Sender | undefined;
  let holder = "";
  let standby = "";
  const arrivals = () => receiver?.at(OUTPUT_PORT) ?? [];
  // Before the fleet lab's own afterAll (hooks after run in reverse): nothing of the run left in tx and rx.
  afterAll(async () => {
    await sender?.stop();
    await receiver?.stop();
  });

  it("the slate is prepared on both nodes once they have seen the input", async () => {
    const source = join(fleet.lab.dir, "source.ts");
    await Effect.runPromise(encodeTestStream(source, SECONDS, "1M", "640x360"));
    const stream = await readFile(source);
    // Each node its own slate directory, as on its own machine.
    for (const id of PAIR())
      await node(id).start({ DISTRIBUTARY_SLATE_DIR: join(fleet.lab.dir, `slates-${id}`) });
    receiver = await fleet.receiver([OUTPUT_PORT], true);
    const created = await node("a").api("/api/channels", {
      method: "POST",
      body: {
        id: CHANNEL,
        name: "News",
        rtp_ip: "0.0.0.0",
        rtp_port: INPUT_PORT,
        nodes: PAIR(),
        slate: { after_ms: AFTER_MS },
        outputs: [{ id: "out", name: "rx", protocol: "udp", url: `udp://${fleet.rxAddress}:${OUTPUT_PORT}` }],
      },
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const started = await node("a").api(`/api/channels/${CHANNEL}/start`, { method: "POST" });
    expect(started.status, await started.clone().text()).toBe(200);
    holder = (await awaitHolder(fleet, [CHANNEL])).get(CHANNEL)?.holder ?? "";
    standby = holder === "a" ? "b" : "a";
    // Paced at the stream's own rate, as an encoder sends; each datagram to both nodes.
    const perMs = stream.length / SECONDS / DATAGRAM_BYTES / 1000;
    const channels = { ids: [CHANNEL], inputPorts: [INPUT_PORT], outputPorts: [OUTPUT_PORT] };
    const sentMs = nowMs();
    sender = await fleet.send("news", chunkTs(stream), perMs, inputsOf(fleet, channels, PAIR));
    await awaitOnAir(receiver, [OUTPUT_PORT], sentMs, { source: node(holder).address, count: 100 });
    await until(
      "the holder's slate to be ready",
      async () => (await slateOf(holder))?.ready === true,
      20_000,
    );
    await until(
      "the standby's slate to be ready",
      async () => (await slateOf(standby))?.ready === true,
      20_000,
    );
    expect(await slateOf(holder)).toMatchObject({ on: false, ready: true });
    expect(await slateOf(standby)).toMatchObject({ ready: true });
    // The standby's output is gated: everything at rx so far came from the holder.
    expect(new Set(arrivals().map((arrival) => arrival.source))).toEqual(new Set([node(holder).address]));
  }, 120_000);

  it("a hand switch sent to the standby puts the holder on the slate (manual), and off again", async () => {
    const switchedAt = nowMs();
    const switchTo = (on: boolean) =>
      node(standby).api(`/api/channels/${CHANNEL}/slate`, { method: "POST", body: { on } });
    const on = await switchTo(true);
    try {
      expect(on.status, await on.clone().text()).toBe(200);
      await until("the holder to be on the slate by hand", async () => (await slateOf(holder))?.on === true);
      expect(await slateOf(holder)).toMatchObject({ on: true, reason: "manual" });
      expect((await slateEvents(holder)).filter((event) => event.type === "slate_on")).toEqual([
        expect.objectContaining({ type: "slate_on", reason: "manual" }),
      ]);
      // rx still hears the channel, not silence, and no longer the input's 1 Mbit/s: the slate, a still
      // picture, is a fraction of it.
      const onSince = nowMs();
      await pause(2000);
      const onSlate = arrivals().filter((arrival) => arrival.atMs > onSince).length;
      const live = arrivals().filter(
        (arrival) => arrival.atMs > switchedAt - 2_000 && arrival.atMs <= switchedAt,
      ).length;
      report(`fleet slate: datagrams in 2 s live ${live}, on the slate by hand ${onSlate}`, []);
      expect(onSlate).toBeGreaterThan(10);
      expect(onSlate).toBeLessThan(live / 2);
      expect(longestSilence(arrivals(), onSince).gap).toBeLessThan(500);
    } finally {
      const off = await switchTo(false);
      expect(off.status, await off.clone().text()).toBe(200);
    }
    await until("the holder to be back on its input", async () => (await slateOf(holder))?.on === false);
    expect((await slateEvents(holder)).map((event) => event.type)).toEqual(["slate_on", "slate_off"]);
  }, 30_000);

  let stoppedAt = 0;
  it("the sender stops: after at most about after_ms of silence rx carries the slate (input_lost)", async () => {
    // Live for a few seconds again first.
    await pause(3000);
    stoppedAt = nowMs();
    await sender?.stop();
    await until("the holder to go on the slate", async () => (await slateOf(holder))?.on === true, 5_000);
    expect(await slateOf(holder)).toMatchObject({ on: true, reason: "input_lost" });
    await pause(3000);
    const silence = longestSilence(arrivals(), stoppedAt - 500);
    report(`fleet slate: rx's longest silence when the input stopped was ${silence.gap.toFixed(0)} ms`, []);
    expect(silence.gap).toBeLessThanOrEqual(AFTER_MS + 100);
    expect(since(receiver as Receiver, OUTPUT_PORT, stoppedAt + 2_000).length).toBeGreaterThan(10);
    expect(longestSilence(arrivals(), stoppedAt + 2_000).gap).toBeLessThan(500);
  }, 30_000);

  it("the holder killed while on the slate: the standby takes over and its output carries the slate on", async () => {
    const [old, next] = [node(holder), node(standby)];
    const killedAt = nowMs();
    await old.kill();
    await awaitHolder(fleet, [CHANNEL], standby, TAKEOVER_MS + 8_000);
    const tookOverMs = nowMs() - killedAt;
    await awaitOnAir(receiver as Receiver, [OUTPUT_PORT], killedAt, {
      source: next.address,
      count: 1,
      timeoutMs: 15_000,
    });
    // Some seconds of the new holder's slate.
    await pause(4000);
    const all = arrivals();
    const lastOld = all.findLastIndex((arrival) => arrival.source === old.address);
    const firstNew = all.findIndex((arrival) => arrival.source === next.address);
    // Nothing from both: the old holder's last datagram came before the new holder's first.
    expect(firstNew).toBeGreaterThan(lastOld);
    const gap = (all[firstNew]?.atMs ?? 0) - (all[lastOld]?.atMs ?? 0);
    const afterKill = (all[firstNew]?.atMs ?? 0) - killedAt;
    report(
      `fleet slate: takeover by ${standby} in the lease table after ${tookOverMs.toFixed(0)} ms; rx's gap ` +
        `(${holder}'s last datagram to ${standby}'s first) was ${gap.toFixed(0)} ms, ${afterKill.toFixed(0)} ms after the kill`,
      [],
    );
    expect(gap).toBeLessThan(TAKEOVER_MS + 1_000);
    expect(await slateOf(standby)).toMatchObject({ on: true, reason: "input_lost" });

    // What the new holder sent decodes without an error, as the slate's H.264 640×360.
    const after = join(fleet.lab.dir, "after-kill.ts");
    const part = Buffer.concat(
      all.slice(firstNew).flatMap((arrival) => (arrival.datagram === undefined ? [] : [arrival.datagram])),
    );
    await writeFile(after, part);
    const { stdout } = await execa("ffprobe", [
      ...["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height"],
      ...["-of", "json", after],
    ]);
    expect((JSON.parse(stdout) as { streams: unknown[] }).streams[0]).toEqual({
      codec_name: "h264",
      width: 640,
      height: 360,
    });
    // And frames of it: about 25 a second for the seconds it ran.
    const frames = await execa("ffprobe", [
      ...["-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries", "stream=nb_read_frames"],
      ...["-of", "json", after],
    ]);
    const counted = JSON.parse(frames.stdout) as { streams: Array<{ nb_read_frames: string }> };
    expect(Number(counted.streams[0]?.nb_read_frames)).toBeGreaterThan(50);
    expect((await slateEvents(standby)).filter((event) => event.type === "slate_on").at(-1)).toMatchObject({
      reason: "input_lost",
    });
    // Last: ffmpeg decodes it without an error from the first keyframe the new holder sent, which comes within a
    // GOP of the clip (1 s). A takeover hands the stream over where it is, the slate's as the input's: a
    // receiver starts again at the next keyframe, as it does at a live takeover.
    let keyframe = -1;
    for (let at = 0; at + 188 <= part.length && keyframe < 0; at += 188)
      if (pidAt(part, at) === 0x100 && randomAccess(part, at)) keyframe = at;
    expect(keyframe).toBeGreaterThanOrEqual(0);
    const fromKeyframe = join(fleet.lab.dir, "after-kill-from-keyframe.ts");
    await writeFile(fromKeyframe, part.subarray(keyframe));
    await writeFile(join(fleet.lab.dir, "before-keyframe.ts"), part.subarray(0, keyframe));
    const beforeKeyframe = Number(
      (
        await execa("ffprobe", [
          ...[
            "-v",
            "quiet",
            "-select_streams",
            "v:0",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
          ],
          ...["-of", "csv=p=0", join(fleet.lab.dir, "before-keyframe.ts")],
        ]).catch(() => ({ stdout: "0" }))
      ).stdout
        // The video stream is listed under its program too, so one count a line: the first.
        .trim()
        .split("\n")[0] || "0",
    );
    report(`fleet slate: ${beforeKeyframe} pictures from the new holder before its first keyframe`, []);
    expect(beforeKeyframe).toBeLessThanOrEqual(26);
    const decoded = await execa("ffmpeg", ["-v", "error", "-i", fromKeyframe, "-f", "null", "-"], {
      reject: false,
    });
    expect(decoded.stderr.trim()).toBe("");
    expect(decoded.exitCode).toBe(0);
  }, 60_000);
});
