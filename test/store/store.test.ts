/**
 * The file store: atomic replace with a `.bak` of the previous version, mode 0600, a corrupt file refused with
 * a message naming it and its backup, and 50 concurrent API writes that all land while the file always parses.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Schema } from "effect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DocumentStore, layerFile, loadDocument } from "../../src/effects/config/store.ts";
import { freeUdpPort, json, makeTestApp } from "../support/app.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "distributary-store-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const Doc = Schema.Struct({ version: Schema.Literal(1), n: Schema.Number });
const withFileStore = <A, E>(effect: Effect.Effect<A, E, DocumentStore>) =>
  Effect.runPromiseExit(Effect.provide(effect, layerFile(dir)));

describe("file store", () => {
  it("replaces atomically, keeps the previous version as .bak, both 0600", async () => {
    await withFileStore(
      Effect.flatMap(DocumentStore, (store) =>
        Effect.zipRight(
          store.write("doc.json", '{"version":1,"n":1}'),
          store.write("doc.json", '{"version":1,"n":2}'),
        ),
      ),
    );
    expect(JSON.parse(await readFile(join(dir, "doc.json"), "utf8"))).toEqual({ version: 1, n: 2 });
    expect(JSON.parse(await readFile(join(dir, "doc.json.bak"), "utf8"))).toEqual({ version: 1, n: 1 });
    expect((await stat(join(dir, "doc.json"))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "doc.json.bak"))).mode & 0o777).toBe(0o600);
  });

  it("refuses a corrupt file, naming it and the last good copy", async () => {
    await writeFile(join(dir, "doc.json.bak"), '{"version":1,"n":1}');
    await writeFile(join(dir, "doc.json"), '{"version":1,"n":');
    const empty: typeof Doc.Type = { version: 1, n: 0 };
    const exit = await withFileStore(loadDocument("doc.json", Doc, empty));
    expect(Exit.isFailure(exit)).toBe(true);
    const message = JSON.stringify(exit);
    expect(message).toContain(join(dir, "doc.json"));
    expect(message).toContain(`${join(dir, "doc.json")}.bak`);
    expect(message).toContain("corrupt");

    await writeFile(join(dir, "doc.json"), '{"version":1,"n":"three"}');
    const wrongShape = await withFileStore(loadDocument("doc.json", Doc, empty));
    expect(JSON.stringify(wrongShape)).toContain("n: Expected number");
  });

  it("50 concurrent API writes all land, and the file parses at every moment", async () => {
    const app = await makeTestApp(layerFile(dir));
    try {
      const channel = await json(
        await app.request("/api/channels", {
          method: "POST",
          body: JSON.stringify({ name: "Busy", rtp_ip: "127.0.0.1", rtp_port: 6300 }),
        }),
      );
      let writing = true;
      let reads = 0;
      const reader = (async () => {
        while (writing) {
          const text = await readFile(join(dir, "channels.json"), "utf8");
          expect(() => JSON.parse(text)).not.toThrow();
          reads += 1;
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      const responses = await Promise.all(
        Array.from({ length: 50 }, (_, n) =>
          app.request(`/api/channels/${String(channel.id)}/outputs`, {
            method: "POST",
            body: JSON.stringify({ name: `o${n}`, protocol: "udp", url: `udp://127.0.0.1:${20000 + n}` }),
          }),
        ),
      );
      writing = false;
      await reader;
      expect(responses.map((response) => response.status)).toEqual(Array(50).fill(201));
      expect(reads).toBeGreaterThan(0);
      const stored = JSON.parse(await readFile(join(dir, "channels.json"), "utf8"));
      const names = stored.channels[0].outputs.map((output: { name: string }) => output.name);
      expect(new Set(names)).toEqual(new Set(Array.from({ length: 50 }, (_, n) => `o${n}`)));
      expect((await stat(join(dir, "channels.json"))).mode & 0o777).toBe(0o600);
      // The environment's admin is never stored: a token made here is what writes the token file.
      const token = await app.request("/api/tokens", {
        method: "POST",
        body: JSON.stringify({ name: "ci", role: "viewer" }),
      });
      expect(token.status).toBe(201);
      expect((await stat(join(dir, "tokens.json"))).mode & 0o777).toBe(0o600);
    } finally {
      await app.close();
    }
  });

  it("a failed write changes nothing at runtime: DELETE, stop and import answer 503 and the channel stays on air", async () => {
    const app = await makeTestApp(layerFile(dir));
    try {
      const port = await freeUdpPort();
      const created = await app.request("/api/channels", {
        method: "POST",
        body: JSON.stringify({ id: "onair", name: "On air", rtp_ip: "127.0.0.1", rtp_port: port }),
      });
      expect(created.status).toBe(201);
      expect((await app.request("/api/channels/onair/start", { method: "POST" })).status).toBe(200);
      const before = await readFile(join(dir, "channels.json"), "utf8");
      // Every later write fails: the store keeps the previous file as channels.json.bak, and a directory
      // there cannot be written over.
      await rm(join(dir, "channels.json.bak"), { force: true });
      await mkdir(join(dir, "channels.json.bak"));
      for (const [method, path, body] of [
        ["DELETE", "/api/channels/onair", undefined],
        ["POST", "/api/channels/onair/stop", undefined],
        ["POST", "/api/config?mode=replace", JSON.stringify({ version: 1, channels: [] })],
      ] as const) {
        const response = await app.request(path, { method, ...(body === undefined ? {} : { body }) });
        expect(response.status, `${method} ${path}`).toBe(503);
        const problem = await json(response);
        expect(String(problem.detail)).toMatch(
          /could not be saved, so nothing was changed \(reference [0-9a-f]{8}/,
        );
        // The answer names no file path; the log has it, under the same reference.
        expect(String(problem.detail)).not.toContain(dir);
        const reference = /reference ([0-9a-f]{8})/.exec(String(problem.detail))?.[1] ?? "";
        expect(app.logs.some((line) => line.includes(reference) && line.includes("channels.json"))).toBe(
          true,
        );
        expect((await json(await app.request("/api/channels/onair"))).status).toBe("running");
      }
      expect(await readFile(join(dir, "channels.json"), "utf8")).toBe(before);
    } finally {
      await app.close();
    }
  });

  it("temporary files a crash left behind are removed when the store opens", async () => {
    await writeFile(join(dir, ".channels.json.4242.7.tmp"), '{"version":1,"chan');
    await writeFile(join(dir, "notes.tmp"), "kept: not ours");
    await Effect.runPromise(Effect.provide(Effect.void, layerFile(dir)));
    expect(await readdir(dir)).toEqual(["notes.tmp"]);
  });
});
