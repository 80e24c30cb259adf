/**
 * Hitless moves and drains (docs/fleet.md): three nodes on PostgreSQL receive the same multicast input for
 * each channel; channels are moved between nodes twenty times and their holders drained three times while
 * every channel streams. At the receiver, every UDP output is the input byte for byte — every TS packet once,
 * in order — its RTP output's sequence goes on without a break under one SSRC, and at no moment did two nodes
 * send one output. Then two nodes receive different copies of one programme (MediaLive's two pipelines: the
 * same H.264 frames and timestamps, muxed apart): moved back and forth, the output changes copy at a random
 * access point with the discontinuity flagged, and ffmpeg decodes all of it without an error.
 *
 *   db, a, b, c, tx, rx on one bridge; PostgreSQL in db; a, b and c each a node; tx sends to multicast groups
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { expect, it } from "vitest";
import { PACKET, pidAt, signalsDiscontinuity } from "../../src/core/ts/index.ts";
import { eventually } from "../support/app.ts";
import {
  clock,
  doubleSending,
  handovers,
  longestSilence,
  type Received,
  streamIndex,
} from "../support/fleet-analysis.ts";
import { type FleetNode, useFleetLab } from "../support/fleet-lab.ts";
import {
  awaitHolder,
  awaitOnAir,
  deleteChannels,
  leaseRows,
  nowMs,
  pause,
  report,
} from "../support/fleet-scenario.ts";
import { cuedStream, newGenerator } from "../support/lab-channel.ts";
import { describeLab } from "../support/netlab.ts";

const LEASE_MS = 3000;
const BITRATE = 1_000_000;
const INPUT_PORT = 21000;
const OUTPUT_PORT = 21100;
const RTP_PORT = 21200;

/**
 * Where each datagram of the output sits in the stream (-1: not the stream's). A datagram a hand-over split (the
 * old holder sent the packets before a random access point inside it, the new one the rest) is made whole
 * again from the short ones that follow it: its first piece gets the position, the others null.
 */
const positions = (
  arrivals: ReadonlyArray<Received>,
  index: ReadonlyMap<string, number>,
  bytesOf: (arrival: Received) => Buffer | undefined = (arrival) => arrival.datagram,
) => {
  const out: Array<number | null> = [];
  for (let i = 0; i < arrivals.length; ) {
    let whole = bytesOf(arrivals[i] as Received) ?? Buffer.alloc(0);
    let j = i + 1;
    for (; whole.length < 7 * PACKET && j < arrivals.length; j++)
      whole = Buffer.concat([whole, bytesOf(arrivals[j] as Received) ?? Buffer.alloc(0)]);
    out.push(index.get(whole.toString("latin1")) ?? -1);
    for (let k = i + 1; k < j; k++) out.push(null);
    i = j;
  }
  return out;
};

/** Datagrams missing and repeated between consecutive arrivals, against the stream's order; and the splits. */
const lostAndRepeated = (at: ReadonlyArray<number | null>) => {
  let [lost, repeated, foreign, split] = [0, 0, 0, 0];
  let before: number | null = null;
  for (const now of at) {
    if (now === null) {
      split += 1;
      continue;
    }
    if (now < 0) foreign += 1;
    else if (before !== null && before >= 0) {
      if (now > before + 1) lost += now - before - 1;
      else if (now <= before) repeated += before - now + 1;
    }
    before = now;
  }
  return { lost, repeated, foreign, split };
};

describeLab("hitless moves and drains", () => {
  const fleet = useFleetLab("h1", { nodes: ["a", "b", "c"], leaseMs: LEASE_MS });
  // 150 s of TS with a cue every second: the same stream to every channel's group.
  const stream = cuedStream(newGenerator(65, BITRATE), BITRATE, 150, 1);
  const index = streamIndex(stream.datagrams);

  it("20 moves and 3 drains of 3 streaming channels over two and three nodes: every UDP output the input byte for byte, RTP sequence continuous, never two senders", async () => {
    // One at a time: three nodes starting at once on a loaded machine may each take longer than their bound.
    for (const node of fleet.nodes.values()) await node.start();
    const [a] = [fleet.node("a")];
    // Two channels on all three nodes, one on a and b only.
    const lists = [
      ["a", "b", "c"],
      ["a", "b", "c"],
      ["a", "b"],
    ] as const;
    const groups = lists.map((_, i) => `239.18.65.${i + 1}`);
    const outputPorts = lists.map((_, i) => OUTPUT_PORT + i);
    const receiver = await fleet.receiver([...outputPorts, RTP_PORT], true);
    const ids: string[] = [];
    for (const [i, nodes] of lists.entries()) {
      const created = await a.api("/api/channels", {
        method: "POST",
        body: {
          name: `Hitless ${i + 1}`,
          rtp_ip: groups[i],
          rtp_port: INPUT_PORT + 2 * i,
          nodes,
          outputs: [
            { id: `out${i}`, name: "rx", protocol: "udp", url: `udp://${fleet.rxAddress}:${outputPorts[i]}` },
            ...(i === 0
              ? [{ id: "rtp0", name: "rx rtp", protocol: "rtp", url: `rtp://${fleet.rxAddress}:${RTP_PORT}` }]
              : []),
          ],
        },
      });
      expect(created.status, await created.clone().text()).toBe(201);
      const { id } = (await created.json()) as { id: string };
      expect((await a.api(`/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
      ids.push(id);
    }
    const sender = await fleet.send(
      "hitless",
      stream.datagrams,
      stream.perMs,
      lists.map((_, i) => `${groups[i]}:${INPUT_PORT + 2 * i}`),
    );
    const running = () => [...fleet.nodes.values()].find((node) => node.running()) as FleetNode;
    const steps: string[] = [];
    /** What the nodes said of each hand-over (a node's log lasts from its last start: kept before a restart). */
    const said: string[] = [];
    const keepLog = (node: FleetNode) => {
      for (const line of node.log().split("\n"))
        if (
          /fleet: (node \w+ cut channel|channel \S+ handed from)|dropped, not sent late|no longer sends/.test(
            line,
          )
        )
          said.push(`  ${node.id}: ${/"msg":"([^"]*)"/.exec(line)?.[1] ?? line}`);
    };
    try {
      await awaitHolder(fleet, ids);
      const onAirMs = nowMs();
      await awaitOnAir(receiver, [...outputPorts, RTP_PORT], onAirMs, { count: 50 });
      const startMs = nowMs();

      const move = async (id: string, to: string) => {
        const answer = await eventually(`channel ${id} moved to ${to}`, async () => {
          const said = await running().api(`/api/channels/${id}/move`, {
            method: "POST",
            body: { node: to },
          });
          return said.status === 409 && (await said.clone().text()).includes("is not up") ? undefined : said;
        });
        expect(answer.status, await answer.clone().text()).toBe(200);
        await awaitHolder(fleet, [id], to);
      };
      /** After a hand-over, the stream runs on a while before the next. */
      const settle = () => pause(700);

      for (let n = 0; n < 20; n++) {
        const i = n % ids.length;
        const id = ids[i] as string;
        const holder = (await leaseRows(fleet)).get(id)?.holder ?? "a";
        const list = lists[i] as ReadonlyArray<string>;
        const to = list[(list.indexOf(holder) + 1) % list.length] as string;
        const at = nowMs();
        await move(id, to);
        steps.push(`move ${n + 1}: channel ${i + 1} ${holder}→${to} in ${Math.round(nowMs() - at)} ms`);
        await settle();
      }
      for (let n = 0; n < 3; n++) {
        const leases = await leaseRows(fleet);
        // The node that holds the most channels; a drained node takes nothing until it starts again.
        const counts = ["a", "b", "c"].map((node) => ({
          node,
          held: ids.filter((id) => leases.get(id)?.holder === node).length,
        }));
        const busiest = counts.sort((x, y) => y.held - x.held)[0]?.node ?? "a";
        const node = fleet.node(busiest);
        const at = nowMs();
        const answer = await node.api(`/api/nodes/${busiest}/drain`, { method: "POST" });
        expect(answer.status, await answer.clone().text()).toBe(200);
        const held = ids.filter((id) => leases.get(id)?.holder === busiest);
        await eventually(
          `node ${busiest} drained`,
          async () => {
            const now = await leaseRows(fleet);
            return held.every((id) => now.get(id)?.live === true && now.get(id)?.holder !== busiest)
              ? true
              : undefined;
          },
          20_000,
        );
        steps.push(
          `drain ${n + 1}: node ${busiest} (${held.length} channels) in ${Math.round(nowMs() - at)} ms`,
        );
        await settle();
        // Started again, it stands by once more.
        keepLog(node);
        await node.stop();
        await node.start();
        await settle();
      }
      const endMs = nowMs();
      await pause(500);
      for (const node of fleet.nodes.values()) keepLog(node);

      const lines: string[] = [];
      const results = outputPorts.map((port) => {
        const arrivals = receiver.at(port).filter((x) => x.atMs >= startMs && x.atMs <= endMs);
        const at = positions(arrivals, index);
        const counted = lostAndRepeated(at);
        const changes = handovers(arrivals);
        const doubles = doubleSending(arrivals);
        const silence = longestSilence(arrivals);
        const gaps = changes.map((change) => change.gapMs);
        // At each change of sender: the gap, and the stream's datagrams missing or repeated across it.
        for (const change of changes) {
          const i = arrivals.findIndex((x) => x.atMs === change.atMs && x.source === change.to);
          const [before, after] = [at[i - 1] ?? -1, at[i] ?? -1];
          lines.push(
            `    :${port} ${fleet.names.get(change.from)}→${fleet.names.get(change.to)} at ${clock(change.atMs)}: +${Math.round(change.gapMs)} ms, #${before} then #${after}`,
          );
        }
        lines.push(
          `  udp :${port}: ${arrivals.length} datagrams, ${changes.length} changes of sender, ` +
            `lost ${counted.lost} datagrams, repeated ${counted.repeated}, not of the stream ${counted.foreign}, split at a random access point ${counted.split}; ` +
            `gap at a change of sender max ${Math.round(Math.max(0, ...gaps))} ms; longest silence ${Math.round(silence.ms)} ms; ` +
            `windows of two senders ${doubles.length}`,
        );
        return { counted, changes, doubles, first: at[0] ?? -1 };
      });
      const rtp = receiver.at(RTP_PORT).filter((x) => x.atMs >= startMs && x.atMs <= endMs);
      let sequenceBreaks = 0;
      for (let i = 1; i < rtp.length; i++) {
        const [before, now] = [rtp[i - 1]?.datagram, rtp[i]?.datagram];
        if (before === undefined || now === undefined) continue;
        if (now.readUInt16BE(2) !== ((before.readUInt16BE(2) + 1) & 0xffff)) sequenceBreaks += 1;
      }
      const ssrcs = new Set(rtp.map((x) => x.datagram?.readUInt32BE(8)));
      const payloads = lostAndRepeated(positions(rtp, index, (x) => x.datagram?.subarray(12)));
      lines.push(
        `  rtp :${RTP_PORT}: ${rtp.length} datagrams, ${handovers(rtp).length} changes of sender, sequence breaks ${sequenceBreaks}, ` +
          `SSRCs ${ssrcs.size}, payload lost ${payloads.lost} repeated ${payloads.repeated}, windows of two senders ${doubleSending(rtp).length}`,
      );
      report("Hitless moves and drains: 3 channels (2 on a, b, c; 1 on a, b), multicast input", [
        ...steps.map((s) => `  ${s}`),
        ...lines,
        ...said,
      ]);

      for (const result of results) {
        expect(result.first).toBeGreaterThanOrEqual(0);
        expect(result.counted).toMatchObject({ lost: 0, repeated: 0, foreign: 0 });
        expect(result.doubles).toEqual([]);
        expect(result.changes.length).toBeGreaterThan(0);
      }
      expect(sequenceBreaks).toBe(0);
      expect(ssrcs.size).toBe(1);
      expect(payloads).toMatchObject({ lost: 0, repeated: 0, foreign: 0 });
      expect(doubleSending(rtp)).toEqual([]);
    } finally {
      await sender.stop();
      await receiver.stop();
      await deleteChannels(running(), ids);
    }
  }, 600_000);

  it("different copies on two nodes (MediaLive's two pipelines): 6 moves, each at a random access point aligned by PTS with the discontinuity flagged; the output decodes without an error", async () => {
    for (const node of fleet.nodes.values()) if (!node.running()) await node.start();
    const [a, b] = [fleet.node("a"), fleet.node("b")];
    const dir = await mkdtemp(join(tmpdir(), "h1-copies-"));
    const [input, output, videoPid] = [INPUT_PORT + 300, OUTPUT_PORT + 10, 0x100];
    const receiver = await fleet.receiver([output], true);
    let id = "";
    const senders: Array<{ stop: () => Promise<void> }> = [];
    try {
      // One programme encoded once (1 s GOP, constant mux rate); the second copy muxed again from it with
      // another PCR period: the same frames and PTS, other bytes.
      const [first, second] = [join(dir, "a.ts"), join(dir, "b.ts")];
      await execa("ffmpeg", [
        ...["-hide_banner", "-loglevel", "error", "-y"],
        ...["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"],
        ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "40"],
        ...["-vf", "noise=alls=40:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-threads", "1"],
        ...["-g", "25", "-pix_fmt", "yuv420p", "-b:v", "500k", "-maxrate", "500k", "-bufsize", "500k"],
        ...["-c:a", "aac", "-b:a", "64k", "-f", "mpegts", "-muxrate", "1000k", "-pcr_period", "20", first],
      ]);
      await execa("ffmpeg", [
        ...["-hide_banner", "-loglevel", "error", "-y", "-copyts", "-i", first, "-c", "copy"],
        ...[
          "-muxrate",
          "1000k",
          "-pcr_period",
          "60",
          "-muxdelay",
          "0",
          "-muxpreload",
          "0",
          "-f",
          "mpegts",
          second,
        ],
      ]);
      const datagramsOf = (file: Buffer) =>
        Array.from({ length: Math.floor(file.length / (7 * PACKET)) }, (_, i) =>
          file.subarray(i * 7 * PACKET, (i + 1) * 7 * PACKET),
        );
      const copies = [datagramsOf(await readFile(first)), datagramsOf(await readFile(second))];
      const alike = new Set(copies[0]?.map((d) => d.toString("latin1")));
      const shared = copies[1]?.filter((d) => alike.has(d.toString("latin1"))).length ?? 0;
      const created = await a.api("/api/channels", {
        method: "POST",
        body: {
          name: "Two copies",
          rtp_ip: "0.0.0.0",
          rtp_port: input,
          nodes: ["a", "b"],
          outputs: [{ id: "copies", name: "rx", protocol: "udp", url: `udp://${fleet.rxAddress}:${output}` }],
        },
      });
      expect(created.status, await created.clone().text()).toBe(201);
      id = ((await created.json()) as { id: string }).id;
      expect((await a.api(`/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
      // 40 s at the mux rate: each copy to its own node, both at once.
      const perMs = (copies[0]?.length ?? 0) / 40_000;
      senders.push(await fleet.send("copy-a", copies[0] ?? [], perMs, [`${a.address}:${input}`]));
      senders.push(await fleet.send("copy-b", copies[1] ?? [], perMs, [`${b.address}:${input}`]));
      const holder = (await awaitHolder(fleet, [id])).get(id)?.holder ?? "a";
      await awaitOnAir(receiver, [output], nowMs(), { count: 100 });
      const startMs = nowMs();
      const steps: string[] = [];
      let on = holder;
      for (let n = 0; n < 6; n++) {
        const to = on === "a" ? "b" : "a";
        const at = nowMs();
        const answer = await fleet
          .node(on)
          .api(`/api/channels/${id}/move`, { method: "POST", body: { node: to } });
        expect(answer.status, await answer.clone().text()).toBe(200);
        await awaitHolder(fleet, [id], to);
        steps.push(`  move ${n + 1}: ${on}→${to} in ${Math.round(nowMs() - at)} ms`);
        on = to;
        await pause(2500);
      }
      const endMs = nowMs();
      const arrivals = receiver.at(output).filter((x) => x.atMs >= startMs - 2000 && x.atMs <= endMs);
      const changes = handovers(arrivals);
      // At each change of sender: the first video packet the new sender sent sets discontinuity_indicator.
      const flagged = changes.map((change) => {
        const from = arrivals.findIndex((x) => x.atMs === change.atMs && x.source === change.to);
        for (const arrival of arrivals.slice(from, from + 50)) {
          const bytes = arrival.datagram ?? Buffer.alloc(0);
          for (let at = 0; at + PACKET <= bytes.length; at += PACKET)
            if (pidAt(bytes, at) === videoPid) return signalsDiscontinuity(bytes.subarray(at, at + PACKET));
        }
        return false;
      });
      // Each sender's run against its own copy: datagrams missing inside a run were lost on the way, not at a cut.
      // Indexed by the datagrams that occur once in their copy (null-only ones repeat).
      const copyIndex = copies.map((copy) => {
        const counts = new Map<string, number>();
        for (const d of copy) counts.set(d.toString("latin1"), (counts.get(d.toString("latin1")) ?? 0) + 1);
        return new Map(
          copy.flatMap((d, i) => (counts.get(d.toString("latin1")) === 1 ? [[d.toString("latin1"), i]] : [])),
        );
      });
      const runs: string[] = [];
      for (let i = 0; i < arrivals.length; ) {
        const source = arrivals[i]?.source;
        let j = i;
        while (j < arrivals.length && arrivals[j]?.source === source) j++;
        const index = copyIndex[source === a.address ? 0 : 1] ?? new Map();
        const at = positions(arrivals.slice(i, j), index);
        // Between two datagrams placed in the copy, the ones not placed (repeated in it, or altered) count as there.
        let [lost, back, unplaced, last] = [0, 0, 0, -1];
        for (const p of at) {
          if (p === null || p < 0) {
            unplaced += 1;
            continue;
          }
          if (last >= 0 && p > last + 1 + unplaced) lost += p - last - 1 - unplaced;
          if (last >= 0 && p <= last) back += 1;
          [last, unplaced] = [p, 0];
        }
        runs.push(`${fleet.names.get(source ?? "")} ${j - i} (lost ${lost}, out of order ${back})`);
        i = j;
      }
      // Each node's event log: the hand-overs it took, how, and what they lost and repeated.
      const reported: Array<Record<string, unknown>> = [];
      for (const node of [a, b]) {
        const answer = await node.api(`/api/events?type=handover&channel=${id}`);
        reported.push(
          ...(((await answer.json()) as { events?: Array<Record<string, unknown>> }).events ?? []),
        );
      }
      // The output is recorded from its first random access point, after the PAT and PMT last sent before it:
      // what came before it (the channel's start joins its input mid-picture) is no hand-over's, and no decoder
      // could read it either.
      const all = Buffer.concat(arrivals.map((x) => x.datagram ?? Buffer.alloc(0)));
      const pidIn = (at: number) => (((all[at + 1] ?? 0) & 0x1f) << 8) | (all[at + 2] ?? 0);
      const unitStart = (at: number) => ((all[at + 1] ?? 0) & 0x40) !== 0;
      const payloadAt = (at: number) =>
        at + 4 + (((all[at + 3] ?? 0) & 0x20) !== 0 ? 1 + (all[at + 4] ?? 0) : 0);
      const randomAccess = (at: number) =>
        ((all[at + 3] ?? 0) & 0x20) !== 0 && (all[at + 4] ?? 0) > 0 && ((all[at + 5] ?? 0) & 0x40) !== 0;
      let [pat, pmt, access] = [-1, -1, -1];
      let [pmtPid, picturePid] = [-1, -1];
      for (let at = 0; at + 188 <= all.length && access < 0; at += 188) {
        if (pidIn(at) === 0 && unitStart(at)) {
          pat = at;
          // The first programme's PMT PID: after the pointer field and the section's 8-byte header.
          const section = payloadAt(at) + 1 + (all[payloadAt(at)] ?? 0);
          pmtPid = (((all[section + 10] ?? 0) & 0x1f) << 8) | (all[section + 11] ?? 0);
        } else if (pidIn(at) === pmtPid && unitStart(at)) {
          pmt = at;
          // Its first stream (the video): after the section's 12-byte header and the programme's descriptors.
          const section = payloadAt(at) + 1 + (all[payloadAt(at)] ?? 0);
          const es = section + 12 + ((((all[section + 10] ?? 0) & 0x0f) << 8) | (all[section + 11] ?? 0));
          picturePid = (((all[es + 1] ?? 0) & 0x1f) << 8) | (all[es + 2] ?? 0);
        } else if (pat >= 0 && pmt >= 0 && pidIn(at) === picturePid && unitStart(at) && randomAccess(at))
          access = at;
      }
      expect(access, "a random access point at the output, after a PAT and a PMT").toBeGreaterThanOrEqual(0);
      const firstChange = arrivals.findIndex((x) => x.source !== arrivals[0]?.source);
      const beforeChange = arrivals.slice(0, firstChange).reduce((n, x) => n + (x.datagram?.length ?? 0), 0);
      expect(access, "the first random access point before the first hand-over").toBeLessThan(beforeChange);
      // It ends before the last picture's PES: the recording stops wherever the senders stopped, mid-picture.
      let end = all.length - (all.length % 188);
      while (end > access && !(pidIn(end - 188) === picturePid && unitStart(end - 188))) end -= 188;
      expect(end - 188, "a picture after the last hand-over").toBeGreaterThan(access);
      const captured = join(dir, "out.ts");
      await writeFile(
        captured,
        Buffer.concat([
          all.subarray(pat, pat + 188),
          all.subarray(pmt, pmt + 188),
          all.subarray(access, end - 188),
        ]),
      );
      const decoded = await execa("ffmpeg", ["-v", "error", "-i", captured, "-f", "null", "-"], {
        reject: false,
      });
      const errors = decoded.stderr.split("\n").filter((line) => line.trim() !== "");
      const pictures = await execa("ffprobe", [
        ...["-v", "quiet", "-select_streams", "v", "-show_entries", "frame=pts,decode_error_flags,key_frame"],
        ...["-of", "csv=p=0", captured],
      ]);
      const damaged = pictures.stdout
        .split("\n")
        .map((line) => line.split(","))
        .filter((fields) => fields.length >= 3 && !["", "0"].includes(fields.at(-1) ?? ""))
        .map((fields) => fields.join("/"));
      const frames = await execa("ffprobe", [
        ...["-v", "error", "-select_streams", "v", "-count_frames", "-show_entries", "stream=nb_read_frames"],
        ...["-of", "csv=p=0", captured],
      ]);
      const said: string[] = [];
      for (const node of [a, b])
        for (const line of node.log().split("\n"))
          if (line.includes(id) && /handed from|cut channel/.test(line))
            said.push(`  ${node.id}: ${/"msg":"([^"]*)"/.exec(line)?.[1] ?? line}`);
      report(
        `Different copies on a and b (${shared} of ${copies[1]?.length} datagrams of b's copy also in a's)`,
        [
          ...steps,
          `  output :${output}: ${arrivals.length} datagrams, ${changes.length} changes of sender (gaps ${changes.map((c) => Math.round(c.gapMs)).join(", ")} ms), ` +
            `discontinuity flagged at ${flagged.filter(Boolean).length} of them, windows of two senders ${doubleSending(arrivals).length}; ` +
            `ffmpeg decoded ${frames.stdout.trim()} pictures with ${errors.length} errors`,
          ...errors.slice(0, 10).map((line) => `    ${line}`),
          `  runs by sender: ${runs.join("; ")}`,
          `  pictures decoded with an error, by PTS: ${damaged.join(", ") || "none"}`,
          `  handover events: ${reported.map((e) => `${e.from}→${e.to} ${e.kind} ${e.mode} lost ${e.lost} repeated ${e.repeated} ${e.duration_ms} ms`).join("; ")}`,
          ...said,
        ],
      );
      expect(changes.length).toBeGreaterThanOrEqual(6);
      expect(flagged.every(Boolean)).toBe(true);
      expect(doubleSending(arrivals)).toEqual([]);
      expect(reported.filter((e) => e.kind === "move" && e.mode === "pts").length).toBe(6);
      expect(errors).toEqual([]);
      expect(said.filter((line) => line.includes("first random access point of its copy")).length).toBe(6);
    } finally {
      for (const sender of senders) await sender.stop();
      await receiver.stop();
      if (id !== "") await deleteChannels(a, [id]);
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
