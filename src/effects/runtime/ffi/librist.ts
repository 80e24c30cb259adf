/**
 * The one module that talks to librist (Debian's librist4, 0.2.7) through koffi: it loads the library, declares
 * its functions and implements the interface of librist-api.ts, which is all the rest of the service uses.
 *
 * Nothing runs per packet across the FFI boundary from librist's side:
 * - a receiver's data: librist writes a byte to a pipe of ours for each block it queues
 *   (rist_receiver_data_notify_fd_set); the pipe is watched on the event loop (libc.ts `watchReadable`, koffi's
 *   libuv poll, as the batch reader watches a quiet socket), and its readiness drains every queued block with
 *   rist_receiver_data_read2 (timeout 0), all of them in one turn (end-of-turn.ts `asOneTurn`);
 * - a sender's data: rist_sender_data_write copies the message into librist's queue, under a lock librist's
 *   sender thread holds while it sends: the writes run on a thread of their own (rist-sends.ts), never here;
 * - statistics: librist's statistics thread calls a registered callback, which koffi queues to this thread's
 *   event loop (the librist thread waits meanwhile); it copies the JSON, frees it and hands the readings over;
 * - a listener's EAP-SRP lookup (srpfile) likewise: a registered callback queued here, which answers from memory
 *   in copies librist owns (libc's malloc), while librist's protocol thread waits holding its peer list's lock;
 * - a refused caller: librist 0.2.7 has no callback for it, only its log ("[EAP-SRP] Authentication failed for
 *   user@address", a warning). A context that wants to know gets logging settings of its own whose log socket is
 *   one end of a datagram socket pair: librist formats each warning and error and sends it there without waiting
 *   (a full socket drops it), and the other end is watched on the event loop as the data pipe is;
 * - rist_destroy joins librist's threads, one of which may be waiting on that callback: it runs as an
 *   asynchronous koffi call on a worker thread, so the event loop stays free to run the callback and a shutdown
 *   can never deadlock. The callback is unregistered only once the context is gone.
 *
 * Struct layouts are those of librist 0.2.7's headers (headers.h): struct rist_data_block is 72 bytes on 64-bit
 * Linux (payload pointer, size_t length, ts_ntp, two uint16 ports, the peer pointer, flow_id, seq, flags, a ref
 * pointer; a send fills the first two alone); struct rist_stats starts with uint32 json_size and the char * of the
 * JSON at offset 8.
 * Node.js only: Bun and Deno lack koffi's libuv poll and its queueing of callbacks from other threads.
 */
import koffi from "koffi";
import { type RistSends, ristSends } from "../links/rist-sends.ts";
import type { SrpVerifier } from "../links/rist-srp.ts";
import { runtimeName } from "../process/runtime.ts";
import { asOneTurn } from "../timers/end-of-turn.ts";
import { SOCK_DGRAM, SOCK_NONBLOCK, watchReadable } from "./libc.ts";
import { type LibRist, LibRistError, type RistContext, type RistOpen, readingsOf } from "./librist-api.ts";

const LIBRARY = "librist.so.4";
const PROFILE = { simple: 0, main: 1 } as const;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

const DataBlock = koffi.struct("rist_data_block", {
  payload: "void *",
  payload_len: "size_t",
  ts_ntp: "uint64_t",
  virt_src_port: "uint16_t",
  virt_dst_port: "uint16_t",
  peer: "void *",
  flow_id: "uint32_t",
  seq: "uint64_t",
  flags: "uint32_t",
  ref: "void *",
});
// logging.h's struct rist_logging_settings (the same layout from 0.2.0 on): librist keeps the pointer.
const LoggingSettings = koffi.struct("rist_logging_settings", {
  log_level: "int",
  log_cb: "void *",
  log_cb_arg: "void *",
  log_socket: "int",
  log_stream: "void *",
});
const RIST_LOG_WARN = 4;
const AF_UNIX = 1;
/** librist's line for a caller whose proof failed: `[EAP-SRP] Authentication failed for <user>@<address>`. */
const AUTH_FAILED = /\[EAP-SRP\] Authentication failed for (.*)@([^@\s]*)\s*$/;
const StatsCallback = koffi.proto("int rist_stats_cb(void *arg, const void *stats)");
// librist_srp.h's user_verifier_lookup_t: the name in, the rest out (librist frees what it is handed).
const SrpLookup = koffi.proto(
  "void rist_srp_lookup(const char *username, void *verifier_len, void *verifier, void *salt_len, void *salt, void *use_default_n, void *n_modulus, void *generator, void *user_data)",
);

const bind = (path: string): LibRist => {
  const lib = koffi.load(path);
  const libc = koffi.load("libc.so.6");
  const f = {
    version: lib.func("const char *librist_version()"),
    receiverCreate: lib.func("int rist_receiver_create(_Out_ void **ctx, int profile, void *logging)"),
    senderCreate: lib.func(
      "int rist_sender_create(_Out_ void **ctx, int profile, uint32_t flow, void *logging)",
    ),
    parse: lib.func("int rist_parse_address2(const char *url, _Out_ void **config)"),
    configFree: lib.func("int rist_peer_config_free2(_Inout_ void **config)"),
    peerCreate: lib.func("int rist_peer_create(void *ctx, _Out_ void **peer, const void *config)"),
    srp: lib.func(
      "int rist_enable_eap_srp(void *peer, const char *user, const char *pass, void *lookup, void *arg)",
    ),
    srpServe: lib.func(
      "int rist_enable_eap_srp(void *peer, const char *user, const char *pass, rist_srp_lookup *lookup, void *arg)",
    ),
    notify: lib.func("int rist_receiver_data_notify_fd_set(void *ctx, int fd)"),
    start: lib.func("int rist_start(void *ctx)"),
    read: lib.func("int rist_receiver_data_read2(void *ctx, _Out_ void **block, int timeout)"),
    free: lib.func("void rist_receiver_data_block_free2(_Inout_ void **block)"),
    statsSet: lib.func("int rist_stats_callback_set(void *ctx, int interval, rist_stats_cb *cb, void *arg)"),
    statsFree: lib.func("int rist_stats_free(const void *stats)"),
    destroy: lib.func("int rist_destroy(void *ctx)"),
    pipe: libc.func("int pipe2(_Out_ int *fds, int flags)"),
    readFd: libc.func("intptr_t read(int, void *, size_t)"),
    close: libc.func("int close(int)"),
    malloc: libc.func("void *malloc(size_t)"),
    memcpy: libc.func("void *memcpy(void *, const void *, size_t)"),
    release: libc.func("void free(void *)"),
    socketpair: libc.func("int socketpair(int, int, int, _Out_ int *fds)"),
  };
  /**
   * Logging settings whose log socket is one end of a socket pair, and that pair: librist sends each warning
   * and error there; null when the pair cannot be made (nothing is then told of refused callers).
   */
  const logSocket = () => {
    const fds = [0, 0];
    if (f.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | O_CLOEXEC, 0, fds) !== 0) return null;
    const settings = f.malloc(koffi.sizeof(LoggingSettings));
    koffi.encode(settings, LoggingSettings, {
      log_level: RIST_LOG_WARN,
      log_cb: null,
      log_cb_arg: null,
      log_socket: fds[1] ?? -1,
      log_stream: null,
    });
    return { settings, fds: [fds[0] ?? -1, fds[1] ?? -1] as const };
  };
  /** A copy of `bytes` in memory of libc's malloc, for librist to own and free. */
  const owned = (bytes: Uint8Array) => {
    const copy = f.malloc(bytes.length);
    f.memcpy(copy, bytes, bytes.length);
    return copy;
  };
  /**
   * A listener's EAP-SRP lookup as a callback librist calls on its protocol thread, which holds its peer list's
   * lock and waits while koffi runs this on the JavaScript thread. Nothing this thread calls of librist takes
   * that lock once a context has started (a receiver's reads take its flows' lock; a sender's writes are the
   * writer thread's; rist_destroy runs off this thread), so the wait always ends. An unknown name leaves the
   * outputs empty: librist then refuses the caller.
   */
  const srpCallback = (lookup: (username: string) => SrpVerifier | null) =>
    koffi.register(
      (
        username: string | null,
        verifierLength: unknown,
        verifier: unknown,
        saltLength: unknown,
        salt: unknown,
        useDefault: unknown,
      ) => {
        try {
          const found = username === null ? null : lookup(username);
          if (found === null) return;
          koffi.encode(verifier, "void *", owned(found.verifier));
          koffi.encode(verifierLength, "size_t", found.verifier.length);
          koffi.encode(salt, "void *", owned(found.salt));
          koffi.encode(saltLength, "size_t", found.salt.length);
          koffi.encode(useDefault, "bool", true);
        } catch {
          // Nothing written: librist refuses the caller, as for an unknown name.
        }
      },
      koffi.pointer(SrpLookup),
    );
  const version = String(f.version());

  const open = (options: RistOpen): RistContext => {
    const out: Array<unknown> = [null];
    const log = options.onAuthFailure === undefined ? null : logSocket();
    const dropLog = () => {
      if (log === null) return;
      for (const fd of log.fds) f.close(fd);
      f.release(log.settings);
    };
    const created =
      options.role === "receiver"
        ? f.receiverCreate(out, PROFILE[options.profile], log?.settings ?? null)
        : f.senderCreate(out, PROFILE[options.profile], 0, log?.settings ?? null);
    const ctx = out[0];
    if (created !== 0 || ctx == null) {
      dropLog();
      throw new LibRistError(`rist_${options.role}_create`, "librist refused a context");
    }
    const statsCallback = koffi.register((_arg: unknown, stats: unknown) => {
      try {
        const json = koffi.decode(stats, 8, "char *") as string | null;
        f.statsFree(stats);
        if (json !== null) options.onStats(readingsOf(json));
      } catch {
        // A reading that cannot be read is skipped; the next one comes at the next interval.
      }
      return 0;
    }, koffi.pointer(StatsCallback));
    let pipe: [number, number] | null = null;
    let watch: ReturnType<typeof watchReadable> = null;
    let logWatch: ReturnType<typeof watchReadable> = null;
    let closed: Promise<void> | null = null;
    let sends: RistSends | null = null;
    const srpCallbacks: Array<ReturnType<typeof srpCallback>> = [];
    const close = () => {
      closed ??= (async () => {
        watch?.close();
        logWatch?.close();
        // The writer thread passes all it was handed for this context before the context goes.
        await sends?.close();
        await new Promise<void>((resolve) =>
          f.destroy.async(ctx, () => {
            koffi.unregister(statsCallback);
            for (const callback of srpCallbacks) koffi.unregister(callback);
            if (pipe !== null) for (const fd of pipe) f.close(fd);
            // librist keeps the settings' pointer and writes to the socket until its context is gone.
            dropLog();
            resolve();
          }),
        );
      })();
      return closed;
    };
    try {
      for (const peer of options.peers) {
        const config: Array<unknown> = [null];
        if (f.parse(peer.url, config) !== 0 || config[0] == null) {
          throw new LibRistError("rist_parse_address2", "librist refused the peer's URL");
        }
        const made: Array<unknown> = [null];
        const result = f.peerCreate(ctx, made, config[0]);
        f.configFree(config);
        if (result !== 0 || made[0] == null) {
          throw new LibRistError("rist_peer_create", "librist could not open the peer (is the port in use?)");
        }
        if (
          peer.username !== null &&
          peer.password !== null &&
          f.srp(made[0], peer.username, peer.password, null, null) !== 0
        ) {
          throw new LibRistError("rist_enable_eap_srp", "librist could not enable EAP-SRP for the peer");
        }
        if (peer.srpLookup != null) {
          const callback = srpCallback(peer.srpLookup);
          srpCallbacks.push(callback);
          if (f.srpServe(made[0], null, null, callback, null) !== 0) {
            throw new LibRistError("rist_enable_eap_srp", "librist could not check callers by EAP-SRP");
          }
        }
      }
      f.statsSet(ctx, options.statsMs, statsCallback, null);
      const onAuthFailure = options.onAuthFailure;
      if (log !== null && onAuthFailure !== undefined) {
        const lines = Buffer.alloc(4096);
        const [readFd] = log.fds;
        // Each read takes one of librist's lines; the socket holds what came since, and drops past its size. At
        // most 256 a turn: a flood of lines (garbage at the port) waits for the next readiness, not the loop.
        const drainLog = () => {
          for (let line = 0; line < 256; line++) {
            const length = Number(f.readFd(readFd, lines, lines.length));
            if (length <= 0 || closed !== null) return;
            const failed = AUTH_FAILED.exec(lines.toString("utf8", 0, length));
            if (failed !== null) onAuthFailure(failed[1] ?? "", failed[2] ?? "");
          }
        };
        logWatch = watchReadable(readFd, drainLog);
        logWatch?.start();
      }
      const onData = options.onData;
      if (onData !== undefined) {
        const fds = [0, 0];
        if (f.pipe(fds, O_NONBLOCK | O_CLOEXEC) !== 0)
          throw new LibRistError("pipe2", "no pipe for librist's notices");
        pipe = [fds[0] ?? -1, fds[1] ?? -1];
        f.notify(ctx, pipe[1]);
        const scratch = Buffer.alloc(4096);
        const block: Array<unknown> = [null];
        const readFd = pipe[0];
        const drain = () => {
          while (f.readFd(readFd, scratch, scratch.length) > 0);
          while (closed === null) {
            const left = f.read(ctx, block, 0);
            if (left < 0 || block[0] == null) return;
            const data = koffi.decode(block[0], DataBlock) as {
              payload: unknown;
              payload_len: number | bigint;
              flow_id: number;
              seq: number | bigint;
            };
            const length = Number(data.payload_len);
            if (length > 0)
              onData(new Uint8Array(koffi.view(data.payload, length)), Number(data.seq), data.flow_id);
            f.free(block);
            if (left === 0) return;
          }
        };
        watch = watchReadable(readFd, () => asOneTurn(drain));
        if (watch === null) throw new LibRistError("watch", "this runtime cannot watch librist's notices");
        watch.start();
      }
      if (f.start(ctx) !== 0) throw new LibRistError("rist_start", "librist could not start the context");
    } catch (error) {
      void close();
      throw error;
    }
    // A sender's writes are the writer thread's (rist-sends.ts): rist_sender_data_write can wait on librist's lock.
    const handed = options.role === "sender" ? ristSends(Number(koffi.address(ctx))) : null;
    sends = handed;
    return { send: (chunk) => handed?.send(chunk) ?? false, close };
  };
  return { library: path, version, open };
};

let loaded: { readonly lib: LibRist } | { readonly error: string } | null = null;

/** librist, loaded once per thread, or why it cannot be, in words for the operator. */
export const loadLibRist = (): { readonly lib: LibRist } | { readonly error: string } => {
  if (loaded !== null) return loaded;
  if (runtimeName !== "node") {
    loaded = {
      error: `RIST runs on Node.js only: librist's data and statistics reach the service through koffi's event-loop hooks, which ${runtimeName === "bun" ? "Bun" : "Deno"} lacks; run the service on Node.js for RIST inputs and outputs`,
    };
    return loaded;
  }
  try {
    loaded = { lib: bind(LIBRARY) };
  } catch {
    loaded = {
      error: `RIST needs librist, which cannot be loaded (${LIBRARY}); install it with: apt-get install librist4`,
    };
  }
  return loaded;
};
