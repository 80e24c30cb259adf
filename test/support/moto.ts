/**
 * AWS MediaLive as tests see it: a real `moto_server` (moto 5, installed on the test machines) on 127.0.0.1,
 * started by the test on a free port from 18500–18599 and killed with the test process, and the AWS SDK's
 * MediaLive client pointed at it. moto leaves a channel's egress endpoints empty (AWS assigns them); here a
 * channel created with the tag `test:egress` ("a,b") gets those addresses as its egress endpoints, so the
 * allow-list can be tested over real sockets. Everything else is moto as installed.
 */
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import {
  CreateChannelCommand,
  type CreateChannelCommandInput,
  M2tsScte35Control,
  MediaLiveClient,
} from "@aws-sdk/client-medialive";
import { eventually } from "./app.ts";
import { stopChild } from "./peers.ts";

/** moto's own server, with the one addition above; run as `python3 -c <this> -H host -p port`. */
const SERVER = `
import sys
from moto.medialive import models
from moto.server import main

create = models.MediaLiveBackend.create_channel

def create_with_egress(self, *args, **kwargs):
    channel = create(self, *args, **kwargs)
    given = (kwargs.get("tags") or {}).get("test:egress", "")
    channel.egress_endpoints = [{"SourceIp": ip} for ip in given.split(",") if ip]
    return channel

models.MediaLiveBackend.create_channel = create_with_egress
sys.exit(main(sys.argv[1:]))
`;

/** Whether moto can run here; the reason in one line when it cannot. */
export const motoMissing = (): string | null => {
  const probe = spawnSync("python3", ["-c", "import moto.server, moto.medialive"], { encoding: "utf8" });
  return probe.status === 0 ? null : "moto_server (python3 -m moto) is not installed on this machine";
};

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });

/** A free TCP port in 18500–18599 (the range these tests may use), from a random start. */
const freePortInRange = async (): Promise<number> => {
  const start = Math.floor(Math.random() * 100);
  for (let i = 0; i < 100; i++) {
    const port = 18500 + ((start + i) % 100);
    if (await portFree(port)) return port;
  }
  throw new Error("no free port in 18500–18599");
};

export interface Moto {
  readonly endpoint: string;
  readonly client: (
    region?: string,
    credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string },
  ) => MediaLiveClient;
  readonly stop: () => Promise<void>;
}

/** Any credentials do for moto; these are not the planted ones a test searches for. */
const MOTO_CREDENTIALS = { accessKeyId: "AKIAMOTOTESTING", secretAccessKey: "moto-testing" };

export const startMoto = async (env: Readonly<Record<string, string>> = {}): Promise<Moto> => {
  const port = await freePortInRange();
  const child = spawn(
    "/usr/bin/setpriv",
    ["--pdeathsig", "KILL", "python3", "-c", SERVER, "-H", "127.0.0.1", "-p", String(port)],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } },
  );
  let errors = "";
  child.stderr?.on("data", (chunk) => {
    errors = `${errors}${String(chunk)}`.slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  await eventually(
    `moto_server on ${endpoint}${errors === "" ? "" : `: ${errors}`}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`moto_server exited: ${errors}`);
      try {
        return (await fetch(`${endpoint}/moto-api/`)).status > 0 ? true : undefined;
      } catch {
        return undefined;
      }
    },
    20_000,
  );
  const clients: MediaLiveClient[] = [];
  return {
    endpoint,
    client: (region = "eu-west-1", credentials = MOTO_CREDENTIALS) => {
      const client = new MediaLiveClient({ endpoint, region, credentials });
      clients.push(client);
      return client;
    },
    stop: async () => {
      for (const client of clients) client.destroy();
      await stopChild(child);
    },
  };
};

/**
 * A MediaLive channel with one UDP output group whose output sends to `destinations` (pipeline 0, then 1),
 * passing SCTE-35 through unless told otherwise. Its id.
 */
export const createMediaLiveChannel = async (
  client: MediaLiveClient,
  options: {
    readonly name: string;
    readonly destinations: ReadonlyArray<string>;
    readonly scte35?: M2tsScte35Control;
    readonly egress?: ReadonlyArray<string>;
  },
): Promise<string> => {
  const input: CreateChannelCommandInput = {
    Name: options.name,
    ChannelClass: options.destinations.length > 1 ? "STANDARD" : "SINGLE_PIPELINE",
    Destinations: [{ Id: "to-distributary", Settings: options.destinations.map((Url) => ({ Url })) }],
    EncoderSettings: {
      AudioDescriptions: [],
      VideoDescriptions: [],
      TimecodeConfig: { Source: "EMBEDDED" },
      OutputGroups: [
        {
          Name: "distributary",
          OutputGroupSettings: { UdpGroupSettings: {} },
          Outputs: [
            {
              OutputName: "ts",
              OutputSettings: {
                UdpOutputSettings: {
                  Destination: { DestinationRefId: "to-distributary" },
                  ContainerSettings: {
                    M2tsSettings: { Scte35Control: options.scte35 ?? M2tsScte35Control.PASSTHROUGH },
                  },
                },
              },
            },
          ],
        },
      ],
    },
    ...(options.egress === undefined ? {} : { Tags: { "test:egress": options.egress.join(",") } }),
  };
  const created = await client.send(new CreateChannelCommand(input));
  const id = created.Channel?.Id;
  if (id === undefined) throw new Error("moto created a channel without an id");
  return id;
};

/**
 * An IAM user allowed exactly `actions`, made through moto's IAM API, and its access key. moto enforces IAM
 * only when started with `INITIAL_NO_AUTH_ACTION_COUNT`: the first that many calls (these three) go
 * unchecked, every later one is checked against the policy of the key that signed it.
 */
export const iamUser = async (moto: Moto, name: string, actions: ReadonlyArray<string>) => {
  const call = async (fields: Record<string, string>) => {
    const response = await fetch(`${moto.endpoint}/`, {
      method: "POST",
      headers: {
        // Not checked while the unchecked calls last; it tells moto which service is asked.
        authorization:
          "AWS4-HMAC-SHA256 Credential=AKIASETUP/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({ ...fields, Version: "2010-05-08" }).toString(),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`IAM ${fields.Action} failed: ${text}`);
    return text;
  };
  await call({ Action: "CreateUser", UserName: name });
  const policy = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: actions, Resource: "*" }] };
  await call({
    Action: "PutUserPolicy",
    UserName: name,
    PolicyName: "link",
    PolicyDocument: JSON.stringify(policy),
  });
  const keys = await call({ Action: "CreateAccessKey", UserName: name });
  const field = (tag: string) => new RegExp(`<${tag}>([^<]+)</${tag}>`).exec(keys)?.[1] ?? "";
  return { accessKeyId: field("AccessKeyId"), secretAccessKey: field("SecretAccessKey") };
};
