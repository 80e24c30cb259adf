/**
 * The cue log names the RTMP outputs that carried each cue: a channel on a forwarding worker with two RTMP
 * outputs sending cues (in two shapes) and one without; each cue in `GET /api/channels/{id}/cues` lists the two,
 * with the shape each sent it in (a cue that waited for its splice time too), the channel page shows it under
 * the cue, and the history kept across a restart (in cues.json and cues-recent.json, or a fleet's `cues` table)
 * still says so.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Layer, Scope } from "effect";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { layerFile } from "../../src/effects/config/store.ts";
import { ADMIN_TOKEN, eventually, json, makeTestApp, type TestApp } from "../support/app.ts";
import { launchChromium, login, newContext, screenshot } from "../support/browser.ts";
import { immediateSpliceOut, spliceInsertSection } from "../support/cues.ts";
import { nodeStore, type Postgres, startPostgres } from "../support/postgres.ts";
import { bframeStream, videoPes, withCues } from "../support/rtmp-media.ts";
import { testReceiver } from "../support/rtmp-peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { STREAM_TYPE_AAC } from "../support/ts-generator.ts";

const INPUT = 19410;
const scope = Effect.runSync(Scope.make());
let dir = "";
let app: TestApp | undefined;
let browser: Browser;
let pg: Postgres;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "distributary-rtmp-cue-log-"));
  browser = await launchChromium();
  pg = await startPostgres({ port: 19414 });
  for (const port of [19411, 19412, 19413]) await Effect.runPromise(Scope.extend(testReceiver(port), scope));
}, 60_000);
afterAll(async () => {
  await app?.close();
  await browser?.close();
  await pg?.close();
  await Effect.runPromise(Scope.close(scope, Exit.void));
  await rm(dir, { recursive: true, force: true });
});

interface Sent {
  readonly output: string;
  readonly name: string;
  readonly format: string;
}
interface Cue {
  readonly id: string;
  readonly event_id: number | null;
  readonly summary: string;
  readonly rtmp: ReadonlyArray<Sent>;
}

/** Each store: the app on it, and the RTMP outputs the stored copy of a cue names (undefined: not stored). */
const STORES = {
  "cues.json": {
    start: () => makeTestApp(layerFile(dir), Layer.empty, { DISTRIBUTARY_WORKERS: "1" }),
    // The whole history, then what came since (the later copy of a cue is the one that counts).
    stored: async (id: string) => {
      const read = async (name: string) =>
        JSON.parse(await readFile(join(dir, name), "utf8").catch(() => "{}"));
      const whole = (await read("cues.json")) as { channels?: Record<string, ReadonlyArray<Cue>> };
      const recent = (await read("cues-recent.json")) as {
        entries?: ReadonlyArray<{ channel?: string; cue?: Cue }>;
      };
      const copies = [
        ...(whole.channels?.cuelog ?? []),
        ...(recent.entries ?? []).flatMap((entry) =>
          entry.channel === "cuelog" && entry.cue !== undefined ? [entry.cue] : [],
        ),
      ];
      return copies.findLast((cue) => cue.id === id)?.rtmp;
    },
  },
  "the fleet's cues table": {
    start: () =>
      makeTestApp(nodeStore(pg.url), Layer.empty, {
        DISTRIBUTARY_WORKERS: "1",
        DISTRIBUTARY_NODE_ID: "a",
      }),
    stored: async (id: string) =>
      (await pg.admin<{ record: Cue }>("select record from cues where record->>'id' = $1", [id]))[0]?.record
        .rtmp,
  },
} as const;
const cuesOf = async (test: TestApp) =>
  (await json(await test.request("/api/channels/cuelog/cues"))).cues as ReadonlyArray<Cue>;
const byName = (sent: ReadonlyArray<Sent>) => [...sent].sort((a, b) => a.name.localeCompare(b.name));

describe("the cue log and RTMP outputs", () => {
  it.each(Object.keys(STORES) as Array<keyof typeof STORES>)(
    "lists, for each cue, the RTMP outputs that sent it and in which shape: API, page, after a restart (%s)",
    async (store) => {
      const { start, stored } = STORES[store];
      const path = join(dir, "in.ts");
      bframeStream(path, 6);
      const ts = new Uint8Array(await readFile(path));
      const pes = videoPes(ts);
      const frame = (i: number) => pes[i] ?? { packet: 0, dts: 0 };
      const scheduled = encodeSection(
        spliceInsertSection({
          splice_event_id: 2,
          splice_event_cancel_indicator: false,
          out_of_network_indicator: true,
          program_splice_flag: true,
          duration_flag: false,
          splice_immediate_flag: false,
          event_id_compliance_flag: true,
          time_specified_flag: true,
          pts_time: frame(100).dts,
          unique_program_id: 1,
          avail_num: 0,
          avails_expected: 0,
        }),
      );
      const cued = withCues(ts, STREAM_TYPE_AAC, [
        { before: frame(40).packet, section: encodeSection(immediateSpliceOut(1)) },
        { before: frame(50).packet, section: scheduled },
      ]);

      app = await start();
      const created = await app.request("/api/channels", {
        method: "POST",
        body: JSON.stringify({
          id: "cuelog",
          name: "Cue log",
          rtp_ip: "127.0.0.1",
          rtp_port: INPUT,
          outputs: [
            { name: "YouTube", protocol: "rtmp", url: "rtmp://127.0.0.1:19411/live/k1?cues=oncuepoint" },
            { name: "Partner <CDN>", protocol: "rtmp", url: "rtmp://127.0.0.1:19412/live/k2?cues=onadcue" },
            { name: "Plain", protocol: "rtmp", url: "rtmp://127.0.0.1:19413/live/k3" },
          ],
        }),
      });
      expect(created.status).toBe(201);
      const outputs = (await json(created)).outputs as ReadonlyArray<{ id: string; name: string }>;
      const idOf = (name: string) => outputs.find((output) => output.name === name)?.id;
      expect((await app.request("/api/channels/cuelog/start", { method: "POST" })).status).toBe(200);
      const test = app;

      // A first pass connects the outputs; the second carries the cues.
      await Effect.runPromise(sendPaced(chunkTs(withCues(ts, STREAM_TYPE_AAC, [])), INPUT));
      await eventually("every output sending", async () => {
        const channel = await json(await test.request("/api/channels/cuelog"));
        const views = channel.outputs as ReadonlyArray<{ rtmp: { frames_sent: number } | null }>;
        return views.every((view) => (view.rtmp?.frames_sent ?? 0) > 0) ? true : undefined;
      });
      // The stream stops after the scheduled cue came and before its splice time: it is logged (and stored)
      // with no output yet; the outputs send it once the stream goes on and reaches its time.
      const datagrams = chunkTs(cued);
      const pause = Math.ceil((frame(60).packet + 2) / 7);
      await Effect.runPromise(sendPaced(datagrams.slice(0, pause), INPUT));
      const waiting = await eventually(
        "the scheduled cue logged and stored, sent by no output yet",
        async () => {
          const cue = (await cuesOf(test)).find((logged) => logged.event_id === 2);
          return cue !== undefined && (await stored(cue.id))?.length === 0 ? cue : undefined;
        },
      );
      expect(waiting.rtmp).toEqual([]);
      await Effect.runPromise(sendPaced(datagrams.slice(pause), INPUT));
      const expected = byName([
        { output: idOf("YouTube") ?? "?", name: "YouTube", format: "oncuepoint" },
        { output: idOf("Partner <CDN>") ?? "?", name: "Partner <CDN>", format: "onadcue" },
      ]);
      const cues = await eventually("both cues sent by both outputs", async () => {
        const seen = await cuesOf(test);
        return seen.length === 2 && seen.every((cue) => cue.rtmp.length === 2) ? seen : undefined;
      });
      for (const cue of cues) expect(byName(cue.rtmp)).toEqual(expected);
      await eventually("the stored copy to name both outputs", async () =>
        byName((await stored(waiting.id)) ?? []).length === 2 ? true : undefined,
      );

      // The channel page says it under each cue, in small print.
      const { context } = await newContext(browser);
      const page = await context.newPage();
      const base = `http://127.0.0.1:${await test.listen()}`;
      await login(page, base, ADMIN_TOKEN);
      await page.goto(`${base}/channels/cuelog`);
      const notes = await page.locator("#cue-log li small.cue-rtmp").allTextContents();
      expect(notes.length).toBe(2);
      for (const note of notes) {
        expect(note).toMatch(/^sent to /);
        expect(note).toContain("YouTube (onCuePoint)");
        expect(note).toContain("Partner <CDN> (onAdCue)");
        expect(note).not.toContain("Plain");
      }
      await screenshot(page, `rtmp-cue-log-${store === "cues.json" ? "file" : "postgres"}`);
      await context.close();

      // Kept across a restart.
      await test.close();
      app = await start();
      const again = await cuesOf(app);
      expect(again.map((cue) => [cue.id, byName(cue.rtmp)])).toEqual(cues.map((cue) => [cue.id, expected]));
      await app.close();
      app = undefined;
    },
  );
});
