/**
 * What the fleet's lab scenarios (test/lab/fleet-*.test.ts) share: channels that run on two nodes (MediaLive's
 * two pipelines, one to each), waiting for holders in the database's lease table and for outputs on air at the
 * receiver, and the printed report.
 */
import { eventually } from "./app.ts";
import {
  type Continuation,
  clock,
  continuation,
  doubleSending,
  handovers,
  longestSilence,
  outputLine,
  type Received,
  type Silence,
} from "./fleet-analysis.ts";
import type { FleetLab, FleetNode, Receiver } from "./fleet-lab.ts";

export interface Lease {
  readonly holder: string | null;
  readonly term: number;
  /** Held and not expired (its holder's node lease, for the boot that took it), by the database's clock. */
  readonly live: boolean;
}

/** The lease table as the database has it, by channel. */
export const leaseRows = async (fleet: FleetLab): Promise<ReadonlyMap<string, Lease>> => {
  const rows = await fleet.db.admin<{ channel: string; holder: string | null; term: string; live: boolean }>(
    `select l.channel, l.holder, l.term, exists (select 1 from nodes n where n.id = l.holder
       and n.boot_id = l.holder_boot and n.lease_until > now()) as live from leases l`,
  );
  return new Map(
    rows.map((row) => [row.channel, { holder: row.holder, term: Number(row.term), live: row.live }]),
  );
};

/** Waits until every channel of `ids` has a live lease, held by `holder` if given; the leases then. */
export const awaitHolder = (
  fleet: FleetLab,
  ids: ReadonlyArray<string>,
  holder?: string,
  timeoutMs = 20_000,
): Promise<ReadonlyMap<string, Lease>> =>
  eventually(
    holder === undefined ? `${ids.length} channels held` : `node ${holder} holding ${ids.length} channels`,
    async () => {
      const leases = await leaseRows(fleet).catch(() => new Map<string, Lease>());
      const held = (id: string) =>
        leases.get(id)?.live === true && (holder === undefined || leases.get(id)?.holder === holder);
      return ids.every(held) ? leases : undefined;
    },
    timeoutMs,
  );

export interface FleetChannels {
  readonly ids: ReadonlyArray<string>;
  readonly inputPorts: ReadonlyArray<number>;
  readonly outputPorts: ReadonlyArray<number>;
}

/**
 * `count` channels created and started through `via`, each received on `nodes` at 0.0.0.0 (every node binds
 * the same port on its own addresses) and sent by UDP to the receiver: channel i listens on
 * `inputBase + 2i` and sends to rx's `outputBase + i`.
 */
export const createChannels = async (
  fleet: FleetLab,
  via: FleetNode,
  options: {
    readonly name: string;
    readonly count: number;
    readonly nodes: (index: number) => ReadonlyArray<string>;
    readonly inputBase: number;
    readonly outputBase: number;
  },
): Promise<FleetChannels> => {
  const ids: string[] = [];
  const inputPorts: number[] = [];
  const outputPorts: number[] = [];
  for (let i = 0; i < options.count; i++) {
    const [inputPort, outputPort] = [options.inputBase + 2 * i, options.outputBase + i];
    const created = await via.api("/api/channels", {
      method: "POST",
      body: {
        name: `${options.name} ${i + 1}`,
        rtp_ip: "0.0.0.0",
        rtp_port: inputPort,
        nodes: options.nodes(i),
        outputs: [{ id: "out", name: "rx", protocol: "udp", url: `udp://${fleet.rxAddress}:${outputPort}` }],
      },
    });
    if (created.status !== 201)
      throw new Error(`POST /api/channels on ${via.id}: ${created.status} ${await created.text()}`);
    const { id } = (await created.json()) as { id: string };
    const started = await via.api(`/api/channels/${id}/start`, { method: "POST" });
    if (started.status !== 200)
      throw new Error(`start ${id} on ${via.id}: ${started.status} ${await started.text()}`);
    ids.push(id);
    inputPorts.push(inputPort);
    outputPorts.push(outputPort);
  }
  return { ids, inputPorts, outputPorts };
};

/** Where tx sends: each channel's input port on each of its nodes' addresses. */
export const inputsOf = (
  fleet: FleetLab,
  channels: FleetChannels,
  nodes: (index: number) => ReadonlyArray<string>,
): ReadonlyArray<string> =>
  channels.inputPorts.flatMap((port, i) => nodes(i).map((node) => `${fleet.node(node).address}:${port}`));

/**
 * Deletes the channels through `via` (stopping them), so the next scenario starts from a quiet fleet. A 409
 * (`via` has not yet read what another node, or its own unconfirmed write, changed) is tried again, as its
 * answer asks, until `via` has reloaded.
 */
export const deleteChannels = async (via: FleetNode, ids: ReadonlyArray<string>) => {
  for (const id of ids) {
    let refused = "";
    await eventually(
      `DELETE ${id} on ${via.id}`,
      async () => {
        const answer = await via.api(`/api/channels/${id}`, { method: "DELETE" });
        if (answer.status === 200 || answer.status === 404) return true;
        refused = `${answer.status} ${await answer.text()}`;
        if (answer.status !== 409) throw new Error(`DELETE ${id} on ${via.id}: ${refused}`);
        return undefined;
      },
      20_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message} (last answer ${refused})`);
    });
  }
};

/** What came to `port` at or after `sinceMs` (from `source` only, when given). */
export const since = (receiver: Receiver, port: number, sinceMs: number, source?: string): Received[] =>
  receiver
    .at(port)
    .filter((arrival) => arrival.atMs >= sinceMs && (source === undefined || arrival.source === source));

/** Waits until every port has had `count` datagrams at or after `sinceMs` (from `source`, when given). */
export const awaitOnAir = (
  receiver: Receiver,
  ports: ReadonlyArray<number>,
  sinceMs: number,
  options: { readonly source?: string; readonly count?: number; readonly timeoutMs?: number } = {},
) =>
  eventually(
    `${ports.length} outputs on air${options.source === undefined ? "" : ` from ${options.source}`}`,
    () =>
      ports.every((port) => since(receiver, port, sinceMs, options.source).length >= (options.count ?? 20))
        ? true
        : undefined,
    options.timeoutMs ?? 20_000,
  );

export const nowMs = () => performance.timeOrigin + performance.now();

export const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A scenario's report, printed whole so that CI's output keeps it together. */
export const report = (title: string, lines: ReadonlyArray<string>) =>
  console.log([title, ...lines].join("\n"));

/**
 * A port of rx that tx also sends the stream to directly, bypassing the nodes: a silence there too means the
 * machine or the sender paused, not the fleet.
 */
export const REFERENCE_PORT = 7999;

export interface OutputMeasure {
  readonly port: number;
  readonly silence: Silence;
  readonly doubles: number;
  /** The longest silence of the sender's direct copy (REFERENCE_PORT) within this output's longest silence. */
  readonly directSilenceMs?: number;
  /** What came from the last change of sender on (else after the longest silence), against the stream. */
  readonly after?: Continuation;
  readonly line: string;
}

/**
 * Each output between `fromMs` and `untilMs`: its longest silence, its double sending and, given the stream,
 * whether what the last sender sent (from its first datagram on) is the stream itself with its cues, byte for
 * byte.
 */
export const measureOutputs = (
  fleet: FleetLab,
  receiver: Receiver,
  ports: ReadonlyArray<number>,
  window: { readonly fromMs: number; readonly untilMs: number },
  stream?: { readonly datagrams: ReadonlyArray<Uint8Array>; readonly index: ReadonlyMap<string, number> },
): ReadonlyArray<OutputMeasure> =>
  ports.map((port) => {
    const arrivals = receiver.at(port).filter((a) => a.atMs >= window.fromMs && a.atMs <= window.untilMs);
    const silence = longestSilence(arrivals, window);
    // What the new sender sent from its first datagram on (after the longest silence when the sender never
    // changed), and how many of the stream's datagrams fell between the two senders.
    const startMs = handovers(arrivals).at(-1)?.atMs ?? silence.toMs;
    const after =
      stream === undefined ? undefined : continuation(arrivals, startMs, stream.datagrams, stream.index);
    const before = arrivals.filter((arrival) => arrival.atMs < startMs).at(-1)?.datagram;
    const lastBefore = before === undefined ? undefined : stream?.index.get(before.toString("latin1"));
    const between =
      after === undefined || lastBefore === undefined || after.firstIndex < 0
        ? ""
        : `, ${after.firstIndex - lastBefore - 1} of the stream's datagrams between the last before and the first after`;
    const tail =
      after === undefined
        ? ""
        : `; from ${clock(startMs)} ${after.count} datagrams ${after.contiguous ? "contiguous" : "NOT contiguous"} from #${after.firstIndex}${between}, ` +
          `cues ${after.cues.length} (stream has ${after.expectedCues.length} there)`;
    const reference = receiver.at(REFERENCE_PORT);
    const directSilenceMs =
      reference.length === 0
        ? undefined
        : longestSilence(reference, { fromMs: silence.fromMs, untilMs: silence.toMs }).ms;
    const direct =
      directSilenceMs === undefined
        ? ""
        : `; the sender's direct copy over that silence: longest silence ${Math.round(directSilenceMs)} ms`;
    return {
      port,
      silence,
      ...(directSilenceMs === undefined ? {} : { directSilenceMs }),
      doubles: doubleSending(arrivals).length,
      ...(after === undefined ? {} : { after }),
      line: `${outputLine(`output :${port}`, arrivals, fleet.names, window)}${tail}${direct}`,
    };
  });

/** The lines of a node's JSON log written between `fromMs` and `untilMs`, for a report's evidence. */
export const logBetween = (node: FleetNode, fromMs: number, untilMs: number): ReadonlyArray<string> =>
  node
    .log()
    .split("\n")
    .filter((line) => {
      const time = /"time":(\d+)/.exec(line)?.[1];
      return time !== undefined && Number(time) >= fromMs && Number(time) <= untilMs;
    });
