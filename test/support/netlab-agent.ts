/**
 * The network lab's helper process, run inside a namespace (test/support/netlab.ts starts it with
 * `ip netns exec`), since the test process itself stays in the root namespace.
 *
 *   node netlab-agent.ts relay <listen addr:port> <to addr:port> [delayMs] [jitterMs] [reorder]
 *       Forwards UDP both ways between whoever sends to <listen> and <to>, each datagram held delayMs ± jitterMs
 *       (this kernel has no netem). Order is kept unless `reorder` is given. Prints "ready" when bound.
 *   node netlab-agent.ts sink <bind addr:port> [group]
 *       Writes every datagram to stdout as [u32 length][f64 arrival, epoch ms][bytes]; joins `group` (bound to
 *       it) when given. Prints "ready" on stderr when bound.
 *   node netlab-agent.ts send <file> <slots per ms> <to addr:port>...
 *       Sends a schedule written by `writeSchedule` (netlab.ts): slot after slot, each slot's datagrams to
 *       their destinations, one socket per destination. Prints "sending <epoch ms>" and "done" on stderr.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { readFileSync } from "node:fs";
import { pace } from "./pace.ts";

const [mode, ...args] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();
/** `address:port`, an IPv6 address in brackets (`[fd00:6::2]:7000`). */
const endpoint = (text: string | undefined) => {
  const at = (text ?? "").lastIndexOf(":");
  return {
    address: (text ?? "").slice(0, at).replace(/^\[(.*)\]$/, "$1"),
    port: Number((text ?? "").slice(at + 1)),
  };
};
const family = (address: string) => (address.includes(":") ? "udp6" : "udp4");
process.on("SIGTERM", () => process.exit(0));

interface Held {
  due: number;
  socket: Socket;
  datagram: Buffer;
  address: string;
  port: number;
}

/** One direction's queue: datagrams leave at their due time, in due order. */
const delayLine = (delayMs: number, jitterMs: number, reorder: boolean) => {
  const queue: Held[] = [];
  let lastDue = 0;
  let timer: NodeJS.Timeout | undefined;
  const drain = () => {
    timer = undefined;
    const at = now();
    while (queue.length > 0 && (queue[0]?.due ?? 0) <= at + 0.5) {
      const held = queue.shift() as Held;
      held.socket.send(held.datagram, held.port, held.address);
    }
    const head = queue[0];
    if (head !== undefined) timer = setTimeout(drain, Math.max(0, head.due - now()));
  };
  return (socket: Socket, datagram: Buffer, address: string, port: number) => {
    let due = now() + delayMs + (jitterMs === 0 ? 0 : (Math.random() * 2 - 1) * jitterMs);
    if (!reorder) due = Math.max(due, lastDue);
    lastDue = Math.max(lastDue, due);
    const held = { due, socket, datagram, address, port };
    let at = queue.length;
    while (at > 0 && (queue[at - 1]?.due ?? 0) > due) at--;
    queue.splice(at, 0, held);
    if (at === 0) {
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(drain, Math.max(0, due - now()));
    }
  };
};

const bound = (socket: Socket, address: string, port: number) =>
  new Promise<void>((done) => socket.bind(port, address, () => done()));

if (mode === "relay") {
  const listen = endpoint(args[0]);
  const to = endpoint(args[1]);
  const delayMs = Number(args[2] ?? 0);
  const jitterMs = Number(args[3] ?? 0);
  const reorder = args[4] === "reorder";
  const forward = delayLine(delayMs, jitterMs, reorder);
  const back = delayLine(delayMs, jitterMs, reorder);
  const front = createSocket("udp4");
  const upstreams = new Map<string, Socket>();
  front.on("message", (datagram: Buffer, from: RemoteInfo) => {
    const key = `${from.address}:${from.port}`;
    let upstream = upstreams.get(key);
    if (upstream === undefined) {
      const socket = createSocket("udp4");
      socket.on("message", (reply: Buffer) => back(front, reply, from.address, from.port));
      socket.bind(0);
      upstreams.set(key, socket);
      upstream = socket;
    }
    forward(upstream, datagram, to.address, to.port);
  });
  await bound(front, listen.address, listen.port);
  front.setRecvBufferSize(8 * 1024 * 1024);
  process.stdout.write("ready\n");
} else if (mode === "sink") {
  const at = endpoint(args[0]);
  const group = args[1];
  const socket = createSocket({ type: family(at.address), reuseAddr: true });
  let pending: Buffer[] = [];
  const flush = () => {
    const chunk = Buffer.concat(pending);
    pending = [];
    process.stdout.write(chunk);
  };
  socket.on("message", (datagram: Buffer) => {
    const header = Buffer.allocUnsafe(12);
    header.writeUInt32LE(datagram.length, 0);
    header.writeDoubleLE(now(), 4);
    if (pending.length === 0) setImmediate(flush);
    pending.push(header, datagram);
  });
  await bound(socket, group ?? at.address, at.port);
  socket.setRecvBufferSize(8 * 1024 * 1024);
  // An IPv6 group is joined on the interface the route to it names; an IPv4 one on the sink's address.
  if (group !== undefined)
    socket.addMembership(group, family(at.address) === "udp6" ? undefined : at.address);
  process.stderr.write("ready\n");
} else if (mode === "send") {
  const file = readFileSync(args[0] ?? "");
  const perMs = Number(args[1] ?? 1);
  const destinations = args.slice(2).map(endpoint);
  const sockets = destinations.map((destination) => createSocket(family(destination.address)));
  // Bound now so that multicast may cross a router (the default TTL, 1, stays on the link).
  for (const socket of sockets) {
    await bound(socket, "", 0);
    socket.setMulticastTTL(8);
  }
  const slots: Array<Array<{ to: number; datagram: Buffer }>> = [];
  for (let offset = 0; offset < file.length; ) {
    const count = file.readUInt16LE(offset);
    offset += 2;
    const slot: Array<{ to: number; datagram: Buffer }> = [];
    for (let i = 0; i < count; i++) {
      const to = file.readUInt8(offset);
      const length = file.readUInt16LE(offset + 1);
      slot.push({ to, datagram: file.subarray(offset + 3, offset + 3 + length) });
      offset += 3 + length;
    }
    slots.push(slot);
  }
  process.stderr.write(`sending ${now()}\n`);
  pace(
    slots.length,
    perMs,
    (index, sent) => {
      let started = 0;
      for (const { to, datagram } of slots[index] ?? []) {
        const destination = destinations[to];
        const socket = sockets[to];
        if (destination === undefined || socket === undefined) continue;
        socket.send(datagram, destination.port, destination.address, sent);
        started++;
      }
      return started;
    },
    () => {
      process.stderr.write("done\n");
      process.exit(0);
    },
  );
} else {
  process.stderr.write(`unknown mode ${mode}: relay, sink or send\n`);
  process.exit(2);
}
