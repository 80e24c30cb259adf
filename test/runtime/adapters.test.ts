/**
 * The runtime adapters (src/effects/runtime/), each on the runtime it exists for: run under Node.js here, and
 * as a small script under Deno and Bun (the project's own binaries from npm) where the difference lives.
 */
import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { timerLoopDelay } from "../../src/effects/runtime/threads/loop-delay.ts";

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
import { descriptorsOf, udpInodesOnPort } from "./src/effects/runtime/sockets/datagram.ts";
const getsockopt = koffi.load("libc.so.6").func("int getsockopt(int, int, int, _Out_ void *, _Inout_ uint32_t *)");
const rb = (port) => {
  const [fd] = descriptorsOf(udpInodesOnPort(port));
  const value = Buffer.alloc(4);
  getsockopt(fd, 1, 8, value, [4]);
  return value.readInt32LE(0);
};
`;

describe("receive buffer (src/effects/runtime/sockets/datagram.ts)", () => {
  for (const runtime of ["deno", "bun"] as const) {
    it(`is set on the socket itself on ${runtime}`, async () => {
      const out = await onRuntime(
        runtime,
        `${kernelReceiveBuffer}
import { createSocket } from "node:dgram";
import { setReceiveBuffer } from "./src/effects/runtime/sockets/datagram.ts";
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
    const { setReceiveBuffer } = await import("../../src/effects/runtime/sockets/datagram.ts");
    const socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
    expect(setReceiveBuffer(socket, 1 << 20)).toBe(true);
    expect(socket.getRecvBufferSize()).toBe(2 << 20);
    socket.close();
  });
});

describe("loop delay (src/effects/runtime/threads/loop-delay.ts)", () => {
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
      `import { makeLoopDelay } from "./src/effects/runtime/threads/loop-delay.ts";
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

describe("UDP sender on Deno (src/effects/runtime/sockets/udp-sender.ts)", () => {
  const burst = async (gso: "on" | "off") => {
    const received: Buffer[] = [];
    const sink = createSocket("udp4");
    sink.on("message", (message) => received.push(message));
    await new Promise<void>((resolve) =>
      sink.bind(0, "127.0.0.1", () => {
        sink.setRecvBufferSize(8 << 20);
        resolve();
      }),
    );
    // 300 full datagrams in one turn (several batches), a short one, and RTP-sized ones with their header.
    const out = await onRuntime(
      "deno",
      `${gso === "off" ? 'process.env.DISTRIBUTARY_UDP_GSO = "off";\n' : ""}const { openLibcSender, usesLibcSender } = await import("./src/effects/runtime/sockets/udp-sender.ts");
const errors = [];
const sender = openLibcSender("127.0.0.1", ${sink.address().port}, 1316, (e) => errors.push(String(e)));
for (let i = 0; i < 300; i++) sender.send(new Uint8Array(1316).fill(i % 256), null);
sender.send(new Uint8Array(188).fill(7), null);
const rtp = openLibcSender("127.0.0.1", ${sink.address().port}, 1328, (e) => errors.push(String(e)));
await new Promise((resolve) => setTimeout(resolve, 50));
for (let i = 0; i < 3; i++) rtp.send(new Uint8Array(1316).fill(i), new Uint8Array(12).fill(0x80 + i));
await new Promise((resolve) => setTimeout(resolve, 200));
await sender.close();
await rtp.close();
console.log(JSON.stringify({ uses: usesLibcSender(), errors }));
`,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    sink.close();
    expect(JSON.parse(out.trim().split("\n").at(-1) ?? "{}")).toEqual({ uses: true, errors: [] });
    const expected = [
      ...Array.from({ length: 300 }, (_, i) => Buffer.alloc(1316, i % 256)),
      Buffer.alloc(188, 7),
      ...Array.from({ length: 3 }, (_, i) =>
        Buffer.concat([Buffer.alloc(12, 0x80 + i), Buffer.alloc(1316, i)]),
      ),
    ];
    expect(received.length).toBe(expected.length);
    for (const [i, datagram] of received.entries()) expect(datagram.equals(expected[i] as Buffer)).toBe(true);
  };

  it("sends a burst in order, each datagram whole, batched by the kernel (UDP_SEGMENT)", () => burst("on"));
  it("and one by one with DISTRIBUTARY_UDP_GSO=off", () => burst("off"));

  it("is node:dgram on Node.js and Bun, and on Deno with DISTRIBUTARY_UDP_SENDER=dgram", async () => {
    const { usesLibcSender } = await import("../../src/effects/runtime/sockets/udp-sender.ts");
    expect(usesLibcSender()).toBe(false);
    const onBun = await onRuntime(
      "bun",
      `const { usesLibcSender } = await import("./src/effects/runtime/sockets/udp-sender.ts");
console.log(JSON.stringify(usesLibcSender()));
`,
    );
    expect(onBun.trim().split("\n").at(-1)).toBe("false");
    const onDeno = await onRuntime(
      "deno",
      `process.env.DISTRIBUTARY_UDP_SENDER = "dgram";
const { usesLibcSender } = await import("./src/effects/runtime/sockets/udp-sender.ts");
console.log(JSON.stringify(usesLibcSender()));
`,
    );
    expect(onDeno.trim().split("\n").at(-1)).toBe("false");
  });
});

describe("RIST (src/effects/runtime/ffi/librist.ts)", () => {
  for (const runtime of ["deno", "bun"] as const) {
    it(`is refused in words on ${runtime}: Node.js only`, async () => {
      const out = await onRuntime(
        runtime,
        `import { loadLibRist } from "./src/effects/runtime/ffi/librist.ts";
const loaded = loadLibRist();
console.log("lib" in loaded ? "loaded" : loaded.error);`,
      );
      expect(out).toContain(
        `RIST runs on Node.js only: librist's data and statistics reach the service through koffi's event-loop hooks, which ${runtime === "bun" ? "Bun" : "Deno"} lacks; run the service on Node.js for RIST inputs and outputs`,
      );
    });
  }
});
