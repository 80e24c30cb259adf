/**
 * The four MediaLive calls the link makes (DescribeChannel, StartChannel, StopChannel, ListChannels) through
 * the AWS SDK for JavaScript v3, one client per region. Credentials come from the SDK's standard chain
 * (environment, shared config and profile, container or instance role): we never hold, log or show them.
 * Every failure becomes words a person can act on — the IAM action that is missing, the region that does not
 * answer — and never the SDK's error object, whose request and response may carry signed headers.
 *
 * The SDK is loaded at the first call: it costs a process about 37 MiB of memory, which a service that
 * drives no MediaLive channel should not carry.
 */
import type { MediaLiveClient } from "@aws-sdk/client-medialive";
import * as Data from "effect/Data";
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import type { DescribedChannel, MediaLiveLink } from "../../domain/medialive/medialive.ts";
import { awsEndpoint } from "../config/settings.ts";

type MediaLiveCall = "DescribeChannel" | "StartChannel" | "StopChannel" | "ListChannels";

export class MediaLiveFailure extends Data.TaggedError("MediaLiveFailure")<{
  /** access: IAM refused; credentials: none found or not accepted; not_found; conflict: the state forbids it;
   * throttled: too many calls; unreachable: no endpoint answered; other: anything else. */
  readonly kind: "access" | "credentials" | "not_found" | "conflict" | "throttled" | "unreachable" | "other";
  readonly message: string;
}> {}

interface SdkError {
  readonly name?: string;
  readonly code?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

const NETWORK_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT"]);

/** An SDK failure in words; only the error's name, code and HTTP status are read, never its text or request. */
export const failureOf = (error: unknown, call: MediaLiveCall, link: MediaLiveLink): MediaLiveFailure => {
  const sdk = (typeof error === "object" && error !== null ? error : {}) as SdkError;
  const name = sdk.name ?? "";
  const status = sdk.$metadata?.httpStatusCode;
  const code =
    sdk.code ?? (error instanceof Error && "cause" in error ? (error.cause as SdkError)?.code : "");
  const where = `channel '${link.channel_id}' in ${link.region}`;
  if (name === "CredentialsProviderError")
    return new MediaLiveFailure({
      kind: "credentials",
      message:
        "no AWS credentials were found: give them in the environment, a shared profile, or a container or instance role",
    });
  if (
    /UnrecognizedClient|InvalidSignature|InvalidClientTokenId|ExpiredToken|SignatureDoesNotMatch/.test(name)
  )
    return new MediaLiveFailure({
      kind: "credentials",
      message: `AWS did not accept the credentials (${name}): check the access key, or renew the session`,
    });
  if (/AccessDenied|Forbidden/.test(name) || status === 403)
    return new MediaLiveFailure({
      kind: "access",
      message: `AWS refused medialive:${call} on ${where}: the IAM policy of these credentials must allow medialive:${call}`,
    });
  if (name === "NotFoundException" || status === 404)
    return new MediaLiveFailure({ kind: "not_found", message: `MediaLive has no ${where}` });
  if (name === "ConflictException" || name === "UnprocessableEntityException" || status === 409)
    return new MediaLiveFailure({
      kind: "conflict",
      message: `MediaLive refused ${call} on ${where}: its state does not allow it now`,
    });
  if (/TooManyRequests|Throttl/.test(name) || status === 429)
    return new MediaLiveFailure({
      kind: "throttled",
      message: `MediaLive throttled ${call} on ${where}: asked too often; trying again later`,
    });
  if (NETWORK_CODES.has(String(code)) || name === "TimeoutError")
    return new MediaLiveFailure({
      kind: "unreachable",
      message: `no MediaLive endpoint answered for region ${link.region} (${code || name}): check the region, and the network to AWS`,
    });
  return new MediaLiveFailure({
    kind: "other",
    message: `MediaLive answered ${call} on ${where} with an error${status === undefined ? "" : ` (HTTP ${status})`}`,
  });
};

type Sdk = typeof import("@aws-sdk/client-medialive");
let sdk: Promise<Sdk> | undefined;
const loadSdk = (): Promise<Sdk> => {
  sdk ??= import("@aws-sdk/client-medialive");
  return sdk;
};

export interface MediaLiveCalls {
  readonly describe: (link: MediaLiveLink) => Effect.Effect<DescribedChannel, MediaLiveFailure>;
  /** The state MediaLive answers with (STARTING, STOPPING). */
  readonly start: (link: MediaLiveLink) => Effect.Effect<string | null, MediaLiveFailure>;
  readonly stop: (link: MediaLiveLink) => Effect.Effect<string | null, MediaLiveFailure>;
  /** The ids of every channel in the link's region. */
  readonly list: (link: MediaLiveLink) => Effect.Effect<ReadonlyArray<string>, MediaLiveFailure>;
}

/** The calls over one SDK client per region, closed with the scope. */
export const makeMediaLiveCalls = Effect.gen(function* () {
  const endpoint = Option.getOrUndefined(yield* awsEndpoint);
  const clients = new Map<string, MediaLiveClient>();
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const client of clients.values()) client.destroy();
      clients.clear();
    }),
  );
  const clientFor = (aws: Sdk, region: string) => {
    let client = clients.get(region);
    if (client === undefined) {
      // The SDK's own retries take throttling and 5xx answers with backoff; the poll backs off on top of them.
      client = new aws.MediaLiveClient({
        region,
        maxAttempts: 4,
        ...(endpoint === undefined ? {} : { endpoint }),
      });
      clients.set(region, client);
    }
    return client;
  };
  const send = <A>(
    call: MediaLiveCall,
    link: MediaLiveLink,
    run: (client: MediaLiveClient, aws: Sdk, signal: AbortSignal) => Promise<A>,
  ) =>
    Effect.tryPromise({
      try: async (signal) => {
        const aws = await loadSdk();
        return run(clientFor(aws, link.region), aws, signal);
      },
      catch: (error) => failureOf(error, call, link),
    });

  const calls: MediaLiveCalls = {
    // An unknown id is not always a 404 (stand-ins answer 500): ListChannels, which the link's IAM policy
    // allows, tells an unknown channel or a wrong region apart from another failure.
    describe: (link) =>
      (
        send("DescribeChannel", link, (client, aws, abortSignal) =>
          client.send(new aws.DescribeChannelCommand({ ChannelId: link.channel_id }), { abortSignal }),
        ) as Effect.Effect<DescribedChannel, MediaLiveFailure>
      ).pipe(
        Effect.catchIf(
          (failure) => failure.kind === "not_found" || failure.kind === "other",
          (failure) =>
            Effect.flatMap(
              Effect.orElseSucceed(calls.list(link), () => null),
              (ids) =>
                Effect.fail(
                  ids === null || ids.includes(link.channel_id)
                    ? failure
                    : new MediaLiveFailure({
                        kind: "not_found",
                        message: `MediaLive has no channel '${link.channel_id}' in ${link.region} (${ids.length} other${ids.length === 1 ? "" : "s"} there): check the channel id and the region`,
                      }),
                ),
            ),
        ),
      ),
    start: (link) =>
      Effect.map(
        send("StartChannel", link, (client, aws, abortSignal) =>
          client.send(new aws.StartChannelCommand({ ChannelId: link.channel_id }), { abortSignal }),
        ),
        (answer) => answer.State ?? null,
      ),
    stop: (link) =>
      Effect.map(
        send("StopChannel", link, (client, aws, abortSignal) =>
          client.send(new aws.StopChannelCommand({ ChannelId: link.channel_id }), { abortSignal }),
        ),
        (answer) => answer.State ?? null,
      ),
    list: (link) =>
      Effect.gen(function* () {
        const ids: string[] = [];
        let token: string | undefined;
        do {
          const page = yield* send("ListChannels", link, (client, aws, abortSignal) =>
            client.send(new aws.ListChannelsCommand({ NextToken: token }), { abortSignal }),
          );
          for (const channel of page.Channels ?? []) if (channel.Id !== undefined) ids.push(channel.Id);
          token = page.NextToken;
        } while (token !== undefined && token !== "");
        return ids;
      }),
  };
  return calls;
});
