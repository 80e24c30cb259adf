/**
 * The load harness's UDP sink (load-tests/udp-sink.c), built with cc as the harness builds it, judging a
 * rebalance's silences: two ports each go 80 ms without a datagram inside the span. On one the generator
 * stalled (the datagrams after the silence carry a later send stamp): the forwarding added nothing. On the
 * other the stream was held on its way (the datagrams after it were stamped on time, before the silence
 * ended): the forwarding added the silence whole. The raw silence is 80 ms on both.
 */
import { execFileSync, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort } from "../support/app.ts";

const dir = mkdtempSync(join(tmpdir(), "distributary-udp-sink-"));
const binary = join(dir, "udp-sink");
execFileSync("cc", ["-O2", "-o", binary, join(import.meta.dirname, "../../load-tests/udp-sink.c")]);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MAGIC = Buffer.from("DSTRSTMP");
const nowNs = () => BigInt(Date.now()) * 1_000_000n;

/** Seven TS packets on PID 0x100, the first a plain payload packet carrying the stamp (magic, send time). */
const datagram = (cc: number, sentNs: bigint) => {
  const out = Buffer.alloc(7 * 188, 0xff);
  for (let p = 0; p < 7; p++) {
    const at = p * 188;
    out[at] = 0x47;
    out[at + 1] = 0x01;
    out[at + 2] = 0x00;
    out[at + 3] = 0x10 | ((cc + p) & 0x0f);
  }
  MAGIC.copy(out, 4);
  out.writeBigUInt64LE(sentNs, 12);
  return out;
};

describe("the load harness's UDP sink", () => {
  it("counts a silence the generator made as the input's, one the forwarding made as added", async () => {
    const [stalled, held] = [await freeUdpPort(), await freeUdpPort()];
    const sink = spawn(binary, [String(stalled), String(held)], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    sink.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    const socket = createSocket("udp4");
    try {
      await eventually("the sink ready", () => (out.includes("ready") ? true : undefined));
      let cc = 0;
      const send = (port: number, sentNs: bigint) =>
        new Promise<void>((done) => socket.send(datagram(cc++, sentNs), port, "127.0.0.1", () => done()));
      const both = async () => {
        await send(stalled, nowNs());
        await send(held, nowNs());
        await sleep(2);
      };
      for (let i = 0; i < 20; i++) await both();
      sink.kill("SIGHUP");
      for (let i = 0; i < 10; i++) await both();
      // 80 ms without a datagram on either port: what the held port's stream would have carried is stamped
      // at its due times, then sent late all at once.
      const heldStamps: bigint[] = [];
      for (let i = 0; i < 40; i++) {
        heldStamps.push(nowNs());
        await sleep(2);
      }
      for (const stamp of heldStamps) await send(held, stamp);
      for (let i = 0; i < 20; i++) await both();
      sink.kill("SIGHUP");
      for (let i = 0; i < 5; i++) await both();
      sink.kill("SIGUSR1");
      await eventually("the sink's report", () => (out.includes("end") ? true : undefined));
    } finally {
      socket.close();
      sink.kill("SIGTERM");
    }
    const line = (port: number) => {
      const fields =
        out
          .split("\n")
          .find((l) => l.startsWith(`${port} `))
          ?.split(" ") ?? [];
      return { silenceMs: Number(fields[14]) / 1000, addedMs: Number(fields[16]) / 1000 };
    };
    const stall = line(stalled);
    const hold = line(held);
    expect(stall.silenceMs).toBeGreaterThanOrEqual(75);
    expect(hold.silenceMs).toBeGreaterThanOrEqual(75);
    expect(stall.addedMs).toBeLessThan(20);
    expect(hold.addedMs).toBeGreaterThanOrEqual(70);
  });
});
