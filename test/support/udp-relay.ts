/**
 * A UDP relay on 127.0.0.1 that a test can cut: one network path of its own without a namespace. It forwards
 * both ways between whoever sends to its port and `to` (each sender gets an upstream socket of its own, so the
 * far end sees one peer per sender, as through a NAT), and while cut it drops every datagram either way, as a
 * link that went down. It counts what it carried towards `to`. test/support/netlab-agent.ts is the lab's relay,
 * with delay and jitter, inside a namespace.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { Effect, type Scope } from "effect";

export interface UdpRelay {
  /** The port senders send to. */
  readonly port: number;
  /** Cuts the path (true) or restores it (false). */
  readonly cut: (down: boolean) => void;
  /** Datagrams carried towards `to` so far. */
  readonly forwarded: () => number;
}

const bound = (socket: Socket, port: number) =>
  new Promise<void>((done) => socket.bind(port, "127.0.0.1", () => done()));

export const udpRelay = (to: number): Effect.Effect<UdpRelay, never, Scope.Scope> =>
  Effect.gen(function* () {
    const sockets: Array<Socket> = [];
    yield* Effect.addFinalizer(() =>
      Effect.promise(() =>
        Promise.all(sockets.map((socket) => new Promise<void>((done) => socket.close(() => done())))),
      ),
    );
    let down = false;
    let forwarded = 0;
    const front = createSocket("udp4");
    sockets.push(front);
    const upstreams = new Map<string, Socket>();
    front.on("message", (datagram: Buffer, from: RemoteInfo) => {
      if (down) return;
      const key = `${from.address}:${from.port}`;
      let upstream = upstreams.get(key);
      if (upstream === undefined) {
        const socket = createSocket("udp4");
        sockets.push(socket);
        socket.on("message", (reply: Buffer) => {
          if (!down) front.send(reply, from.port, from.address);
        });
        socket.bind(0, "127.0.0.1");
        upstreams.set(key, socket);
        upstream = socket;
      }
      forwarded++;
      upstream.send(datagram, to, "127.0.0.1");
    });
    yield* Effect.promise(() => bound(front, 0));
    front.setRecvBufferSize(8 * 1024 * 1024);
    return {
      port: front.address().port,
      cut: (value) => {
        down = value;
      },
      forwarded: () => forwarded,
    };
  });
