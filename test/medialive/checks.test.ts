/**
 * The link's pure checks (domain/medialive/medialive.ts): MediaLive's destinations against our inputs, SCTE-35
 * passthrough, the trusted senders, the states that forbid a start or a stop, and AWS's failures in words
 * (effects/medialive/client.ts), each naming what to do.
 */
import { describe, expect, it } from "vitest";
import {
  actionForbidden,
  checkDestinations,
  type DescribedChannel,
  trustSenders,
} from "../../src/domain/medialive/medialive.ts";
import { failureOf } from "../../src/effects/medialive/client.ts";

const described = (urls: ReadonlyArray<string>, scte35 = "PASSTHROUGH"): DescribedChannel => ({
  Destinations: [{ Id: "d", Settings: urls.map((Url) => ({ Url })) }],
  EncoderSettings: {
    OutputGroups: [
      {
        OutputGroupSettings: { UdpGroupSettings: {} },
        Outputs: [
          {
            OutputName: "ts",
            OutputSettings: {
              UdpOutputSettings: {
                Destination: { DestinationRefId: "d" },
                ContainerSettings: { M2tsSettings: { Scte35Control: scte35 } },
              },
            },
          },
        ],
      },
    ],
  },
});

const inputs = { rtp_ip: "0.0.0.0", rtp_port: 5000, backup_rtp_ip: "0.0.0.0", backup_rtp_port: 5010 };

describe("MediaLive's destinations against our inputs", () => {
  it("pipeline 0 to the primary and 1 to the backup match, with SCTE-35 passed through: no warning", () => {
    const check = checkDestinations(described(["rtp://203.0.113.5:5000", "rtp://203.0.113.5:5010"]), inputs);
    expect(check.warnings).toEqual([]);
    expect(check.scte35Passthrough).toBe(true);
    expect(check.destinations.map((d) => [d.pipeline, d.matches])).toEqual([
      [0, true],
      [1, true],
    ]);
  });

  it("a wrong port, crossed pipelines or another address of a bound input are warned in words", () => {
    const crossed = checkDestinations(
      described(["rtp://203.0.113.5:5010", "rtp://203.0.113.5:5000"]),
      inputs,
    );
    expect(crossed.warnings).toEqual([
      "output 'ts' pipeline 0 sends to rtp://203.0.113.5:5010, not to the primary input (port 5000)",
      "output 'ts' pipeline 1 sends to rtp://203.0.113.5:5000, not to the backup input (port 5010)",
    ]);
    const bound = { ...inputs, rtp_ip: "198.18.0.1", backup_rtp_ip: "198.18.0.1" };
    const elsewhere = checkDestinations(described(["udp://198.18.0.9:5000", "udp://198.18.0.1:5010"]), bound);
    expect(elsewhere.warnings).toEqual([
      "output 'ts' pipeline 0 sends to udp://198.18.0.9:5000, not to the primary input (port 5000 on 198.18.0.1)",
    ]);
  });

  it("a second pipeline with no backup input, SCTE-35 removed, and no UDP output at all are warned", () => {
    const noBackup = { ...inputs, backup_rtp_ip: null, backup_rtp_port: null };
    const check = checkDestinations(
      described(["rtp://203.0.113.5:5000", "rtp://203.0.113.5:5010"], "NONE"),
      noBackup,
    );
    expect(check.scte35Passthrough).toBe(false);
    expect(check.warnings).toEqual([
      "output 'ts' removes SCTE-35: set its SCTE-35 control to PASSTHROUGH, or no cue reaches this channel",
      "output 'ts' pipeline 1 sends to rtp://203.0.113.5:5010, but this channel has no backup input: add one",
    ]);
    const none = checkDestinations({ EncoderSettings: { OutputGroups: [] } }, inputs);
    expect(none.scte35Passthrough).toBeNull();
    expect(none.warnings).toEqual([
      "it has no UDP/RTP output: add a UDP output group whose destinations are this channel's inputs",
    ]);
  });
});

describe("trusted senders and the states that forbid an action", () => {
  it("egress addresses narrow an open input to them, join a listed one, and change nothing while unknown", () => {
    const open = { ip: "0.0.0.0", port: 5000 };
    expect(trustSenders(open, ["52.0.0.1", "52.0.0.2"]).allowedSources).toEqual(["52.0.0.1", "52.0.0.2"]);
    expect(trustSenders({ ...open, allowedSources: ["10.0.0.0/8"] }, ["52.0.0.1"]).allowedSources).toEqual([
      "10.0.0.0/8",
      "52.0.0.1",
    ]);
    expect(trustSenders(open, [])).toBe(open);
  });

  it("says what to wait for", () => {
    expect(actionForbidden("stop", "STARTING")).toBe(
      "the MediaLive channel is STARTING: wait until it is RUNNING to stop it",
    );
    expect(actionForbidden("start", "STOPPING")).toBe(
      "the MediaLive channel is STOPPING: wait until it is IDLE to start it",
    );
    expect(actionForbidden("start", "RUNNING")).toBe("the MediaLive channel is already RUNNING");
    expect(actionForbidden("start", "IDLE")).toBeNull();
    expect(actionForbidden("stop", "RUNNING")).toBeNull();
    expect(actionForbidden("stop", "RECOVERING")).toBeNull();
  });
});

describe("AWS's failures in words", () => {
  const link = { channel_id: "1234567", region: "eu-west-1" };
  const sdkError = (name: string, status?: number, code?: string) =>
    Object.assign(new Error("AWS says something with a request id"), {
      name,
      ...(code === undefined ? {} : { code }),
      $metadata: status === undefined ? {} : { httpStatusCode: status },
    });

  it("name the missing IAM action, an unknown channel, the region that does not answer, and throttling", () => {
    expect(failureOf(sdkError("AccessDeniedException", 403), "StartChannel", link).message).toBe(
      "AWS refused medialive:StartChannel on channel '1234567' in eu-west-1: the IAM policy of these credentials must allow medialive:StartChannel",
    );
    expect(failureOf(sdkError("NotFoundException", 404), "DescribeChannel", link)).toMatchObject({
      kind: "not_found",
      message: "MediaLive has no channel '1234567' in eu-west-1",
    });
    expect(failureOf(sdkError("Error", undefined, "ENOTFOUND"), "DescribeChannel", link).message).toBe(
      "no MediaLive endpoint answered for region eu-west-1 (ENOTFOUND): check the region, and the network to AWS",
    );
    expect(failureOf(sdkError("TooManyRequestsException", 429), "DescribeChannel", link).kind).toBe(
      "throttled",
    );
    expect(failureOf(sdkError("CredentialsProviderError"), "DescribeChannel", link).kind).toBe("credentials");
    // AWS's own text (a request id, an account's ARN) is never repeated.
    expect(failureOf(sdkError("SomethingElse", 500), "StopChannel", link).message).toBe(
      "MediaLive answered StopChannel on channel '1234567' in eu-west-1 with an error (HTTP 500)",
    );
  });
});
