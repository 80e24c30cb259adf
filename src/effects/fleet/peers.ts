/**
 * What one node learns of another over the network, never through the database: whether its process is there
 * (a TCP connection to its port: refused means the host answers but the process is gone, the fast takeover's
 * sign; no answer at all means it cannot be told apart from a partition), whether it reaches the database (the
 * question a holder asks before it fences itself), and its own view of the channels it holds.
 */
import { connect, type Socket } from "node:net";
import type { ChannelView } from "../../domain/views/views.ts";

export type PortProbe = "open" | "refused" | "silent";

/**
 * Connects to the node's URL's port. With `keep`, a connection that opens is kept and returned (nothing is
 * sent on it); without, it hangs up at once.
 */
const connectPort = (
  url: string,
  timeoutMs: number,
  keep: boolean,
): Promise<{ readonly probe: PortProbe; readonly socket: Socket | null }> =>
  new Promise((resolve) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      resolve({ probe: "silent", socket: null });
      return;
    }
    const port = Number(target.port || (target.protocol === "https:" ? 443 : 80));
    const socket = connect({ host: target.hostname.replace(/^\[|\]$/g, ""), port });
    let settled = false;
    const done = (probe: PortProbe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const kept = probe === "open" && keep;
      if (!kept) socket.destroy();
      resolve({ probe, socket: kept ? socket : null });
    };
    // Timers run before the event loop polls its sockets: on a loop that ran late, a refusal that came in
    // time would lose to the timer. Deciding "silent" one turn later lets the poll read it first.
    const timer = setTimeout(() => setImmediate(() => done("silent")), timeoutMs);
    socket.once("connect", () => done("open"));
    socket.on("error", (error: NodeJS.ErrnoException) =>
      done(error.code === "ECONNREFUSED" ? "refused" : "silent"),
    );
  });

/** Connects to the node's URL's port and hangs up at once. */
export const probePort = async (url: string, timeoutMs: number): Promise<PortProbe> =>
  (await connectPort(url, timeoutMs, false)).probe;

/**
 * A connection to a node's port kept open, on which nothing is sent: it costs nothing while it lasts, and it
 * ends the moment the node's process dies (the kernel closes its sockets), long before any timer would notice.
 */
export interface Tether {
  readonly close: () => void;
}

/**
 * Connects to the node's port and keeps the connection if it opens: `onEnd` is called when it ends, but not
 * after `close`. The probe says how the connection went.
 */
export const tetherPort = async (
  url: string,
  timeoutMs: number,
  onEnd: () => void,
): Promise<{ readonly probe: PortProbe; readonly tether: Tether | null }> => {
  const { probe, socket } = await connectPort(url, timeoutMs, true);
  if (socket === null) return { probe, tether: null };
  let closed = false;
  // Whatever the peer sends is dropped; the socket never keeps the process up.
  socket.unref();
  socket.resume();
  socket.once("close", () => {
    if (!closed) onEnd();
  });
  return {
    probe,
    tether: {
      close: () => {
        closed = true;
        socket.destroy();
      },
    },
  };
};

const getJson = async (url: string, token: string, timeoutMs: number): Promise<unknown> => {
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${token}`, accept: "application/json" },
    signal: AbortSignal.timeout(timeoutMs),
    redirect: "error",
  });
  if (!response.ok) throw new Error(`${response.status}`);
  return response.json();
};

/**
 * What a peer says of its own reach of the database: whether the statement it made to answer went through, how
 * long before its answer it last succeeded, and its own statement interval (a third of its lease time).
 */
export interface PeerReach {
  readonly reachable: boolean;
  readonly lastOkMsAgo: number;
  readonly intervalMs: number;
}

/**
 * Whether a peer's answer says the database is down for it: the statement it made to answer failed, and its
 * last success is older than its own statement interval (it has been failing, not merely idle).
 */
export const saysDown = (peer: PeerReach): boolean => !peer.reachable && peer.lastOkMsAgo > peer.intervalMs;

/**
 * What the node at `url` says of the database; null when it does not answer. Only what it says is used, as it
 * said it: no two clocks are compared. A node of an earlier version, which answers from its last statement
 * without making one, and names no statement interval, is taken to run every `intervalMs`.
 */
export const peerReachesDatabase = async (
  url: string,
  token: string,
  timeoutMs: number,
  intervalMs: number,
): Promise<PeerReach | null> => {
  try {
    const body = (await getJson(new URL("/api/cluster/database", url).href, token, timeoutMs)) as {
      reachable?: unknown;
      last_ok_ms_ago?: unknown;
      statement_interval_ms?: unknown;
    };
    const ago = typeof body.last_ok_ms_ago === "number" ? body.last_ok_ms_ago : Number.POSITIVE_INFINITY;
    const interval = typeof body.statement_interval_ms === "number" ? body.statement_interval_ms : intervalMs;
    return { reachable: body.reachable === true, lastOkMsAgo: ago, intervalMs: interval };
  } catch {
    return null;
  }
};

/** Channel ids per request at most, so that a query stays far below a server's limit on a request line. */
const IDS_PER_REQUEST = 100;

/**
 * The node's views (GET /api/channels?ids=…) of the channels named, by id; null when it does not answer. Only
 * those: a holder of hundreds of channels answers a standby with the few it watches.
 */
export const peerChannels = async (
  url: string,
  token: string,
  ids: ReadonlyArray<string>,
  timeoutMs: number,
): Promise<ReadonlyMap<string, ChannelView> | null> => {
  try {
    const parts: Array<ReadonlyArray<string>> = [];
    for (let at = 0; at < ids.length; at += IDS_PER_REQUEST) parts.push(ids.slice(at, at + IDS_PER_REQUEST));
    const answers = await Promise.all(
      parts.map(async (part) => {
        const target = new URL("/api/channels", url);
        target.searchParams.set("ids", part.join(","));
        const body = (await getJson(target.href, token, timeoutMs)) as {
          channels?: ReadonlyArray<ChannelView>;
        };
        return body.channels ?? [];
      }),
    );
    return new Map(answers.flat().map((view) => [view.id, view]));
  } catch {
    return null;
  }
};
