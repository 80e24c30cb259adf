/**
 * The runtime adapters (src/effects/runtime/), each on the runtime it exists for: run under Node.js here, and
 * as a small script under Deno and Bun (the project's own binaries from npm) where the difference lives.
 */
import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { timerLoopDelay } from "../../src/effects/runtime/loop-delay.ts";

const root = join(import.meta.dirname, "../..");
const run = promisify(execFile);
const deno = async () => {
  const { stdout } = await run("bash", ["-c", `ls ${root}/node_modules/@deno/linux-*/deno | head -1`]);
  return stdout.trim();
};
const bun = join(root, "node_modules/bun/bin/bun.exe");

/** Runs `code` (an ES module in the project's root) on a runtime and returns what it printed. */
const onRuntime = async (runtime: "deno" | "bun", code: string): Promise<string> => {
  const args =
    runtime === "deno" ? [await deno(), ["run", "--allow-all", "--ext=ts", "-"]] : [bun, ["run", "-"]];
  const child = execFile(args[0] as string, args[1] as string[], { cwd: root, timeout: 20_000 });
  child.stdin?.end(code);
  let out = "";
  child.stdout?.on("data", (chunk) => {
    out += String(chunk);
  });
  child.stderr?.on("data", (chunk) => {
    out += String(chunk);
  });
  await new Promise((resolve) => child.once("close", resolve));
  return out;
};

/** The receive buffer the kernel gives the socket bound to 127.0.0.1:port: getsockopt on its descriptor. */
const kernelReceiveBuffer = `
import koffi from "koffi";
import { descriptorsOf, udpInodesOnPort } from "./src/effects/runtime/datagram.ts";
const getsockopt = koffi.load("libc.so.6").func("int getsockopt(int, int, int, _Out_ void *, _Inout_ uint32_t *)");
const rb = (port) => {
  const [fd] = descriptorsOf(udpInodesOnPort(port));
  const value = Buffer.alloc(4);
  getsockopt(fd, 1, 8, value, [4]);
  return value.readInt32LE(0);
};
`;

describe("receive buffer (src/effects/runtime/datagram.ts)", () => {
  for (const runtime of ["deno", "bun"] as const) {
    it(`is set on the socket itself on ${runtime}`, async () => {
      const out = await onRuntime(
        runtime,
        `${kernelReceiveBuffer}
import { createSocket } from "node:dgram";
import { setReceiveBuffer } from "./src/effects/runtime/datagram.ts";
const socket = createSocket({ type: "udp4" });
socket.bind(0, "127.0.0.1", () => {
  const before = rb(socket.address().port);
  const set = setReceiveBuffer(socket, 1 << 20);
  console.log(JSON.stringify({ set, before, after: rb(socket.address().port) }));
  socket.close();
});
`,
      );
      const result = JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>;
      // Linux doubles what is asked, for its bookkeeping.
      expect(result).toMatchObject({ set: true, after: 2 << 20 });
    });
  }

  it("Deno's own node:dgram call does not set it (why the adapter exists)", async () => {
    const out = await onRuntime(
      "deno",
      `${kernelReceiveBuffer}
import { createSocket } from "node:dgram";
const socket = createSocket({ type: "udp4" });
socket.bind(0, "127.0.0.1", () => {
  socket.setRecvBufferSize(1 << 20);
  console.log(JSON.stringify({ reported: socket.getRecvBufferSize(), kernel: rb(socket.address().port) }));
  socket.close();
});
`,
    );
    const result = JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as { kernel: number };
    // If a Deno release applies it, the adapter can go: this test says so.
    expect(result.kernel).toBeLessThan(1 << 20);
  });

  it("on Node.js it is the socket's own call", async () => {
    const { setReceiveBuffer } = await import("../../src/effects/runtime/datagram.ts");
    const socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
    expect(setReceiveBuffer(socket, 1 << 20)).toBe(true);
    expect(socket.getRecvBufferSize()).toBe(2 << 20);
    socket.close();
  });
});

describe("loop delay (src/effects/runtime/loop-delay.ts)", () => {
  it("the timer sampler sees the loop held up", async () => {
    const delay = timerLoopDelay(10);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const until = performance.now() + 150;
    while (performance.now() < until) {
      // hold the loop
    }
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(delay.max() / 1e6).toBeGreaterThan(100);
    delay.reset();
    expect(delay.max()).toBe(0);
  });

  it("on Deno the worker's measure sees a 150 ms block", async () => {
    const out = await onRuntime(
      "deno",
      `import { makeLoopDelay } from "./src/effects/runtime/loop-delay.ts";
const delay = makeLoopDelay(10);
setTimeout(() => {
  const until = performance.now() + 150;
  while (performance.now() < until) {}
  setTimeout(() => { console.log(JSON.stringify({ maxMs: delay.max() / 1e6 })); process.exit(0); }, 30);
}, 50);
`,
    );
    expect((JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as { maxMs: number }).maxMs).toBeGreaterThan(
      100,
    );
  });
});

describe("UDP sender (src/effects/runtime/udp-sender.ts)", () => {
  for (const runtime of ["bun", "deno"] as const) {
    it(`sends a burst through ${runtime === "bun" ? "Bun.udpSocket" : "send(2) through koffi"} in order, an RTP header first when given, byte for byte`, async () => {
      const received: Buffer[] = [];
      const sink = createSocket("udp4");
      sink.on("message", (message) => received.push(message));
      await new Promise<void>((resolve) => sink.bind(0, "127.0.0.1", () => resolve()));
      const out = await onRuntime(
        runtime,
        `import { nativeUdpSenderKind, openNativeUdpSender } from "./src/effects/runtime/udp-sender.ts";
const errors = [];
const sender = await openNativeUdpSender("127.0.0.1", ${sink.address().port}, (e) => errors.push(String(e)));
for (let i = 0; i < 100; i++) sender.send(new Uint8Array(1316).fill(i), i % 2 === 0 ? null : Uint8Array.of(0x80, 33, 0, i));
await new Promise((resolve) => setTimeout(resolve, 200));
await sender.close();
console.log(JSON.stringify({ kind: nativeUdpSenderKind(), errors }));
`,
      );
      sink.close();
      expect(JSON.parse(out.trim().split("\n").at(-1) ?? "{}")).toEqual({ kind: runtime, errors: [] });
      expect(received).toHaveLength(100);
      for (const [i, datagram] of received.entries()) {
        const expected = Buffer.alloc(1316, i);
        expect(
          datagram.equals(i % 2 === 0 ? expected : Buffer.concat([Buffer.of(0x80, 33, 0, i), expected])),
        ).toBe(true);
      }
    });
  }

  it("is node:dgram on Node.js, and wherever DISTRIBUTARY_UDP_SENDER=dgram", async () => {
    const { nativeUdpSenderKind } = await import("../../src/effects/runtime/udp-sender.ts");
    expect(nativeUdpSenderKind()).toBeNull();
    const out = await onRuntime(
      "bun",
      `process.env.DISTRIBUTARY_UDP_SENDER = "dgram";
const { nativeUdpSenderKind } = await import("./src/effects/runtime/udp-sender.ts");
console.log(JSON.stringify(nativeUdpSenderKind()));
`,
    );
    expect(out.trim().split("\n").at(-1)).toBe("null");
  });
});
