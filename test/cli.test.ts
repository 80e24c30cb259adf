import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { fixturePath } from "./support/fixtures.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const cli = `${root}bin/distributary`;

interface Verification {
  readonly file: string;
  readonly ts_packets: number;
  readonly pmt_pid_to_program: Record<string, number>;
  readonly pmt_streams_union: Record<string, { readonly stream_type: string; readonly packets: number }>;
  readonly scte35: Record<string, { readonly sections_base64_in_file_order: ReadonlyArray<string> }>;
}
const verification: ReadonlyArray<Verification> = Object.values(
  JSON.parse(readFileSync(fixturePath("scte35", "ts_verification.json"), "utf8")),
);

interface ProbeJson {
  readonly packets: number;
  readonly continuity_errors: number;
  readonly pids: ReadonlyArray<{
    readonly pid: number;
    readonly packets: number;
    readonly stream_type: number | null;
    readonly continuity_errors: number;
  }>;
  readonly scte35: ReadonlyArray<{
    readonly pid: number;
    readonly section_base64: string;
    readonly cue: unknown;
    readonly pcr: number | null;
    readonly pcr_seconds: number | null;
  }>;
}

// Files whose only PMT listing the SCTE-35 PID is a same-version duplicate (fixture README §2) still show it.
describe("distributary probe <file>", () => {
  it.each(verification.map((entry) => [entry.file, entry] as const))(
    "%s: packets, PIDs and every cue",
    async (file, entry) => {
      const { stdout } = await execa(cli, ["probe", fixturePath("scte35", file), "--json"]);
      const probe: ProbeJson = JSON.parse(stdout);
      expect(probe.packets).toBe(entry.ts_packets);
      // Eyevinn's muxer writes every PMT packet with continuity_counter 0: a third repeat of one CC is a real
      // continuity error (TR 101 290 1.4), which the fixture's own gap-only check does not count.
      const pmtPids = Object.keys(entry.pmt_pid_to_program).map(Number);
      const sloppyPmt = file.startsWith("ts/Eyevinn");
      for (const pid of probe.pids) {
        if (sloppyPmt && pmtPids.includes(pid.pid)) expect(pid.continuity_errors).toBeGreaterThan(0);
        else expect(pid.continuity_errors, `continuity errors on PID ${pid.pid}`).toBe(0);
      }
      for (const [pid, stream] of Object.entries(entry.pmt_streams_union)) {
        const seen = probe.pids.find((candidate) => candidate.pid === Number(pid));
        expect(seen?.packets, `packets on PID ${pid}`).toBe(stream.packets);
      }
      const expected = Object.entries(entry.scte35).flatMap(([pid, cues]) =>
        cues.sections_base64_in_file_order.map((section) => ({ pid: Number(pid), section })),
      );
      expect(probe.scte35.map((cue) => ({ pid: cue.pid, section: cue.section_base64 }))).toEqual(expected);
      for (const cue of probe.scte35) expect(cue.cue).not.toBeNull();
    },
  );

  it("prints a readable report by default", async () => {
    const { stdout } = await execa(cli, ["probe", fixturePath("scte35", "ts", "moq-dev_moq", "tsduck.ts")]);
    expect(stdout).toMatch(/0x0021 {2}stream_type 0x86 {2}SCTE-35/);
    expect(stdout).toMatch(/SCTE-35 {7}10 cue\(s\)/);
    expect(stdout).toMatch(/splice_insert, event \d+/);
    expect(stdout).toMatch(/TR 101 290 {4}sync loss 0, PAT error \d+, CC error 0/);
  });

  it("a file is probed as a file, and a cue's PCR is given in seconds too", async () => {
    const file = fixturePath("scte35", "ts", "moq-dev_moq", "tsduck.ts");
    const probe: ProbeJson & { input_kind: string } = JSON.parse(
      (await execa(cli, ["probe", file, "--json"])).stdout,
    );
    expect(probe.input_kind).toBe("file");
    const timed = probe.scte35.filter((cue) => cue.pcr !== null);
    expect(timed.length).toBeGreaterThan(0);
    for (const cue of timed) expect(cue.pcr_seconds).toBeCloseTo((cue.pcr ?? 0) / 27_000_000, 6);
    const { stdout } = await execa(cli, ["probe", file]);
    expect(stdout).toContain(`${file} (file)`);
    expect(stdout).not.toContain("udp-ts");
    const first = timed[0];
    expect(stdout).toContain(`pcr ${first?.pcr} (${first?.pcr_seconds?.toFixed(6)} s)`);
  });

  it("refuses a file that is not MPEG-TS with exit status 1", async () => {
    const result = await execa(cli, ["probe", "/etc/passwd"], { reject: false });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("not an MPEG-TS file");
  });

  it("fails with a reason for a missing file", async () => {
    const result = await execa(cli, ["probe", "/nonexistent.ts"], { reject: false });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/no such file/);
  });
});

describe("distributary probe udp://", () => {
  it("reports the RTP stream that arrives while it listens", async () => {
    const port = 40_000 + Math.floor(Math.random() * 10_000);
    const probe = execa(cli, ["probe", `rtp://@127.0.0.1:${port}`, "--seconds", "2", "--json"]);
    const ts = readFileSync(fixturePath("scte35", "ts", "moq-dev_moq", "tsduck.ts"));
    const socket = createSocket("udp4");
    let sequence = 65_500; // crosses the 16-bit wrap
    const sendAll = async () => {
      for (let offset = 0; offset < ts.length; offset += 1316) {
        const header = Buffer.alloc(12);
        header[0] = 0x80;
        header[1] = 33;
        header.writeUInt16BE(sequence++ & 0xffff, 2);
        header.writeUInt32BE(0x1234_5678, 8);
        const datagram = Buffer.concat([header, ts.subarray(offset, offset + 1316)]);
        await new Promise<void>((resolve) => socket.send(datagram, port, "127.0.0.1", () => resolve()));
      }
    };
    await new Promise<void>((resolve) => {
      probe.stderr?.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("listening on")) resolve();
      });
    });
    await sendAll();
    socket.close();
    const { stdout } = await probe;
    const report: ProbeJson & { input_kind: string; rtp: { lost: number; payloadType: number } } =
      JSON.parse(stdout);
    expect(report.input_kind).toBe("rtp");
    expect(report.rtp.payloadType).toBe(33);
    expect(report.rtp.lost).toBe(0);
    expect(report.packets).toBe(ts.length / 188);
    expect(report.scte35).toHaveLength(10);
  });
});

describe("distributary scte35", () => {
  const cue = "/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=";

  it("decodes base64 and hex alike", async () => {
    const fromBase64 = JSON.parse((await execa(cli, ["scte35", cue])).stdout);
    const hex = Buffer.from(cue, "base64").toString("hex");
    const fromHex = JSON.parse((await execa(cli, ["scte35", `0x${hex}`])).stdout);
    expect(fromBase64).toEqual(fromHex);
    expect(fromBase64.splice_command_type).toBe(5);
    expect(fromBase64.splice_command.splice_event_id).toBe(0x4800008f);
    expect(fromBase64.splice_command.break_duration).toEqual({ auto_return: true, duration: 5426421 });
  });

  // gots and Membrane give the section as it sits in the TS payload: pointer_field 0x00, then table_id.
  const vectors: ReadonlyArray<{ id: string; encoded: string; encoding: string }> = JSON.parse(
    readFileSync(fixturePath("scte35", "vectors.json"), "utf8"),
  );
  const bytesOf = (vector: { encoded: string; encoding: string }) =>
    vector.encoding === "hex"
      ? Buffer.from(vector.encoded.replace(/^0x/i, ""), "hex")
      : Buffer.from(vector.encoded, "base64");
  const withPointer = vectors.filter((vector) => {
    const bytes = bytesOf(vector);
    return bytes[0] === 0x00 && bytes[1] === 0xfc;
  });
  // Refused for what is wrong with the section itself, never for its pointer_field: v138 and v139 carry a CRC
  // that does not verify (their source never checks it); v136's section_length runs past its bytes.
  const flawed: Readonly<Record<string, RegExp>> = { v136: /truncated/, v138: /CRC/, v139: /CRC/ };

  it("finds the nine public vectors that start with a pointer_field", () => {
    expect(withPointer.map((vector) => vector.id)).toHaveLength(9);
  });

  it.each(withPointer.map((vector) => [vector.id, vector] as const))(
    "%s: a section after pointer_field 0x00 decodes as the section alone",
    async (id, vector) => {
      const section = bytesOf(vector).subarray(1);
      const result = await execa(cli, ["scte35", vector.encoded], { reject: false });
      const alone = await execa(cli, ["scte35", section.toString("base64")], { reject: false });
      const reason = flawed[id];
      if (reason !== undefined) {
        expect(result.exitCode).toBe(1);
        expect(result.stderr).toMatch(reason);
        expect(result.stderr).toBe(alone.stderr);
      } else {
        expect(result.exitCode, result.stderr).toBe(0);
        expect(JSON.parse(result.stdout).table_id).toBe(0xfc);
        expect(JSON.parse(result.stdout)).toEqual(JSON.parse(alone.stdout));
      }
    },
  );

  it.each([
    ["bad CRC", cue.replace("c2nALv4", "c2nALv5"), /CRC/i],
    ["not base64 or hex", "/DBaf%^", /base64|hex/i],
    ["bad table_id", Buffer.from("fd300000", "hex").toString("base64"), /table_id/],
  ])("rejects %s with exit status 1 and one line", async (_name, input, reason) => {
    const result = await execa(cli, ["scte35", input], { reject: false });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(reason);
  });
});

describe("runtimes", () => {
  it("bin/distributary uses the project's Node 24 even when the shell's node is older", async () => {
    const { stdout } = await execa(cli, ["scte35", "/DARAAAAAAAAAP/wAAAAAHpPv/8="], {
      env: { PATH: "/usr/bin:/bin" },
      extendEnv: false,
    });
    expect(JSON.parse(stdout).splice_command_type).toBe(0);
    const { stdout: bundled } = await execa(`${root}node_modules/.bin/node`, ["--version"]);
    expect(bundled).toMatch(/^v24\./);
  });

  it("Bun runs the same CLI with the same result", async () => {
    const file = fixturePath("scte35", "ts", "moq-dev_moq", "kyrion_dirtystart.ts");
    const viaNode = await execa(cli, ["probe", file, "--json"]);
    const viaBun = await execa(`${root}node_modules/.bin/bun`, [
      `${root}src/cli/main.ts`,
      "probe",
      file,
      "--json",
    ]);
    expect(JSON.parse(viaBun.stdout)).toEqual(JSON.parse(viaNode.stdout));
  });
});
