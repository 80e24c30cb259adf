/**
 * One API and one set of pages for the fleet: any node's `GET /api/channels` and Overview page list every
 * channel with its holder, term and live bitrate (a standby shows the holder's figures); a node killed shows
 * as not reachable in `GET /api/nodes` within 4 s.
 *
 *   db, a, b, tx, rx on one bridge; PostgreSQL in db; a and b each a node. Chromium runs in the root
 *   namespace and reaches a node through a TCP relay on 127.0.0.1 (test/support/browser.ts refuses any other
 *   address).
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { expect, it } from "vitest";
import { eventually } from "../support/app.ts";
import { launchChromium, login, newContext, screenshot } from "../support/browser.ts";
import { useFleetLab } from "../support/fleet-lab.ts";
import {
  awaitHolder,
  awaitOnAir,
  createChannels,
  inputsOf,
  nowMs,
  report,
} from "../support/fleet-scenario.ts";
import { cuedStream, newGenerator } from "../support/lab-channel.ts";
import { describeLab } from "../support/netlab.ts";

const LEASE_MS = 3000;
const BITRATE = 1_000_000;
const PAIR = () => ["a", "b"];

interface ListedChannel {
  readonly id: string;
  readonly name: string;
  readonly input_bitrate_bps: number;
  readonly outputs: ReadonlyArray<{ readonly bitrate_bps: number }>;
  readonly fleet?: {
    readonly holder: string | null;
    readonly term: number;
    readonly holder_reachable: boolean;
  };
}

/** 127.0.0.1:<port> relayed to `host:port`, for the browser; closing it ends every connection it holds. */
const relay = async (
  host: string,
  port: number,
): Promise<{ readonly base: string; readonly close: () => Promise<void> }> => {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    const upstream = connect(port, host);
    for (const one of [socket, upstream]) {
      sockets.add(one);
      one.once("close", () => sockets.delete(one));
    }
    socket.pipe(upstream).pipe(socket);
    socket.on("error", () => upstream.destroy());
    upstream.on("error", () => socket.destroy());
  });
  await new Promise<void>((listening) => server.listen(0, "127.0.0.1", () => listening()));
  const address = server.address();
  const local = typeof address === "object" && address !== null ? address.port : 0;
  return {
    base: `http://127.0.0.1:${local}`,
    close: () =>
      new Promise<void>((closed) => {
        server.close(() => closed());
        for (const socket of sockets) socket.destroy();
      }),
  };
};

describeLab("one API and one set of pages for the fleet", () => {
  const fleet = useFleetLab("flv", { nodes: ["a", "b"], leaseMs: LEASE_MS });

  it("any node lists every channel with holder, term and live bitrate, in the API and on the Overview page; a killed node is unreachable within 4 s", async () => {
    await fleet.startNodes(["a"]);
    const [a, b] = [fleet.node("a"), fleet.node("b")];
    const receiver = await fleet.receiver([7000, 7001, 7002], false);
    const channels = await createChannels(fleet, a, {
      name: "Listed",
      count: 3,
      nodes: PAIR,
      inputBase: 5000,
      outputBase: 7000,
    });
    const stream = cuedStream(newGenerator(6, BITRATE), BITRATE, 40);
    const sender = await fleet.send("views", stream.datagrams, stream.perMs, inputsOf(fleet, channels, PAIR));
    const browser = await launchChromium();
    const toB = await relay(b.base.replace(/^http:\/\/|:\d+$/g, ""), 8000);
    try {
      const startedMs = nowMs();
      const leases = await awaitHolder(fleet, channels.ids, "a");
      // b, the standby, starts once a holds every channel: started beside it, b takes a channel that a, slow on a
      // loaded machine, has not taken within its 1 s head start (leases.ts `shouldTry`).
      await fleet.startNodes(["b"]);
      await awaitOnAir(receiver, channels.outputPorts, startedMs, { source: a.address, count: 100 });

      // Both nodes' answers: every channel, held by a at its term, with the holder's live figures.
      const lists = await eventually(
        "every channel listed with its holder, term and bitrates by both nodes",
        async () => {
          const answers = await Promise.all(
            [a, b].map(
              async (node) =>
                ((await (await node.api("/api/channels")).json()) as { channels: ListedChannel[] }).channels,
            ),
          );
          const complete = answers.every((list) =>
            channels.ids.every((id) => {
              const found = list.find((channel) => channel.id === id);
              return (
                found?.fleet?.holder === "a" &&
                found.fleet.term === leases.get(id)?.term &&
                found.input_bitrate_bps > 0 &&
                (found.outputs[0]?.bitrate_bps ?? 0) > 0
              );
            }),
          );
          return complete ? answers : undefined;
        },
        10_000,
      );
      report(
        "Views: GET /api/channels",
        lists.flatMap((list, i) =>
          list.map(
            (channel) =>
              `  on ${i === 0 ? "a" : "b"}: ${channel.name} holder ${channel.fleet?.holder} term ${channel.fleet?.term} ` +
              `input ${channel.input_bitrate_bps} bit/s, output ${channel.outputs[0]?.bitrate_bps} bit/s`,
          ),
        ),
      );

      // The Overview page on the standby: every channel, its holder and term.
      const { context, offsite } = await newContext(browser);
      const page = await context.newPage();
      await login(page, toB.base, fleet.token);
      // Each tile: the channel, its input's live bitrate (the holder's figure), "on node a · term N".
      const tiles = await eventually(
        "the Overview's tiles with holder, term and a live bitrate",
        async () => {
          const texts = await Promise.all(
            channels.ids.map(async (id) =>
              (
                (await page
                  .locator(`#tile-${id}`)
                  .textContent({ timeout: 1000 })
                  .catch(() => "")) ?? ""
              ).replaceAll(/\s+/g, " "),
            ),
          );
          return texts.every(
            (text, i) =>
              new RegExp(`on node a · term ${leases.get(channels.ids[i] ?? "")?.term}\\b`).test(text) &&
              /Input ?[\d.]+ (k|M)bit\/s/.test(text),
          )
            ? texts
            : undefined;
        },
        10_000,
      );
      await screenshot(page, "fleet-overview");
      report(
        "Views: the Overview page on b",
        tiles.map((tile) => `  ${tile.trim()}`),
      );
      expect(offsite).toEqual([]);
      await context.close();

      // A node killed: the other shows it not reachable within 4 s.
      const killedMs = nowMs();
      await b.kill();
      const state = await eventually(
        "b shown not reachable by a",
        async () => {
          const { nodes } = (await (await a.api("/api/nodes")).json()) as {
            nodes: Array<{ id: string; state: string }>;
          };
          const found = nodes.find((node) => node.id === "b")?.state;
          return found !== undefined && found !== "up" ? found : undefined;
        },
        10_000,
      );
      const shownMs = nowMs() - killedMs;
      report("Views: GET /api/nodes", [`  b killed; a shows it ${state} after ${Math.round(shownMs)} ms`]);
      // Killed, it answers no one and beats no more: either word says so.
      expect(["unreachable", "down"]).toContain(state);
      expect(shownMs).toBeLessThanOrEqual(4000);
    } finally {
      await browser.close();
      await toB.close();
      await sender.stop();
      await receiver.stop();
    }
  }, 120_000);
});
