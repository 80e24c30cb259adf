/**
 * Secrets stay secret however text is cut or shaped: a child's long stderr line is masked before it is cut;
 * every secret the service knows is masked by value in logs and answers, wherever it appears; a URL whose
 * streamid holds commas is masked whole.
 */
import { Effect, Exit, Redacted, Scope } from "effect";
import { afterEach, describe, expect, it } from "vitest";
import { maskSecrets } from "../../src/effects/events/logging.ts";
import { spawnChild } from "../../src/effects/runtime/process/child-process.ts";
import { json, makeTestApp, type TestApp } from "../support/app.ts";

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe("masking", () => {
  it("a long stderr line is masked first and cut after: no piece of the key survives", async () => {
    const key = "KEY0123456789abcdefKEY";
    const line = `${"x".repeat(285)} rtmp://a.rtmp.youtube.com/live2/${key} refused`;
    const scope = Effect.runSync(Scope.make());
    const child = await Effect.runPromise(
      Scope.extend(
        spawnChild({
          command: "sh",
          args: ["-c", 'printf "%s\\n" "$0" >&2', line],
          secrets: [Redacted.make(key)],
        }),
        scope,
      ),
    );
    const exit = await Effect.runPromise(child.exit);
    await Effect.runPromise(Scope.close(scope, Exit.void));
    const tail = exit.tail.join("\n");
    expect(tail.length).toBeGreaterThan(250);
    expect(tail).not.toContain("KEY0");
    expect(tail).not.toContain(key.slice(0, 6));
  });

  it("every secret the service holds is masked by value, in any text that leaves it", async () => {
    app = await makeTestApp();
    const passphrase = "passphrase-by-value-7d1e";
    const key = "streamkey-by-value-44aa";
    const created = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        name: "Secrets",
        rtp_ip: "127.0.0.1",
        rtp_port: 5800,
        outputs: [
          { protocol: "srt", url: `srt://192.0.2.1:9000?mode=caller&passphrase=${passphrase}` },
          { protocol: "rtmp", url: `rtmp://a.rtmp.youtube.com/live2/${key}?token=tok-by-value-91c` },
        ],
      }),
    });
    expect(created.status).toBe(201);
    // Text of no URL shape at all: a tool's message quoting the values.
    const text = maskSecrets(`auth failed for '${passphrase}' (key ${key}, token=tok-by-value-91c)`);
    expect(text).not.toContain(passphrase);
    expect(text).not.toContain(key);
    expect(text).not.toContain("tok-by-value-91c");
    expect(text).toContain("auth failed for");
    // A problem detail that echoes the secret is masked too.
    const bad = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({ name: passphrase, rtp_ip: "not an address", rtp_port: 5802 }),
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await json(bad))).not.toContain(passphrase);
  });

  it("a URL whose streamid holds commas is masked whole, session token included", () => {
    const url =
      "srt://cdn.example.net:9000?streamid=#!::r=live/x,s=SESSION-SECRET-123,m=publish&passphrase=abcdefghijk";
    const text = maskSecrets(`connecting to ${url} failed`);
    expect(text).not.toContain("SESSION-SECRET-123");
    expect(text).not.toContain("abcdefghijk");
    expect(text).toContain("srt://cdn.example.net:9000");
  });
});

describe("words that tell the truth", () => {
  it("a plain streamid in a log line is shown; a secret one is masked", () => {
    expect(maskSecrets("publishing with streamid=live/channel1")).toContain("streamid=live/channel1");
    expect(maskSecrets("connect srt://h:9000?streamid=AbCdEf0123456789XyZ")).not.toContain(
      "AbCdEf0123456789XyZ",
    );
  });
});
