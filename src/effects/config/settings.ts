/**
 * Every `DISTRIBUTARY_*` setting of the service, each defined once here with its default and the values it
 * takes (docs/settings.md lists the same). Services read them through Effect `Config`, so a test
 * gives them with a `ConfigProvider`; the forwarding path's modules, which need a value at load or first use
 * in every thread, read the same definition from the environment with `settingNow`. `DISTRIBUTARY_RUNTIME`
 * is the launcher's own (bin/distributary): it picks the runtime before any of this runs.
 */
import { availableParallelism } from "node:os";
import * as Config from "effect/Config";
import * as ConfigError from "effect/ConfigError";
import * as ConfigProvider from "effect/ConfigProvider";
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Option from "effect/Option";
import type * as Redacted from "effect/Redacted";

/** `serve`'s address and configuration directory, each overridden by its command-line flag. */
export const servePort = Config.string("DISTRIBUTARY_PORT").pipe(Config.withDefault("8000"));
export const serveHost = Config.string("DISTRIBUTARY_HOST").pipe(Config.withDefault("0.0.0.0"));
export const configDir = Config.string("DISTRIBUTARY_CONFIG_DIR").pipe(Config.withDefault("./config"));

/** An admin token from the environment instead of the one printed at the first start (control/auth.ts). */
export const adminToken = Config.option(Config.redacted("DISTRIBUTARY_ADMIN_TOKEN"));

/** The log's level, as pino names them. */
export const logLevel = Config.string("DISTRIBUTARY_LOG_LEVEL").pipe(Config.withDefault("info"));

/**
 * How many forwarding workers: by default one per core. The main thread's work (API, pages, metrics) is light
 * beside forwarding, and the workers' higher priority puts them first anyway: a core kept back for it would
 * only halve what a two-core machine forwards.
 */
export const workerCount = Config.integer("DISTRIBUTARY_WORKERS").pipe(
  Config.withDefault(availableParallelism()),
  Config.validate({
    message: "DISTRIBUTARY_WORKERS must be 0 (forward in the main thread) or more",
    validation: (n) => n >= 0,
  }),
);

/** How many operator cues one channel takes in a minute (control/cue-limit.ts). */
export const operatorCuesPerMinute = Config.integer("DISTRIBUTARY_OPERATOR_CUES_PER_MINUTE").pipe(
  Config.withDefault(10),
  Config.validate({
    message: "DISTRIBUTARY_OPERATOR_CUES_PER_MINUTE must be a whole number of 1 or more",
    validation: (n) => n >= 1,
  }),
);

/** A forwarding worker's share of one core, as a whole percentage from `min` to 100. */
const percentOfACore = (name: string, min: number) =>
  Config.integer(name).pipe(
    Config.validate({
      message: `${name} must be a whole number from ${min} to 100`,
      validation: (n) => n >= min && n <= 100,
    }),
  );

/**
 * How busy a forwarding worker may be, in percent of one core over 5 s, before new channels go to the next one,
 * started then (workers/pool.ts). 0 starts every worker at once and spreads the channels by count. A second
 * thread never lowered the total (50 × 4: one thread 87.6 % of a core, two 89.9 %; 100 × 4: 103 against
 * 122 %, and 46–53 MiB more memory): it starts only once the first nears a whole core (docs/benchmarks.md).
 */
export const workerBusyPercent = percentOfACore("DISTRIBUTARY_WORKER_BUSY_PERCENT", 0).pipe(
  Config.withDefault(90),
);

/**
 * How busy a forwarding worker may get before some of its running channels move to another (each move costs
 * that channel's outputs a short silence); None when unset: the busy line then, so a service started with more
 * channels than one worker carries evens them out once, in its first seconds. 100: running channels never move.
 */
export const workerMovePercent = Config.option(percentOfACore("DISTRIBUTARY_WORKER_MOVE_PERCENT", 1));

const PRIORITIES = ["realtime", "high", "normal"] as const;
export type Priority = (typeof PRIORITIES)[number];
const isPriority = (value: string): value is Priority =>
  (PRIORITIES as ReadonlyArray<string>).includes(value);

/** The scheduling forwarding workers ask for (runtime/threads/priority.ts). */
export const forwardingPriority = Config.string("DISTRIBUTARY_FORWARDING_PRIORITY").pipe(
  Config.withDefault("high"),
  Config.validate({
    message: `DISTRIBUTARY_FORWARDING_PRIORITY must be one of ${PRIORITIES.join(", ")}`,
    validation: isPriority,
  }),
  Config.map((value) => value as Priority),
);

export const BATCH_MS_DEFAULT = 3;
const BATCH_MS_MAX = 20;
/** A number of milliseconds from 0 to `max`. */
const msUpTo =
  (max: number) =>
  (value: number): boolean =>
    Number.isFinite(value) && value >= 0 && value <= max;

/** How long a flowing input's datagrams may wait to be read together (runtime/sockets/batch-reader.ts); 0: as they come. */
export const batchMs = Config.number("DISTRIBUTARY_BATCH_MS").pipe(
  Config.withDefault(BATCH_MS_DEFAULT),
  Config.validate({
    message: `DISTRIBUTARY_BATCH_MS must be a number of milliseconds from 0 (read each datagram as it comes) to ${BATCH_MS_MAX}`,
    validation: msUpTo(BATCH_MS_MAX),
  }),
);

export const BATCH_MS_REMUXED_DEFAULT = 40;
const BATCH_MS_REMUXED_MAX = 100;

/**
 * The same wait for a channel none of whose outputs sends TS packets as they come (UDP, RTP, SRT): RTMP, RTSP,
 * HLS and files send whole frames or segments, so reading every 40 ms (a frame at 25 fps) instead of every 3
 * costs no destination anything it would see, and the thread wakes far less often. Never below
 * DISTRIBUTARY_BATCH_MS, never above a fifth of the channel's failover time.
 */
export const batchMsRemuxed = Config.number("DISTRIBUTARY_BATCH_MS_REMUXED").pipe(
  Config.withDefault(BATCH_MS_REMUXED_DEFAULT),
  Config.validate({
    message: `DISTRIBUTARY_BATCH_MS_REMUXED must be a number of milliseconds from 0 to ${BATCH_MS_REMUXED_MAX}`,
    validation: msUpTo(BATCH_MS_REMUXED_MAX),
  }),
);

/** `off` reads inputs through node:dgram's events, one datagram at a time, instead of recvmmsg in batches. */
export const batchRead = Config.string("DISTRIBUTARY_BATCH_READ").pipe(
  Config.withDefault("on"),
  Config.map((value) => value !== "off"),
);

/** `off` sends every UDP datagram on its own instead of a batch the kernel cuts (for a path that mishandles it). */
export const udpGso = Config.string("DISTRIBUTARY_UDP_GSO").pipe(
  Config.withDefault("on"),
  Config.map((value) => value !== "off"),
);

/** `dgram` keeps UDP and RTP outputs on node:dgram on Deno too (runtime/sockets/udp-sender.ts). */
export const udpSenderDgram = Config.string("DISTRIBUTARY_UDP_SENDER").pipe(
  Config.withDefault(""),
  Config.map((value) => value === "dgram"),
);

/** Another libsrt build to load instead of the system's (runtime/ffi/libsrt.ts); "" for the system's. */
export const libsrtPath = Config.string("DISTRIBUTARY_LIBSRT").pipe(Config.withDefault(""));

/** Where file and HLS-directory outputs may write (outputs/recordings.ts); none: `<config-dir>/recordings`. */
export const recordingsDir = Config.option(Config.nonEmptyString("DISTRIBUTARY_RECORDINGS_DIR"));

/**
 * The directory of the ristsrppasswd files RIST listeners may name as `srpfile` (runtime/links/rist-srp.ts): a file
 * under it, its real path under it too; none: no listener may name one.
 */
export const ristSrpDir = Config.option(Config.nonEmptyString("DISTRIBUTARY_RIST_SRP_DIR"));

/** A declarative document the service applies at start and whenever it changes (effects/config-code/config-file.ts). */
export const configFile = Config.option(Config.nonEmptyString("DISTRIBUTARY_CONFIG_FILE"));

/**
 * Where prepared slate clips are kept (effects/channel/slate-maker.ts), one file per format and picture, reused
 * by every channel that needs the same; none: `distributary-slates` in the system's temporary directory.
 */
export const slateDir = Config.option(Config.nonEmptyString("DISTRIBUTARY_SLATE_DIR"));

/** Whether HLS outputs may push to private networks (domain/channel/addresses.ts); loopback and link-local never. */
export const hlsPushAllowPrivate = Config.boolean("DISTRIBUTARY_HLS_PUSH_ALLOW_PRIVATE").pipe(
  Config.withDefault(false),
);

/**
 * Whether notifiers may reach private and loopback addresses (on-premises receivers, tests; link-local never): by
 * default they post to public addresses only, checked at the address a name resolves to (effects/notify/).
 */
export const notifyAllowPrivate = Config.boolean("DISTRIBUTARY_NOTIFY_ALLOW_PRIVATE").pipe(
  Config.withDefault(false),
);

/** Whether the pages' stills are on when the service starts (Settings turns them on and off at run time). */
export const thumbnailsOn = Config.string("DISTRIBUTARY_THUMBNAILS").pipe(
  Config.withDefault("on"),
  Config.map((value) => value !== "off"),
);

/** Who may scrape `/metrics` (http/metrics.ts), and the scrape-only token. */
export const metricsAuth = Config.literal(
  "token",
  "loopback",
)("DISTRIBUTARY_METRICS_AUTH").pipe(Config.withDefault("token" as const));
export const metricsToken = Config.option(Config.redacted("DISTRIBUTARY_METRICS_TOKEN"));

/**
 * Another endpoint for the AWS MediaLive client (a VPC endpoint, or a stand-in in tests); none: AWS's own for
 * the linked channel's region. Credentials are never a setting of ours: the AWS SDK's standard chain finds them.
 */
export const awsEndpoint = Config.option(Config.nonEmptyString("DISTRIBUTARY_AWS_ENDPOINT"));

/**
 * Test only: the names (comma-separated) of channels whose RTMP remux fails on every chunk it is given, as a
 * remux with a bug would. Shows that such a fault stays with the channel's RTMP outputs; never set in service.
 */
export const remuxFaultChannels = Config.string("DISTRIBUTARY_TEST_REMUX_FAULT").pipe(Config.withDefault(""));

/**
 * A setting read now from the environment, for a module that needs it outside any Effect (at load, in a
 * worker thread, on the forwarding path). A value the definition refuses gives `fallback` here: the service's
 * start reads the same setting through `Config` and stops on it with the setting's message.
 */
export const settingNow = <A>(config: Config.Config<A>, fallback: A): A =>
  Either.getOrElse(Effect.runSync(Effect.either(ConfigProvider.fromEnv().load(config))), () => fallback);

/**
 * How long an upgrade on one box (src/effects/handover/) waits for the new process to take every channel before
 * it kills it and the old one keeps them, in seconds.
 */
export const upgradeTimeoutSeconds = Config.integer("DISTRIBUTARY_UPGRADE_TIMEOUT_S").pipe(
  Config.validate({
    message: "must be a whole number of seconds, 1 or more",
    validation: (seconds) => seconds >= 1,
  }),
  Config.withDefault(30),
);

/** A fleet's shared store (`postgres://…`); none: the embedded JSON store of one box (the config directory). */
export const databaseUrl = Config.option(Config.redacted("DISTRIBUTARY_DATABASE_URL"));

/** This node's id in a fleet; by default the host's name. */
export const nodeId = Config.option(Config.nonEmptyString("DISTRIBUTARY_NODE_ID"));

/**
 * How peers and browsers reach this node (`http://host:port`); by default the host's name and the port. A
 * `$(NAME)` left in it (a Kubernetes reference to a variable not defined before it) is refused in words.
 */
export const nodeUrl = Config.option(
  Config.nonEmptyString("DISTRIBUTARY_NODE_URL").pipe(
    Config.validate({
      message:
        "must be the http(s)://host:port peers reach this node at, with every $(NAME) reference expanded (in Kubernetes, define the variable before DISTRIBUTARY_NODE_URL)",
      validation: (text) => {
        if (text.includes("$(")) return false;
        try {
          const url = new URL(text);
          return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "";
        } catch {
          return false;
        }
      },
    }),
  ),
);

/**
 * How long a channel's lease lasts without renewal, in ms: the longest a dead holder's channels wait for a
 * standby when its death cannot be seen at once (its host unreachable). Renewed every third of it.
 */
export const leaseMs = Config.integer("DISTRIBUTARY_LEASE_MS").pipe(
  Config.withDefault(6000),
  Config.validate({
    message: "DISTRIBUTARY_LEASE_MS must be from 1500 to 60000 milliseconds",
    validation: (n) => n >= 1500 && n <= 60_000,
  }),
);

/**
 * What a holder that reaches neither the database nor any peer does: `keep` sending (the default: it cannot
 * tell that from a network down for everyone, and the air comes first), or `stop` before its leases can run
 * out, so that a standby on the other side of a partition is the only sender.
 */
export const isolatedPolicy = Config.literal(
  "keep",
  "stop",
)("DISTRIBUTARY_ISOLATED").pipe(Config.withDefault("keep" as const));

/** `off`: a standby waits for a dead holder's lease to expire instead of ending it when the holder's port refuses. */
export const fastTakeover = Config.string("DISTRIBUTARY_FAST_TAKEOVER").pipe(
  Config.withDefault("on"),
  Config.map((value) => value !== "off"),
);

/**
 * Sign-on with the company's identity provider (control/sign-on.ts): set together, or none of them. The pages
 * then offer "Sign in with …" beside the token form, and the API takes the provider's JWTs beside local tokens.
 */
export interface OidcSettings {
  /** The provider's issuer: https, or http for a provider on this host's loopback only. */
  readonly issuer: URL;
  readonly clientId: string;
  /** The client's secret, or the file it is in; neither for a public client (PKCE alone). */
  readonly clientSecret: Option.Option<Redacted.Redacted<string>>;
  readonly clientSecretFile: Option.Option<string>;
  /** This service's address as browsers reach it: the provider sends them back to `<publicUrl>/auth/callback`. */
  readonly publicUrl: string;
  readonly scopes: string;
  /** The `aud` the API's JWTs must carry; none: the API takes no JWT, only the pages sign on. */
  readonly audience: Option.Option<string>;
  /** The claim access rules usually match, shown in each sign-in's audit line (rules see every claim). */
  readonly rolesClaim: string;
  /**
   * `at+jwt`: the API takes only JWTs typed `at+jwt` (RFC 9068), as providers that type their access tokens
   * issue them; `any`: any type (Entra ID and Keycloak type theirs `JWT`). ID tokens are refused either way.
   */
  readonly accessTokenType: "at+jwt" | "any";
}

const OIDC_NAMES = {
  issuer: "DISTRIBUTARY_OIDC_ISSUER",
  clientId: "DISTRIBUTARY_OIDC_CLIENT_ID",
  clientSecret: "DISTRIBUTARY_OIDC_CLIENT_SECRET",
  clientSecretFile: "DISTRIBUTARY_OIDC_CLIENT_SECRET_FILE",
  publicUrl: "DISTRIBUTARY_OIDC_PUBLIC_URL",
  scopes: "DISTRIBUTARY_OIDC_SCOPES",
  audience: "DISTRIBUTARY_OIDC_AUDIENCE",
  rolesClaim: "DISTRIBUTARY_OIDC_ROLES_CLAIM",
  accessTokenType: "DISTRIBUTARY_OIDC_ACCESS_TOKEN_TYPE",
} as const;

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

const absoluteUrl = (text: string): URL | undefined => {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
};

/** The OIDC settings as given (each absent or its text) checked together: none, the settings, or why not. */
export const checkOidcSettings = (given: {
  readonly issuer: Option.Option<string>;
  readonly clientId: Option.Option<string>;
  readonly clientSecret: Option.Option<Redacted.Redacted<string>>;
  readonly clientSecretFile: Option.Option<string>;
  readonly publicUrl: Option.Option<string>;
  readonly scopes: Option.Option<string>;
  readonly audience: Option.Option<string>;
  readonly rolesClaim: Option.Option<string>;
  readonly accessTokenType?: Option.Option<string>;
}): Either.Either<Option.Option<OidcSettings>, string> => {
  const { issuer, clientId, clientSecret, clientSecretFile, publicUrl, scopes, audience, rolesClaim } = given;
  if (Option.isNone(issuer)) {
    const others = Object.entries(given).filter(([, value]) =>
      Option.isSome(value as Option.Option<unknown>),
    );
    return others.length === 0
      ? Either.right(Option.none())
      : Either.left(
          `DISTRIBUTARY_OIDC_ISSUER is not set, but other DISTRIBUTARY_OIDC_ settings are (${others.map(([name]) => OIDC_NAMES[name as keyof typeof OIDC_NAMES]).join(", ")}): set the issuer too, or none of them`,
        );
  }
  const issuerUrl = absoluteUrl(issuer.value);
  if (
    issuerUrl === undefined ||
    !(
      issuerUrl.protocol === "https:" ||
      (issuerUrl.protocol === "http:" && LOOPBACK_HOSTS.has(issuerUrl.hostname))
    ) ||
    issuerUrl.search !== "" ||
    issuerUrl.hash !== ""
  ) {
    return Either.left(
      `DISTRIBUTARY_OIDC_ISSUER must be the provider's https:// issuer URL (http:// only for a provider on this host's loopback), without query or fragment; got ${JSON.stringify(issuer.value)}`,
    );
  }
  if (Option.isNone(clientId) || clientId.value.trim() === "")
    return Either.left(
      "DISTRIBUTARY_OIDC_CLIENT_ID must be set with DISTRIBUTARY_OIDC_ISSUER: the client id the provider gave this service",
    );
  if (Option.isSome(clientSecret) && Option.isSome(clientSecretFile))
    return Either.left(
      "set DISTRIBUTARY_OIDC_CLIENT_SECRET or DISTRIBUTARY_OIDC_CLIENT_SECRET_FILE, not both",
    );
  const publicBase = Option.isSome(publicUrl) ? absoluteUrl(publicUrl.value) : undefined;
  if (
    publicBase === undefined ||
    (publicBase.protocol !== "https:" && publicBase.protocol !== "http:") ||
    publicBase.search !== "" ||
    publicBase.hash !== ""
  ) {
    return Either.left(
      "DISTRIBUTARY_OIDC_PUBLIC_URL must be this service's http(s):// address as browsers reach it (the provider sends them back to <it>/auth/callback)" +
        (Option.isSome(publicUrl) ? `; got ${JSON.stringify(publicUrl.value)}` : ""),
    );
  }
  const scopeList = Option.getOrElse(scopes, () => "openid profile email").trim();
  if (!scopeList.split(/\s+/).includes("openid"))
    return Either.left(`DISTRIBUTARY_OIDC_SCOPES must include openid; got ${JSON.stringify(scopeList)}`);
  const claim = Option.getOrElse(rolesClaim, () => "groups").trim();
  if (claim === "") return Either.left("DISTRIBUTARY_OIDC_ROLES_CLAIM must name a claim (by default groups)");
  const tokenType = Option.getOrElse(given.accessTokenType ?? Option.none(), () => "any").trim();
  if (tokenType !== "at+jwt" && tokenType !== "any")
    return Either.left(
      `DISTRIBUTARY_OIDC_ACCESS_TOKEN_TYPE must be at+jwt (the API takes only access tokens typed so) or any (by default); got ${JSON.stringify(tokenType)}`,
    );
  return Either.right(
    Option.some({
      issuer: issuerUrl,
      clientId: clientId.value.trim(),
      clientSecret,
      clientSecretFile,
      publicUrl: publicBase.href.replace(/\/+$/, ""),
      scopes: scopeList,
      audience: Option.filter(
        Option.map(audience, (text) => text.trim()),
        (text) => text !== "",
      ),
      rolesClaim: claim,
      accessTokenType: tokenType,
    }),
  );
};

const oidcText = (name: string) => Config.option(Config.string(`DISTRIBUTARY_OIDC_${name}`));

/** The OIDC settings (none when none is set); a service given bad ones stops at its start with the reason. */
export const oidcSettings = Config.all({
  issuer: oidcText("ISSUER"),
  clientId: oidcText("CLIENT_ID"),
  clientSecret: Config.option(Config.redacted("DISTRIBUTARY_OIDC_CLIENT_SECRET")),
  clientSecretFile: oidcText("CLIENT_SECRET_FILE"),
  publicUrl: oidcText("PUBLIC_URL"),
  scopes: oidcText("SCOPES"),
  audience: oidcText("AUDIENCE"),
  rolesClaim: oidcText("ROLES_CLAIM"),
  accessTokenType: oidcText("ACCESS_TOKEN_TYPE"),
}).pipe(
  Config.mapOrFail((given) =>
    Either.mapLeft(checkOidcSettings(given), (message) => ConfigError.InvalidData([], message)),
  ),
);
