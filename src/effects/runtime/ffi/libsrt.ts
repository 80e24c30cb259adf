/**
 * The one module that talks to libsrt (Debian's libsrt1.5-openssl, else the GnuTLS flavour) through koffi: it
 * loads the library, declares its functions and implements the interface of libsrt-api.ts, which is all the
 * rest of the service uses, so another runtime's FFI (Bun, Deno) can replace this file (and libsrt-structs.ts,
 * the C layouts it hands libsrt, which calls nothing).
 *
 * Used the way libsrt's authors intend from an event loop: every socket is non-blocking (SRTO_SNDSYN and
 * SRTO_RCVSYN off), and readiness (connected, accepted, broken) comes from one process-wide srt_epoll set that
 * an asynchronous koffi call of srt_epoll_uwait waits on in a worker thread, a short timeout at a time, only
 * while some socket is watched (libsrt's wait wakes every 10 ms and on any socket's change: watch a socket
 * only while something is awaited on it). Sends (srt_sendmsg2) only copy into libsrt's send buffer and never
 * wait.
 *
 * Struct layouts are those of srt.h in libsrt 1.5.1 (SRT_TRACEBSTATS = struct CBytePerfMon, in libsrt-structs.ts:
 * 496 bytes, msRTT at 328, as gcc lays that header out; SRT_EPOLL_EVENT = { int fd; int events; }; SRT_MSGCTRL,
 * 48 bytes).
 */
import koffi, { type LibraryHandle } from "koffi";
import { libsrtPath, settingNow } from "../../config/settings.ts";
import { type LibSrt, LibSrtError, SRT_ERR, SRTO } from "./libsrt-api.ts";
import { ListenHook, peerText, sockaddrIn, sockaddrText, TraceBStats } from "./libsrt-structs.ts";

// Debian's libsrt1.5-openssl ships libsrt.so.1.5; other builds name the OpenSSL flavour libsrt-openssl.
const candidates = ["libsrt-openssl.so.1.5", "libsrt.so.1.5", "libsrt-gnutls.so.1.5"];

/** How long one asynchronous srt_epoll_uwait waits; it returns at once when something happens. */
const POLL_TIMEOUT_MS = 250;
const POLL_EVENTS = 64;

/** libsrt's functions as koffi declares them, from the loaded library. */
const declare = (lib: LibraryHandle) => ({
  startup: lib.func("int srt_startup()"),
  cleanup: lib.func("int srt_cleanup()"),
  epoll_release: lib.func("int srt_epoll_release(int)"),
  getversion: lib.func("uint32_t srt_getversion()"),
  setloglevel: lib.func("void srt_setloglevel(int)"),
  create_socket: lib.func("int srt_create_socket()"),
  setsockflag: lib.func("int srt_setsockflag(int, int, const void *, int)"),
  getsockflag: lib.func("int srt_getsockflag(int, int, _Out_ void *, _Inout_ int *)"),
  bind: lib.func("int srt_bind(int, const void *, int)"),
  listen: lib.func("int srt_listen(int, int)"),
  listen_callback: lib.func("int srt_listen_callback(int, srt_listen_hook *, void *)"),
  setrejectreason: lib.func("int srt_setrejectreason(int, int)"),
  accept: lib.func("int srt_accept(int, void *, int *)"),
  connect: lib.func("int srt_connect(int, const void *, int)"),
  close: lib.func("int srt_close(int)"),
  getsockstate: lib.func("int srt_getsockstate(int)"),
  getpeername: lib.func("int srt_getpeername(int, _Out_ void *, _Inout_ int *)"),
  getsockname: lib.func("int srt_getsockname(int, _Out_ void *, _Inout_ int *)"),
  getlasterror: lib.func("int srt_getlasterror(void *)"),
  getlasterror_str: lib.func("const char *srt_getlasterror_str()"),
  getrejectreason: lib.func("int srt_getrejectreason(int)"),
  rejectreason_str: lib.func("const char *srt_rejectreason_str(int)"),
  sendmsg2: lib.func("int srt_sendmsg2(int, const void *, int, void *)"),
  time_now: lib.func("int64_t srt_time_now()"),
  recvmsg2: lib.func("int srt_recvmsg2(int, _Out_ void *, int, void *)"),
  bstats: lib.func("srt_bstats", "int", ["int", koffi.out(koffi.pointer(TraceBStats)), "int"]),
  epoll_create: lib.func("int srt_epoll_create()"),
  epoll_add_usock: lib.func("int srt_epoll_add_usock(int, int, const int *)"),
  epoll_update_usock: lib.func("int srt_epoll_update_usock(int, int, const int *)"),
  epoll_remove_usock: lib.func("int srt_epoll_remove_usock(int, int)"),
  epoll_uwait: lib.func("int srt_epoll_uwait(int, _Out_ void *, int, int64_t)"),
});
type Functions = ReturnType<typeof declare>;

/** Readiness: one epoll set, waited on in a worker thread while anything is watched. */
const makeReadiness = (f: Functions, lastError: (operation: string) => LibSrtError) => {
  const check = (operation: string, result: number) => {
    if (result < 0) throw lastError(operation);
  };
  const eid = f.epoll_create();
  if (eid < 0) throw lastError("srt_epoll_create");
  const handlers = new Map<number, (events: number) => void>();
  const eventsBuffer = Buffer.alloc(POLL_EVENTS * 8);
  const flags = new Int32Array(1);
  let polling = false;
  let released = false;
  /** Called when the wait under way returns and no other is started. */
  let onIdle: (() => void) | null = null;

  const dispatch = (count: number) => {
    for (let i = 0; i < count; i++) {
      const socket = eventsBuffer.readInt32LE(i * 8);
      const events = eventsBuffer.readInt32LE(i * 8 + 4);
      const handler = handlers.get(socket);
      if (handler === undefined) continue;
      try {
        handler(events);
      } catch {
        // A handler's own failure is its own: the poll loop goes on for the other sockets.
      }
    }
  };

  const poll = () => {
    if (handlers.size === 0 || released) {
      polling = false;
      onIdle?.();
      return;
    }
    polling = true;
    f.epoll_uwait.async(eid, eventsBuffer, POLL_EVENTS, POLL_TIMEOUT_MS, (error: unknown, result: number) => {
      if (error === null || error === undefined) dispatch(Math.max(0, result));
      // Let other callbacks run before waiting again.
      setImmediate(poll);
    });
  };

  const watch = (socket: number, events: number, onEvents: (events: number) => void) => {
    flags[0] = events;
    const known = handlers.has(socket);
    handlers.set(socket, onEvents);
    check(
      "srt_epoll",
      known ? f.epoll_update_usock(eid, socket, flags) : f.epoll_add_usock(eid, socket, flags),
    );
    if (!polling) poll();
  };

  const unwatch = (socket: number) => {
    if (!handlers.delete(socket)) return;
    f.epoll_remove_usock(eid, socket);
  };

  const release = async () => {
    if (released) return;
    released = true;
    if (polling) await new Promise<void>((resolve) => (onIdle = resolve));
    handlers.clear();
    f.epoll_release(eid);
    f.cleanup();
  };
  return { watch, unwatch, release };
};

const bind = (path: string): LibSrt => {
  const f = declare(koffi.load(path));

  if (f.startup() < 0) throw new LibSrtError("srt_startup", 0, String(f.getlasterror_str()));
  // libsrt writes its own log lines to stderr; only fatal ones (LOG_CRIT) may, errors arrive through its API.
  f.setloglevel(2);
  const raw = Number(f.getversion());
  const version = `${(raw >> 16) & 0xff}.${(raw >> 8) & 0xff}.${raw & 0xff}`;

  const lastError = (operation: string): LibSrtError => {
    const code = Number(f.getlasterror(null));
    return new LibSrtError(operation, code, String(f.getlasterror_str()));
  };
  const check = (operation: string, result: number) => {
    if (result < 0) throw lastError(operation);
  };
  const intValue = Buffer.alloc(8);
  const setInt = (socket: number, option: number, value: number, what: string) => {
    intValue.writeInt32LE(value, 0);
    check(what, f.setsockflag(socket, option, intValue, 4));
  };
  const setInt64 = (socket: number, option: number, value: number, what: string) => {
    intValue.writeBigInt64LE(BigInt(value), 0);
    check(what, f.setsockflag(socket, option, intValue, 8));
  };
  const setText = (socket: number, option: number, value: string, what: string) => {
    const bytes = Buffer.from(value, "utf8");
    check(what, f.setsockflag(socket, option, bytes, bytes.length));
  };

  const { watch, unwatch, release } = makeReadiness(f, lastError);

  /** Each listener's registered callback, unregistered once its listener is closed. */
  const hooks = new Map<number, bigint>();

  const statsOut: Record<string, number | bigint> = {};
  // SRT_MSGCTRL: 4 ints, int64_t srctime, 2 int32_t, a pointer and a size_t: 48 bytes on 64-bit Linux; as
  // srt_msgctrl_default has it: flags 0, msgttl -1, inorder 0, boundary 0, srctime, pktseq -1, msgno -1,
  // grpdata NULL, grpdata_size 0. Read and written as 32-bit words, so that a send makes no BigInt.
  const msgctrl = new Int32Array(12);
  msgctrl[1] = -1;

  return {
    library: path,
    version,
    createSocket: (options) => {
      const socket = f.create_socket();
      if (socket < 0) throw lastError("srt_create_socket");
      try {
        setInt(socket, SRTO.TRANSTYPE, 0, "transtype"); // SRTT_LIVE
        setInt(socket, SRTO.SNDSYN, 0, "sndsyn");
        setInt(socket, SRTO.RCVSYN, 0, "rcvsyn");
        if (options.latencyMs != null) setInt(socket, SRTO.LATENCY, options.latencyMs, "latency");
        if (options.payloadSize != null) setInt(socket, SRTO.PAYLOADSIZE, options.payloadSize, "payloadsize");
        if (options.maxbw != null) setInt64(socket, SRTO.MAXBW, options.maxbw, "maxbw");
        if (options.oheadbw != null) setInt(socket, SRTO.OHEADBW, options.oheadbw, "oheadbw");
        if (options.passphrase != null) {
          setText(socket, SRTO.PASSPHRASE, options.passphrase, "passphrase");
          if (options.pbkeylen != null) setInt(socket, SRTO.PBKEYLEN, options.pbkeylen, "pbkeylen");
        }
        if (options.streamId != null) setText(socket, SRTO.STREAMID, options.streamId, "streamid");
      } catch (error) {
        f.close(socket);
        throw error;
      }
      return socket;
    },
    bind: (socket, host, port) => {
      const address = sockaddrIn(host, port);
      if (host === "::") setInt(socket, SRTO.IPV6ONLY, 0, "ipv6only");
      check("srt_bind", f.bind(socket, address, address.length));
    },
    localPort: (socket) => {
      const buffer = Buffer.alloc(128);
      const length = [buffer.length];
      check("srt_getsockname", f.getsockname(socket, buffer, length));
      return buffer.readUInt16BE(2);
    },
    listen: (socket, backlog) => check("srt_listen", f.listen(socket, backlog)),
    onCaller: (socket, decide) => {
      // Runs on this thread while libsrt's receive thread waits (holding the port's listener lock, nothing
      // else): whatever it calls of libsrt takes only locks that thread does not hold. It never throws into
      // libsrt: a failure refuses the caller.
      const hook = koffi.register(
        (_opaque: unknown, caller: number, _version: number, peer: unknown, streamId: string | null) => {
          try {
            return decide(caller, streamId ?? "", peerText(peer)) ? 0 : -1;
          } catch {
            return -1;
          }
        },
        koffi.pointer(ListenHook),
      );
      if (f.listen_callback(socket, hook, null) < 0) {
        koffi.unregister(hook);
        throw lastError("srt_listen_callback");
      }
      hooks.set(socket, hook);
    },
    configureCaller: (socket, options) => {
      if (options.latencyMs != null) setInt(socket, SRTO.LATENCY, options.latencyMs, "latency");
      if (options.passphrase != null) {
        setText(socket, SRTO.PASSPHRASE, options.passphrase, "passphrase");
        if (options.pbkeylen != null) setInt(socket, SRTO.PBKEYLEN, options.pbkeylen, "pbkeylen");
      }
    },
    setRejectReason: (socket, reason) => {
      f.setrejectreason(socket, reason);
    },
    closeListener: (socket) => {
      unwatch(socket);
      return new Promise<void>((resolve) =>
        f.close.async(socket, () => {
          const hook = hooks.get(socket);
          hooks.delete(socket);
          if (hook !== undefined) koffi.unregister(hook);
          resolve();
        }),
      );
    },
    connect: (socket, host, port) => {
      const address = sockaddrIn(host, port);
      check("srt_connect", f.connect(socket, address, address.length));
    },
    accept: (socket) => {
      const accepted = f.accept(socket, null, null);
      if (accepted >= 0) return accepted;
      const error = lastError("srt_accept");
      if (error.code === SRT_ERR.EASYNCRCV) return null;
      throw error;
    },
    close: (socket) => {
      unwatch(socket);
      f.close(socket);
    },
    state: (socket) => f.getsockstate(socket),
    rejectReason: (socket) => f.getrejectreason(socket),
    rejectReasonText: (reason) => String(f.rejectreason_str(reason) ?? `reason ${reason}`),
    streamId: (socket) => {
      const buffer = Buffer.alloc(513);
      const length = [buffer.length];
      if (f.getsockflag(socket, SRTO.STREAMID, buffer, length) < 0) return "";
      return buffer.subarray(0, length[0] ?? 0).toString("utf8");
    },
    peerAddress: (socket) => {
      const buffer = Buffer.alloc(128);
      const length = [buffer.length];
      return f.getpeername(socket, buffer, length) < 0 ? "" : sockaddrText(buffer);
    },
    send: (socket, message, sourceTimeUs) => {
      // srctime as two 32-bit words, low first (a clock in µs stays far below 2^53); libsrt writes pktseq and
      // msgno back, and a msgno other than -1 would force a message number, so both are set again each time.
      const time = Math.max(0, Math.floor(sourceTimeUs));
      msgctrl[4] = time % 0x1_0000_0000;
      msgctrl[5] = Math.floor(time / 0x1_0000_0000);
      msgctrl[6] = -1;
      msgctrl[7] = -1;
      const sent = f.sendmsg2(socket, message, message.length, msgctrl);
      return sent >= 0 ? sent : -Number(f.getlasterror(null));
    },
    now: () => Number(f.time_now()),
    receive: (socket, into) => {
      const got = f.recvmsg2(socket, into, into.length, null);
      if (got >= 0) return got;
      const code = Number(f.getlasterror(null));
      return code === SRT_ERR.EASYNCRCV ? 0 : -code;
    },
    stats: (socket) => {
      if (f.bstats(socket, statsOut, 0) < 0) return null;
      const n = (name: string) => Number(statsOut[name] ?? 0);
      return {
        rttMs: n("msRTT"),
        sendRateMbps: n("mbpsSendRate"),
        receiveRateMbps: n("mbpsRecvRate"),
        bandwidthMbps: n("mbpsBandwidth"),
        packetsSent: n("pktSentTotal"),
        packetsReceived: n("pktRecvTotal"),
        retransmits: n("pktRetransTotal"),
        sendLoss: n("pktSndLossTotal"),
        receiveLoss: n("pktRcvLossTotal"),
        sendDrops: n("pktSndDropTotal"),
        receiveDrops: n("pktRcvDropTotal"),
        flightSize: n("pktFlightSize"),
        sendBufferPackets: n("pktSndBuf"),
        sendBufferMs: n("msSndBuf"),
        receiveBufferPackets: n("pktRcvBuf"),
        receiveBufferMs: n("msRcvBuf"),
      };
    },
    watch,
    unwatch,
    release,
  };
};

/** libsrt from the first of `paths` that loads, or why none does, in words for the operator. */
export const loadLibSrtFrom = (
  paths: ReadonlyArray<string>,
): { readonly lib: LibSrt } | { readonly error: string } => {
  for (const path of paths) {
    try {
      return { lib: bind(path) };
    } catch {
      // Try the next flavour; the message below names them all.
    }
  }
  return {
    error: `SRT needs libsrt, which cannot be loaded (${paths.join(" or ")}); install it with: apt-get install libsrt1.5-openssl`,
  };
};

let loaded: { readonly lib: LibSrt } | { readonly error: string } | null = null;

/**
 * libsrt, loaded once per thread (the first use of SRT in it loads it). DISTRIBUTARY_LIBSRT names another build
 * to load instead.
 */
export const loadLibSrt = (): { readonly lib: LibSrt } | { readonly error: string } => {
  if (loaded !== null) return loaded;
  const override = settingNow(libsrtPath, "");
  loaded = loadLibSrtFrom(override === "" ? candidates : [override]);
  return loaded;
};

/** Ends this thread's use of libsrt if it loaded it (LibSrt.release); a later use loads it again. */
export const closeLibSrt = async (): Promise<void> => {
  const current = loaded;
  loaded = null;
  if (current !== null && "lib" in current) await current.lib.release();
};
