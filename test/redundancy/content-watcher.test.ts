/**
 * The content watcher (src/effects/ingest/content-watcher.ts) with its real ffmpeg, fed streams made by
 * ffmpeg at their own pace, as the input path would feed it: black and silence become true within for_ms +
 * 1 s of the black part starting and not before (black: not more than the key-frame mode's allowance before,
 * the GOP less 0.5 s, as its first black key frame cannot tell when within the GOP before it the black
 * began), the programme alone is false for all three rules, a still
 * picture is frozen, a killed ffmpeg makes every rule null with the reason and is started again, an input
 * that falls silent leaves them null too, and chunks ffmpeg cannot take in time are dropped and counted while
 * the rules say they cannot judge.
 *
 * Times are read as the stream fed so far (its last picture's time), not the wall clock: ffmpeg cannot have
 * seen more than that, so "not before" holds on any machine, and "within" only needs ffmpeg to keep up.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Scope } from "effect";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContentVerdict } from "../../src/core/content/judge.ts";
import type { HealthRule } from "../../src/domain/health/health-schema.ts";
import {
  type ContentWatcher,
  type ContentWatcherOptions,
  makeContentWatcher,
} from "../../src/effects/ingest/content-watcher.ts";
import { type ContentPart, encodeContentStream } from "../support/media.ts";
import { chunksByPcr, offerAtPace } from "../support/pcr-chunks.ts";
import { eventually as eventuallyEffect } from "../support/peers.ts";

/** Polls `check` every 50 ms until it answers, failing with `what` after `timeoutMs`. */
const until = <A>(what: string, check: () => A | undefined, timeoutMs: number) =>
  Effect.runPromise(eventuallyEffect(what, check, { timeoutMs, intervalMs: 50 }));

const black: HealthRule = { black: { pixel_threshold: 0.1, picture_ratio: 0.98 }, for_ms: 2000 };
const silent: HealthRule = { silent: { noise_db: -60 }, for_ms: 2000 };
const frozen: HealthRule = { frozen: { noise_db: -60 }, for_ms: 3000 };
// A TS rule beside them: not the watcher's, so it has no verdict from it.
const rules = { black, silent, frozen, no_pcr: { pcr_missing_ms: 500 } };

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "content-watcher-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const stream = async (name: string, parts: ReadonlyArray<ContentPart>, encoder?: ReadonlyArray<string>) => {
  const file = join(dir, `${name}.ts`);
  await Effect.runPromise(encodeContentStream(file, parts, "640x360", "1M", encoder));
  return { ts: await readFile(file) };
};

const withWatcher = async <A>(
  options: ContentWatcherOptions,
  body: (watcher: ContentWatcher) => Promise<A>,
): Promise<A> => {
  const scope = await Effect.runPromise(Scope.make());
  try {
    const watcher = await Effect.runPromise(Scope.extend(makeContentWatcher(options), scope));
    if (watcher === null) throw new Error("no watcher for content rules");
    return await body(watcher);
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void));
  }
};

interface Tick {
  /** Seconds of the programme offered so far: the last picture's PTS, from the first picture's. */
  readonly position: number;
  readonly verdicts: Readonly<Record<string, ContentVerdict>>;
}

/**
 * Offers the TS at its own pace (test/support/pcr-chunks.ts), reading the verdicts after each round;
 * `during` may act at a position (kill ffmpeg, say).
 */
const feed = async (
  watcher: ContentWatcher,
  source: { readonly ts: Uint8Array },
  during: (tick: Tick) => void = () => {},
): Promise<ReadonlyArray<Tick>> => {
  const ticks: Tick[] = [];
  await offerAtPace(chunksByPcr(source.ts), watcher.offer, (position) => {
    const tick = { position, verdicts: watcher.verdicts() };
    ticks.push(tick);
    during(tick);
  });
  return ticks;
};

/**
 * How early a black may be judged in key-frame mode (s): these streams' GOP (1 s) less 0.5 s, the black
 * counted from half a second after the key frame before its first black one (core/content/judge.ts).
 */
const KEY_FRAME_ALLOWANCE = 0.5;

const firstTrue = (ticks: ReadonlyArray<Tick>, rule: string) =>
  ticks.find((tick) => tick.verdicts[rule]?.state === true)?.position;

describe("the content watcher", () => {
  it("finds black and silence within for_ms + 1 s of their start and not before (black: the key frames' allowance); the programme is false for all", async () => {
    const source = await stream("black", [
      { kind: "programme", seconds: 6 },
      { kind: "black", seconds: 5 },
    ]);
    const { ticks, cost } = await withWatcher({ rules }, async (watcher) => ({
      ticks: await feed(watcher, source),
      cost: watcher.cost(),
    }));
    expect(Object.keys(ticks.at(-1)?.verdicts ?? {}).sort()).toEqual(["black", "frozen", "silent"]);
    // Before ffmpeg has read anything, it cannot judge, and says so.
    expect(ticks[0]?.verdicts.black?.state).toBeNull();
    expect(ticks[0]?.verdicts.black?.reason).toMatch(/watcher/);
    // The programme alone: all three false once the watcher has seen enough of it.
    const programme = ticks.filter((tick) => tick.position < 6);
    expect(programme.every((tick) => Object.values(tick.verdicts).every((v) => v.state !== true))).toBe(true);
    expect(programme.at(-1)?.verdicts).toMatchObject({
      black: { state: false },
      silent: { state: false },
      frozen: { state: false },
    });
    for (const rule of ["black", "silent"]) {
      const at = firstTrue(ticks, rule);
      expect(at, rule).toBeGreaterThanOrEqual(6 + 2 - (rule === "black" ? KEY_FRAME_ALLOWANCE : 0));
      expect(at, rule).toBeLessThanOrEqual(6 + 2 + 1);
    }
    expect(ticks.at(-1)?.verdicts.black?.reason).toMatch(/^black for \d\.\d s$/);
    expect(cost.droppedChunks).toBe(0);
    expect(cost.restarts).toBe(0);
    expect(cost.cpuPercent).toBeGreaterThan(0);
    expect(cost.cpuPercent).toBeLessThan(100);
  }, 60_000);

  it("finds black within for_ms + 1 s too in a stream with B-frames", async () => {
    // A decoder holds each picture back for as many pictures as the stream reorders (two here: two GOPs in
    // key-frame mode); the watcher's copy of the stream says its key frames need no reordering
    // (core/content/key-frame-copy.ts), and the state's start is the picture's own time.
    const source = await stream(
      "b-frames",
      [
        { kind: "programme", seconds: 6 },
        { kind: "black", seconds: 5 },
      ],
      ["-preset", "veryfast", "-bf", "2"],
    );
    const ticks = await withWatcher({ rules: { black } }, (watcher) => feed(watcher, source));
    const at = firstTrue(ticks, "black");
    expect(at).toBeGreaterThanOrEqual(6 + 2 - KEY_FRAME_ALLOWANCE);
    expect(at).toBeLessThanOrEqual(6 + 2 + 1);
  }, 60_000);

  it("finds a still picture frozen, and it neither black nor silent", async () => {
    const source = await stream("still", [
      { kind: "programme", seconds: 3 },
      { kind: "still", seconds: 7 },
    ]);
    const ticks = await withWatcher({ rules }, (watcher) => feed(watcher, source));
    const at = firstTrue(ticks, "frozen");
    expect(at).toBeGreaterThanOrEqual(3 + 3);
    expect(ticks.at(-1)?.verdicts).toMatchObject({
      frozen: { state: true, reason: expect.stringMatching(/^frozen for \d\.\d s$/) },
      black: { state: false },
      silent: { state: false },
    });
  }, 60_000);

  it("says it cannot judge while its ffmpeg is dead, and judges again once it is started again", async () => {
    const source = await stream("kill", [{ kind: "programme", seconds: 12 }]);
    const quick = { black: { ...black, for_ms: 1000 }, silent: { ...silent, for_ms: 1000 } };
    let killed: number | undefined;
    const { ticks, cost, pid } = await withWatcher({ rules: quick, restartMs: 300 }, async (watcher) => {
      const ticks = await feed(watcher, source, (tick) => {
        if (killed === undefined && tick.position >= 4 && tick.verdicts.black?.state === false) {
          killed = watcher.pid();
          if (killed !== undefined) process.kill(killed, "SIGKILL");
        }
      });
      return { ticks, cost: watcher.cost(), pid: watcher.pid() };
    });
    expect(killed).toBeDefined();
    const afterKill = ticks.filter((tick) => tick.position >= 4);
    const dead = afterKill.find((tick) => tick.verdicts.black?.state === null);
    expect(dead?.verdicts.black?.reason).toMatch(/ffmpeg .*killed by SIGKILL/);
    expect(dead?.verdicts.silent?.state).toBeNull();
    // Started again: a new process, judging the programme false again before the stream ends.
    expect(pid).toBeDefined();
    expect(pid).not.toBe(killed);
    expect(cost.restarts).toBe(1);
    const recovered = afterKill.slice(afterKill.indexOf(dead as Tick));
    expect(recovered.some((tick) => tick.verdicts.black?.state === false)).toBe(true);
    expect(ticks.at(-1)?.verdicts).toMatchObject({ black: { state: false }, silent: { state: false } });
  }, 60_000);

  it("says it cannot judge once no stream has reached it for the stall time", async () => {
    const source = await stream("stall", [{ kind: "programme", seconds: 4 }]);
    await withWatcher({ rules, stallMs: 1000 }, async (watcher) => {
      let judged = false;
      await offerAtPace(chunksByPcr(source.ts), watcher.offer, () => {
        judged ||= watcher.verdicts().black?.state === false;
      });
      expect(judged).toBe(true);
      // The input falls silent: nothing more is offered. (On a loaded machine ffmpeg may first be seen behind,
      // "no progress", while the last chunks drain; then the silence is named.)
      const verdict = await until(
        "the black rule null, as no stream reaches the watcher",
        () => {
          const black = watcher.verdicts().black;
          return black?.state === null && black.reason.startsWith("no stream") ? black : undefined;
        },
        30_000,
      );
      const silentFor = Number(
        /^no stream has reached the watcher for (\d+\.\d) s$/.exec(verdict.reason)?.[1],
      );
      expect(silentFor).toBeGreaterThanOrEqual(1);
      expect(silentFor).toBeLessThan(3);
      expect(watcher.verdicts().silent?.state).toBeNull();
    });
  }, 60_000);

  it("says in words that a stream has no sound for a silent rule, and keeps trying", async () => {
    const file = join(dir, "no-audio.ts");
    await execa("ffmpeg", [
      ...[
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=25:duration=3",
      ],
      ...["-c:v", "libx264", "-preset", "ultrafast", "-f", "mpegts", file],
    ]);
    const ts = await readFile(file);
    await withWatcher({ rules: { silent }, restartMs: 100 }, async (watcher) => {
      // The stream offered again every 50 ms until the silent rule names what it lacks.
      const verdict = await until(
        "the silent rule to say the stream has no audio",
        () => {
          watcher.offer(ts);
          const silentVerdict = watcher.verdicts().silent;
          return /no audio/.test(silentVerdict?.reason ?? "") ? silentVerdict : undefined;
        },
        40_000,
      );
      expect(verdict).toMatchObject({
        state: null,
        reason: expect.stringMatching(
          /^the watcher's ffmpeg (ended|is starting again after it ended) \(the stream has no audio to judge silence by\)/,
        ),
      });
    });
  }, 60_000);

  it("drops and counts what its ffmpeg cannot take, returning at once, and cannot judge meanwhile", async () => {
    const source = await stream("burst", [{ kind: "programme", seconds: 4 }]);
    await withWatcher({ rules, pipeBytes: 64 * 1024 }, async (watcher) => {
      await until("the watcher's ffmpeg to start", () => watcher.pid(), 20_000);
      // The whole file at once: far more than ffmpeg reads in that time, or the pipe holds.
      for (let offset = 0; offset < source.ts.length; offset += 1316)
        watcher.offer(source.ts.subarray(offset, offset + 1316));
      const cost = watcher.cost();
      expect(cost.droppedChunks).toBeGreaterThan(0);
      expect(cost.droppedChunks).toBeLessThan(Math.ceil(source.ts.length / 1316));
      expect(watcher.verdicts().black).toMatchObject({
        state: null,
        reason: expect.stringMatching(
          /^the watcher dropped \d+ chunks in the last 2 s: its ffmpeg does not keep up/,
        ),
      });
    });
  }, 60_000);
});
