/**
 * The fleet lab's sender and receiver, run inside a namespace (test/support/fleet-lab.ts starts them with
 * `ip netns exec`). netlab-agent.ts's sink records neither the sender's address nor the port, and its sender
 * writes every copy of a datagram into the schedule; a fleet test needs both, for many channels at once.
 *
 *   node fleet-agent.ts tx <file> <datagrams per ms> <to addr:port>...
 *       Plays MediaLive's pipelines: the file's datagrams ([u16 length][bytes]...) at their pace, each one to
 *       every destination (one copy to each node's input of each channel), from one socket. Prints
 *       "sending" on stderr, and "done" once the file has been sent.
 *   node fleet-agent.ts rx <bind addr> <with bytes: 1|0> <port>...
 *       Binds every port and writes each datagram to stdout as [u16 port][u32 source IPv4][f64 arrival, epoch
 *       ms][u32 length][u16 source port][u32 RTP SSRC, 0 when not RTP] and, with bytes, the datagram itself.
 *       Prints "ready" on stderr once every port is bound.
 */
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { pace } from "./pace.ts";

const [mode, ...args] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();
process.on("SIGTERM", () => process.exit(0));

const ipv4 = (address: string) =>
  address.split(".").reduce((value, part) => ((value << 8) | Number(part)) >>> 0, 0);

if (mode === "tx") {
  const file = readFileSync(args[0] ?? "");
  const perMs = Number(args[1] ?? 1);
  const destinations = args.slice(2).map((text) => {
    const at = text.lastIndexOf(":");
    return { address: text.slice(0, at), port: Number(text.slice(at + 1)) };
  });
  const datagrams: Buffer[] = [];
  for (let offset = 0; offset < file.length; ) {
    const length = file.readUInt16LE(offset);
    datagrams.push(file.subarray(offset + 2, offset + 2 + length));
    offset += 2 + length;
  }
  const socket = createSocket("udp4");
  await new Promise<void>((bound) => socket.bind(0, () => bound()));
  socket.setSendBufferSize(4 * 1024 * 1024);
  process.stderr.write("sending\n");
  pace(
    datagrams.length,
    perMs,
    (index, sent) => {
      const datagram = datagrams[index] as Buffer;
      for (const { address, port } of destinations) socket.send(datagram, port, address, sent);
      return destinations.length;
    },
    () => {
      process.stderr.write("done\n");
      process.exit(0);
    },
  );
} else if (mode === "rx") {
  const address = args[0] ?? "";
  const withBytes = args[1] === "1";
  const ports = args.slice(2).map(Number);
  let pending: Buffer[] = [];
  const flush = () => {
    const chunk = Buffer.concat(pending);
    pending = [];
    process.stdout.write(chunk);
  };
  await Promise.all(
    ports.map(
      (port) =>
        new Promise<void>((bound) => {
          const socket = createSocket("udp4");
          socket.on("message", (datagram, from) => {
            const header = Buffer.allocUnsafe(24);
            header.writeUInt16LE(port, 0);
            header.writeUInt32LE(ipv4(from.address), 2);
            header.writeDoubleLE(now(), 6);
            header.writeUInt32LE(datagram.length, 14);
            header.writeUInt16LE(from.port, 18);
            // RTP version 2 (a TS datagram starts with 0x47, whose top bits are 01): the SSRC at bytes 8–11.
            const rtp = datagram.length >= 12 && datagram[0] !== undefined && datagram[0] >> 6 === 2;
            header.writeUInt32LE(rtp ? datagram.readUInt32BE(8) : 0, 20);
            if (pending.length === 0) setImmediate(flush);
            pending.push(header);
            if (withBytes) pending.push(datagram);
          });
          socket.bind(port, address, () => {
            socket.setRecvBufferSize(4 * 1024 * 1024);
            bound();
          });
        }),
    ),
  );
  process.stderr.write("ready\n");
} else {
  process.stderr.write(`unknown mode ${mode}: tx or rx\n`);
  process.exit(2);
}
