/**
 * Audio RTMP cannot carry beside H.264 video: MPEG audio layer II (the same stream types as MP3, told apart by
 * its frames' layer bits) and AC-3 leave the video going without audio, and the output's `rtmp.left_out` in the
 * API (and the channel page, under the output's state) says so in words; MP3 (layer III) goes as FLV's MP3
 * (sound format 2) and nothing is left out.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MESSAGE } from "../../src/core/rtmp/chunks.ts";
import { ADMIN_TOKEN, eventually, json, loginSession, useTestApp } from "../support/app.ts";
import { type TestReceiver, testReceiver } from "../support/rtmp-peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";

const app = useTestApp();
const scope = Effect.runSync(Scope.make());
const dir = mkdtempSync(join(tmpdir(), "distributary-rtmp-audio-"));
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void));
  rmSync(dir, { recursive: true, force: true });
});

/** 3 s of H.264 with `codec` audio in TS, made with ffmpeg. */
const stream = (codec: string): Uint8Array => {
  const path = join(dir, `${codec}.ts`);
  execFileSync("ffmpeg", [
    ...["-hide_banner", "-loglevel", "error", "-y"],
    ...["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"],
    ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3"],
    ...["-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p"],
    ...["-c:a", codec, "-ac", "2", "-f", "mpegts", path],
  ]);
  return new Uint8Array(readFileSync(path));
};

const CASES = [
  { codec: "mp2", port: 19420, leftOut: "MPEG audio layer II" },
  { codec: "ac3", port: 19422, leftOut: "AC-3" },
  { codec: "libmp3lame", port: 19424, leftOut: null },
] as const;

const receivers = new Map<number, TestReceiver>();
beforeAll(async () => {
  for (const { port } of CASES) {
    receivers.set(port, await Effect.runPromise(Scope.extend(testReceiver(port + 1), scope)));
  }
});

interface OutputView {
  readonly state: string;
  readonly last_error: string | null;
  readonly rtmp: { readonly frames_sent: number; readonly left_out: string | null } | null;
}

describe("audio that RTMP cannot carry", () => {
  it.each(CASES)("H.264 with $codec audio", async ({ codec, port, leftOut }) => {
    const id = `audio-${codec}`;
    const created = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id,
        name: id,
        rtp_ip: "127.0.0.1",
        rtp_port: port,
        outputs: [{ name: "rtmp", protocol: "rtmp", url: `rtmp://127.0.0.1:${port + 1}/live/key` }],
      }),
    });
    expect(created.status).toBe(201);
    expect((await app.request(`/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
    const datagrams = chunkTs(stream(codec));
    const output = async () =>
      ((await json(await app.request(`/api/channels/${id}`))).outputs as ReadonlyArray<OutputView>)[0];
    // The first pass connects the output; the stream then goes round until over 100 video frames went out (a
    // loaded machine may connect the output only as the first pass ends), its audio's frames seen by then.
    await Effect.runPromise(sendPaced(datagrams, port, 0.3));
    await eventually("the output connected", async () =>
      (await output())?.state === "connected" ? true : undefined,
    );
    let sending = true;
    const passes = (async () => {
      while (sending) await Effect.runPromise(sendPaced(datagrams, port, 0.3));
    })();
    const view = await eventually(
      "video frames sent",
      async () => {
        const now = await output();
        return (now?.rtmp?.frames_sent ?? 0) > 100 ? now : undefined;
      },
      30_000,
    ).finally(async () => {
      sending = false;
      await passes;
    });
    expect(view?.state).toBe("connected");
    expect(view?.last_error).toBeNull();
    const cookie = await loginSession(app, ADMIN_TOKEN);
    const page = await (await app.request(`/channels/${id}`, { headers: { Cookie: cookie } })).text();
    const note =
      /<small class="muted left-out">([^<]*)<\/small>/.exec(page)?.[1]?.replaceAll("&#39;", "'") ?? null;
    // What the output counted as sent reaches the receiver a moment later.
    const videoOf = () =>
      (receivers.get(port)?.messages ?? []).filter((message) => message.type === MESSAGE.video);
    await eventually("over 100 video frames at the receiver", () =>
      videoOf().length > 100 ? true : undefined,
    );
    const messages = receivers.get(port)?.messages ?? [];
    const video = messages.filter((message) => message.type === MESSAGE.video);
    const audio = messages.filter((message) => message.type === MESSAGE.audio);
    expect(video.length).toBeGreaterThan(100);
    if (leftOut === null) {
      expect(view?.rtmp?.left_out).toBeNull();
      expect(note).toBeNull();
      expect(audio.length).toBeGreaterThan(10);
      // FLV's sound format 2: MP3.
      expect(new Set(audio.map((message) => (message.body[0] ?? 0) >> 4))).toEqual(new Set([2]));
    } else {
      expect(view?.rtmp?.left_out).toBe(
        `the channel's audio is ${leftOut}, which RTMP cannot carry: the video goes without audio (RTMP takes AAC or MP3 audio)`,
      );
      expect(note).toBe(view?.rtmp?.left_out);
      expect(audio).toEqual([]);
    }
  });
});
