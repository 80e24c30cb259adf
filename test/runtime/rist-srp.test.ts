/**
 * A listener's EAP-SRP users' file (src/effects/runtime/links/rist-srp.ts): the lines Debian's ristsrppasswd prints
 * read back as the verifier and salt librist computed, comments and blank lines skipped, and what is wrong said
 * by line number, never by content; a caller's name from the network shown printable and short.
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { parseSrpUsers, shownSrpName } from "../../src/effects/runtime/links/rist-srp.ts";

const line = (user: string, password: string) =>
  execFileSync("ristsrppasswd", [user, password], { encoding: "utf8" }).trim();

describe("srpfile", () => {
  it("reads ristsrppasswd's lines: each user's verifier and salt, base64 without padding decoded", () => {
    const [alice, bob] = [line("alice", "pass-one"), line("bob", "pass-two")];
    const users = parseSrpUsers(`# studio encoders\n${alice}\n\n${bob}\n`);
    if (typeof users === "string") throw new Error(users);
    expect([...users.keys()]).toEqual(["alice", "bob"]);
    const [, verifier = "", salt = ""] = alice.split(":");
    // librist's 2048-bit group: a 256-byte verifier, and a 32-byte salt.
    const read = users.get("alice") ?? { verifier: new Uint8Array(), salt: new Uint8Array() };
    expect(Buffer.from(read.verifier).equals(Buffer.from(verifier, "base64"))).toBe(true);
    expect(read.verifier.length).toBe(256);
    expect(Buffer.from(read.salt).equals(Buffer.from(salt, "base64"))).toBe(true);
    expect(read.salt.length).toBe(32);
  });

  it("says what is wrong by line, never quoting a verifier", () => {
    const alice = line("alice", "pass-one");
    expect(parseSrpUsers("")).toBe("it has no user (make its lines with ristsrppasswd <user> <password>)");
    expect(parseSrpUsers(`${alice}\nalice-only\n`)).toBe(
      "line 2 is not username:verifier:salt:3 as ristsrppasswd writes it",
    );
    expect(parseSrpUsers(`${alice.replace(/:3$/, ":4")}\n`)).toBe(
      "line 1 is not of EAP-SRP version 3, the one librist 0.2.7 checks (its ristsrppasswd's)",
    );
    expect(parseSrpUsers("alice:not*base64:c2FsdA:3")).toBe("line 1: the verifier and the salt are base64");
  });

  it("shows a caller's name printable and at most 64 characters", () => {
    expect(shownSrpName("studio\u0000\u001b[31m")).toBe("studio??[31m");
    expect(shownSrpName("x".repeat(300))).toBe(`${"x".repeat(64)}…`);
  });
});
