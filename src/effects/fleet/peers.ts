/**
 * What one node learns of another over the network, never through the database: whether its process is there
 * (a TCP connection to its port: refused means the host answers but the process is gone, the fast takeover's
 * sign; no answer at all means it cannot be told apart from a partition), whether it reaches the database (the
 * question a holder asks before it fences itself), and its own view of the channels it holds.
 */
import { connect } from "node:net";
import type { ChannelView } from "../../domain/views.ts";

export type PortProbe = "open" | "refused" | "silent";

/** Connects to the node's URL's port and hangs up at once. */
export const probePort = (url: string, timeoutMs: number): Promise<PortProbe> =>
  new Promise((resolve) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      resolve("silent");
      return;
    }
    const port = Number(target.port || (target.protocol === "https:" ? 443 : 80));
    const socket = connect({ host: target.hostname.replace(/^\[|\]$/g, ""), port });
    let settled = false;
    const done = (result: PortProbe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    // Timers run before the event loop polls its sockets: on a loop that ran late, a refusal that came in
    // time would lose to the timer. Deciding "silent" one turn later lets the poll read it first.
    const timer = setTimeout(() => setImmediate(() => done("silent")), timeoutMs);
    socket.once("connect", () => done("open"));
    socket.once("error", (error: NodeJS.ErrnoException) =>
      done(error.code === "ECONNREFUSED" ? "refused" : "silent"),
    );
  });

const getJson = async (url: string, token: string, timeoutMs: number): Promise<unknown> => {
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${token}`, accept: "application/json" },
    signal: AbortSignal.timeout(timeoutMs),
    redirect: "error",
  });
  if (!response.ok) throw new Error(`${response.status}`);
  return response.json();
};

/** What a peer says of its own reach of the database: `okAt` is its last success, on this process's clock. */
export interface PeerReach {
  readonly reachable: boolean;
  readonly okAt: number;
}

/**
 * What the node at `url` says of the database; null when it does not answer. Its last success is put on this
 * process's monotonic clock from the time it says has passed since, so no two clocks are compared (the
 * answer's travel time makes it look older, never newer).
 */
export const peerReachesDatabase = async (
  url: string,
  token: string,
  timeoutMs: number,
): Promise<PeerReach | null> => {
  try {
    const body = (await getJson(new URL("/api/cluster/database", url).href, token, timeoutMs)) as {
      reachable?: unknown;
      last_ok_ms_ago?: unknown;
    };
    const ago = typeof body.last_ok_ms_ago === "number" ? body.last_ok_ms_ago : Number.POSITIVE_INFINITY;
    return { reachable: body.reachable === true, okAt: performance.now() - ago };
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
