/**
 * An srpfile that may not be read never holds the control plane (runtime/links/rist-srp.ts reads it beside the start,
 * bounded in size and time, and opens nothing that could block): the node's admin names, under
 * DISTRIBUTARY_RIST_SRP_DIR, a FIFO no one writes, links to /etc/shadow and /dev/zero and a 2 MiB file; each
 * channel's start is answered within 1 s, and so is every other call meanwhile (another channel created, started,
 * stopped, changed); each input says, in the one wording that tells nothing of the file, that it turns every
 * caller away.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json, useTestApp } from "../support/app.ts";

const dir = mkdtempSync(join(tmpdir(), "distributary-srp-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const app = useTestApp(() => ({ settings: { DISTRIBUTARY_RIST_SRP_DIR: dir } }));

/** A call's answer and how long it took; fails past `ms` rather than wait for an answer that may never come. */
const within = async (what: string, call: () => Promise<Response>, ms = 1000) => {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const answer = await Promise.race([
    call(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
  const took = performance.now() - started;
  expect(took, what).toBeLessThan(ms);
  return answer;
};

const ristView = async (id: string) =>
  (
    (await json(await app.request(`/api/channels/${id}`))).inputs as Array<{
      rist: { problem: string | null };
    }>
  )[0]?.rist ?? null;

describe("an srpfile that may not be read", () => {
  it("a FIFO, links to /etc/shadow and /dev/zero, a 2 MiB file: each start and every other call answered within 1 s, each input refusing in the same words", async () => {
    const files = {
      fifo: join(dir, "fifo.srp"),
      shadow: join(dir, "shadow.srp"),
      zero: join(dir, "zero.srp"),
      big: join(dir, "big.srp"),
    };
    execFileSync("mkfifo", [files.fifo]);
    symlinkSync("/etc/shadow", files.shadow);
    symlinkSync("/dev/zero", files.zero);
    writeFileSync(files.big, `${"a:b:c:3\n".repeat(300_000)}`);
    for (const [name, file] of Object.entries(files)) {
      const port = await freeUdpPort();
      const created = await within(`create ${name}`, () =>
        app.request("/api/channels", {
          method: "POST",
          body: JSON.stringify({
            id: `srp-${name}`,
            name,
            rtp_ip: "127.0.0.1",
            rtp_port: port,
            input_url: `rist://@127.0.0.1:${port}?srpfile=${file}`,
          }),
        }),
      );
      expect(created.status, await created.clone().text()).toBe(201);
      const started = await within(`start ${name}`, () =>
        app.request(`/api/channels/srp-${name}/start`, { method: "POST" }),
      );
      expect(started.status, await started.clone().text()).toBe(200);
      // Meanwhile every other call of the node's admin is answered at once.
      const other = `other-${name}`;
      const otherPort = await freeUdpPort();
      const made = await within(`create ${other}`, () =>
        app.request("/api/channels", {
          method: "POST",
          body: JSON.stringify({ id: other, name: other, rtp_ip: "127.0.0.1", rtp_port: otherPort }),
        }),
      );
      expect(made.status).toBe(201);
      for (const action of ["start", "stop"]) {
        const answer = await within(`${action} ${other}`, () =>
          app.request(`/api/channels/${other}/${action}`, { method: "POST" }),
        );
        expect(answer.status).toBe(200);
      }
      const changed = await within(`change ${other}`, () =>
        app.request(`/api/channels/${other}`, {
          method: "PATCH",
          body: JSON.stringify({ name: `${other} b` }),
        }),
      );
      expect(changed.status).toBe(200);
      const problem = await eventually(`the words of ${name}`, async () => {
        const seen = (await ristView(`srp-${name}`))?.problem ?? null;
        return seen?.includes("srpfile=") ? seen : undefined;
      });
      expect(problem).toBe(
        `EAP-SRP: every caller is turned away: srpfile=${file} is not an allowed srpfile: name a regular file of ristsrppasswd lines, at most 1 MiB, in ${dir} (DISTRIBUTARY_RIST_SRP_DIR) or below`,
      );
      const stopped = await within(`stop ${name}`, () =>
        app.request(`/api/channels/srp-${name}/stop`, { method: "POST" }),
      );
      expect(stopped.status).toBe(200);
    }
  });
});
