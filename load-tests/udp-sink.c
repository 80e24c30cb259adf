/*
 * A UDP sink for bench:fanout, bench:api and the load harness that costs next to nothing per datagram, so
 * that on a small machine the benchmark measures the service and not its own receivers: one epoll loop reading
 * every socket with recvmmsg. Binds 127.0.0.1 on each port given and prints "ready". Each datagram is read as
 * TS (an RTP header, if any, is skipped): TS packets, continuity errors per PID, SCTE-35 sections (table 0xfc)
 * and the latency stamps of udp-source.c's synthetic mode (kernel receive time less the stamped send time,
 * both CLOCK_REALTIME) are counted, as is the longest silence between two datagrams on a port. So that what
 * arrives can be set against what udp-source sent, each port also keeps: its media packets (every PID but the
 * PAT, the PMTs the PAT names, the other PSI and SI PIDs below 0x20 and null packets), its PSI packets (those
 * PIDs) and its null packets, a digest of every TS packet in the order received (equal to the source's when
 * the stream came through byte for byte) and a digest of the media packets that ignores their order (equal
 * when every media packet came through unchanged, whatever was done to the PSI around them).
 * On SIGTERM or SIGUSR1 it prints one line per port, "port datagrams bytes packets cc_errors cues stamps
 * longest_silence_us media psi nulls digest media_digest longest_silence_end_us" (the digests as 16 hex digits; the
 * end of the longest silence as the kernel's receive time of the datagram that ended it), then "latency COUNT
 * P50_US P99_US MAX_US" over every port, then "end" (SIGTERM also exits). SIGUSR2 starts the measurement window
 * again: latency and silences, not the counts. The first SIGHUP opens a span (the load harness's rebalance), the
 * second closes it: each line then ends with "marked_longest_us marked_end_us marked_added_us": the longest
 * silence on the port that began before the span closed and ended after it opened (a silence under way at
 * either end counted whole, once it has ended), when it ended, and the longest silence the forwarding added in
 * that span: how much later (receive time less send stamp) the stream came after a silence than before it,
 * from the nearest stamped datagrams on either side, at most the silence itself. A stall of the generator,
 * which its outputs cannot but repeat, adds nothing; a stall of the forwarding adds itself whole. A silence
 * with no stamped datagram before it, or none after it by the report, is counted whole. With -t FILE, the
 * arrival time of every datagram on the first port is written to FILE on exit, one per line (ns,
 * CLOCK_REALTIME): the kernel's receive timestamp (SO_TIMESTAMPNS), so that neither this program's nor the
 * benchmark's scheduling delays count as the service's latency.
 *
 *   cc -O2 -o udp-sink load-tests/udp-sink.c && ./udp-sink [-t times.txt] 6000 6001 ...
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ts-digest.h"

#define BATCH 64
#define MAX_SOCKETS 1024
#define MAX_TIMES (4 << 20)
#define MAX_PIDS 16
#define BUCKET_NS 10000ull /* latency histogram: 10 µs buckets up to 10 s */
#define BUCKETS 1000000

static volatile sig_atomic_t report = 0, quit = 0, restart = 0, mark = 0;
static void on_hup(int sig) { (void)sig; mark = 1; }
static void on_usr1(int sig) { (void)sig; report = 1; }
static void on_usr2(int sig) { (void)sig; restart = 1; }
static void on_term(int sig) { (void)sig; report = 1; quit = 1; }

static const unsigned char STAMP_MAGIC[8] = {'D', 'S', 'T', 'R', 'S', 'T', 'M', 'P'};

#define MAX_PMTS 8

typedef struct {
  unsigned long long datagrams, bytes, packets, cc_errors, cues, stamps, last_ns, longest_ns, longest_end_ns;
  unsigned long long media, psi, nulls;
  /* the span between the first and the second SIGHUP (0: not opened, not closed) */
  unsigned long long marked_ns, mark_closed_ns, marked_longest_ns, marked_end_ns, marked_added_ns;
  /* the latency of the last stamped datagram (-1: none yet); a silence in the span awaiting the next stamp
     (0: none), and the latency before it */
  long long last_latency_ns, pending_silence_ns, pending_before_ns;
  uint64_t digest, media_digest;
  int pids;
  unsigned short pid[MAX_PIDS];
  unsigned char cc[MAX_PIDS];
  int pmts;
  unsigned short pmt[MAX_PMTS];
} Port;

/* The PMT PIDs a PAT names (and the NIT's, under program 0): PSI, not media. */
static void read_pat(Port *port, const unsigned char *p, int payload) {
  if (payload >= 188) return;
  int at = payload + 1 + p[payload];
  if (at + 8 > 188 || p[at] != 0x00) return;
  int end = at + 3 + (((p[at + 1] & 0x0f) << 8) | p[at + 2]) - 4;
  if (end > 188) end = 188;
  for (int e = at + 8; e + 4 <= end; e += 4) {
    unsigned short pid = (unsigned short)(((p[e + 2] & 0x1f) << 8) | p[e + 3]);
    int known = 0;
    for (int k = 0; k < port->pmts; k++) known |= port->pmt[k] == pid;
    if (!known && port->pmts < MAX_PMTS) port->pmt[port->pmts++] = pid;
  }
}
static int is_psi(const Port *port, int pid) {
  if (pid < 0x20) return 1;
  for (int k = 0; k < port->pmts; k++)
    if (port->pmt[k] == pid) return 1;
  return 0;
}

static unsigned int histogram[BUCKETS];
static unsigned long long latencies, latency_max;

/* Counts a datagram's TS packets; returns its latency (receive time less send stamp; -1: no stamp). */
static long long count_ts(Port *port, const unsigned char *data, int length, unsigned long long received_ns) {
  long long stamp_latency = -1;
  int at = 0;
  if (length >= 12 + 188 && (data[0] & 0xc0) == 0x80 && data[12] == 0x47) at = 12 + 4 * (data[0] & 0x0f);
  int stamped = 0;
  for (; at + 188 <= length; at += 188) {
    const unsigned char *p = data + at;
    if (p[0] != 0x47) continue;
    port->packets++;
    uint64_t hash = packet_hash(p);
    port->digest = digest_next(port->digest, hash);
    int pid = ((p[1] & 0x1f) << 8) | p[2];
    if (pid == 0x1fff) {
      port->nulls++;
      continue;
    }
    int pusi = (p[1] & 0x40) != 0;
    int control = (p[3] >> 4) & 3;
    int cc = p[3] & 0x0f;
    int payload = 4;
    int discontinuity = 0;
    if (control & 2) {
      payload = 5 + p[4];
      discontinuity = p[4] > 0 && (p[5] & 0x80);
    }
    if (pid == 0 && pusi && (control & 1)) read_pat(port, p, payload);
    if (is_psi(port, pid)) {
      port->psi++;
    } else {
      port->media++;
      port->media_digest += hash;
    }
    if (control & 1) {
      int slot = 0;
      while (slot < port->pids && port->pid[slot] != pid) slot++;
      if (slot == port->pids) {
        if (slot < MAX_PIDS) {
          port->pid[slot] = (unsigned short)pid;
          port->cc[slot] = (unsigned char)cc;
          port->pids++;
        }
      } else {
        int last = port->cc[slot];
        if (!discontinuity && cc != ((last + 1) & 0x0f) && cc != last) port->cc_errors++;
        port->cc[slot] = (unsigned char)cc;
      }
      if (pusi && payload < 187) {
        int table = payload + 1 + p[payload];
        if (table < 188 && p[table] == 0xfc) port->cues++;
      }
      if (!stamped && control == 1 && !pusi && memcmp(p + 4, STAMP_MAGIC, 8) == 0 && received_ns > 0) {
        unsigned long long sent;
        memcpy(&sent, p + 12, 8);
        stamped = 1;
        port->stamps++;
        unsigned long long latency = received_ns > sent ? received_ns - sent : 0;
        unsigned long long bucket = latency / BUCKET_NS;
        histogram[bucket < BUCKETS ? bucket : BUCKETS - 1]++;
        latencies++;
        if (latency > latency_max) latency_max = latency;
        stamp_latency = (long long)latency;
      }
    }
  }
  return stamp_latency;
}

/* A silence the forwarding added in the span, kept if the longest. */
static void add_silence(Port *port, unsigned long long added) {
  if (added > port->marked_added_ns) port->marked_added_ns = added;
}

static double percentile_us(double p) {
  if (latencies == 0) return -1;
  unsigned long long rank = (unsigned long long)(p * (double)latencies), seen = 0;
  for (int b = 0; b < BUCKETS; b++) {
    seen += histogram[b];
    if (seen > rank) return (double)b * BUCKET_NS / 1000.0 + BUCKET_NS / 2000.0;
  }
  return (double)BUCKETS * BUCKET_NS / 1000.0;
}

static unsigned long long now_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec;
}

static void print_report(const Port *counts, const int *ports, int count) {
  for (int i = 0; i < count; i++) {
    const Port *p = &counts[i];
    printf("%d %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %016llx %016llx %llu", ports[i], p->datagrams,
           p->bytes, p->packets, p->cc_errors, p->cues, p->stamps, p->longest_ns / 1000, p->media, p->psi, p->nulls,
           (unsigned long long)p->digest, (unsigned long long)p->media_digest, p->longest_end_ns / 1000);
    if (p->marked_ns > 0)
      printf(" %llu %llu %llu", p->marked_longest_ns / 1000, p->marked_end_ns / 1000,
             (p->marked_added_ns > (unsigned long long)p->pending_silence_ns ? p->marked_added_ns
                                                                              : (unsigned long long)p->pending_silence_ns) /
                 1000);
    printf("\n");
  }
  printf("latency %llu %.1f %.1f %.1f\n", latencies, percentile_us(0.5), percentile_us(0.99),
         (double)latency_max / 1000.0);
  printf("end\n");
  fflush(stdout);
}

static const char *times_path = NULL;
static unsigned long long times[MAX_TIMES];
static size_t timed = 0;
static int fds[MAX_SOCKETS], ports[MAX_SOCKETS];
static Port counts[MAX_SOCKETS];
static char buffers[BATCH][2048];
static char controls[BATCH][CMSG_SPACE(sizeof(struct timespec))];
static struct mmsghdr messages[BATCH];
static struct iovec vectors[BATCH];

/* Reads what port i has queued, to the last datagram. */
static void read_port(int i) {
  for (;;) {
    for (int b = 0; b < BATCH; b++) {
      vectors[b] = (struct iovec){.iov_base = buffers[b], .iov_len = sizeof buffers[b]};
      messages[b] = (struct mmsghdr){.msg_hdr = {.msg_iov = &vectors[b], .msg_iovlen = 1,
                                                 .msg_control = controls[b], .msg_controllen = sizeof controls[b]}};
    }
    int got = recvmmsg(fds[i], messages, BATCH, MSG_DONTWAIT, NULL);
    if (got <= 0) break;
    Port *port = &counts[i];
    port->datagrams += (unsigned long long)got;
    for (int b = 0; b < got; b++) {
      unsigned long long received_ns = 0;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&messages[b].msg_hdr); c != NULL;
           c = CMSG_NXTHDR(&messages[b].msg_hdr, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
        struct timespec at;
        memcpy(&at, CMSG_DATA(c), sizeof at);
        received_ns = (unsigned long long)at.tv_sec * 1000000000ull + (unsigned long long)at.tv_nsec;
      }
      if (i == 0 && times_path != NULL && timed < MAX_TIMES) times[timed++] = received_ns;
      if (port->last_ns > 0 && received_ns > port->last_ns && received_ns - port->last_ns > port->longest_ns) {
        port->longest_ns = received_ns - port->last_ns;
        port->longest_end_ns = received_ns;
      }
      port->bytes += messages[b].msg_len;
      if (port->marked_ns > 0 && port->last_ns > 0 && received_ns > port->marked_ns &&
          (port->mark_closed_ns == 0 || port->last_ns < port->mark_closed_ns) && received_ns > port->last_ns) {
        unsigned long long silence = received_ns - port->last_ns;
        if (silence > port->marked_longest_ns) {
          port->marked_longest_ns = silence;
          port->marked_end_ns = received_ns;
        }
        /* one silence awaits its stamp at a time: one still waiting is counted whole */
        add_silence(port, (unsigned long long)port->pending_silence_ns);
        port->pending_silence_ns = (long long)silence;
        port->pending_before_ns = port->last_latency_ns;
      }
      if (received_ns > 0) port->last_ns = received_ns;
      long long latency = count_ts(port, (const unsigned char *)buffers[b], (int)messages[b].msg_len, received_ns);
      if (latency >= 0) {
        if (port->pending_silence_ns > 0) {
          long long later = port->pending_before_ns < 0 ? port->pending_silence_ns : latency - port->pending_before_ns;
          add_silence(port, (unsigned long long)(later < 0 ? 0 : later > port->pending_silence_ns ? port->pending_silence_ns : later));
          port->pending_silence_ns = 0;
        }
        port->last_latency_ns = latency;
      }
    }
    if (got < BATCH) break;
  }
}

int main(int argc, char **argv) {
  int first = 1;
  if (argc > 2 && strcmp(argv[1], "-t") == 0) { times_path = argv[2]; first = 3; }
  int count = argc - first;
  if (count < 1 || count > MAX_SOCKETS) { fprintf(stderr, "usage: udp-sink [-t FILE] PORT...\n"); return 2; }
  int epoll = epoll_create1(0);
  for (int i = 0; i < count; i++) {
    ports[i] = atoi(argv[first + i]);
    counts[i].last_latency_ns = -1;
    fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int size = 4 << 20;
    setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(ports[i])};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (bind(fds[i], (struct sockaddr *)&address, sizeof address) != 0) { perror("bind"); return 1; }
    int on = 1;
    setsockopt(fds[i], SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    struct epoll_event event = {.events = EPOLLIN, .data.u32 = (unsigned)i};
    epoll_ctl(epoll, EPOLL_CTL_ADD, fds[i], &event);
  }
  struct sigaction usr1 = {.sa_handler = on_usr1}, usr2 = {.sa_handler = on_usr2}, term = {.sa_handler = on_term},
                   hup = {.sa_handler = on_hup};
  sigaction(SIGHUP, &hup, NULL);
  sigaction(SIGUSR1, &usr1, NULL);
  sigaction(SIGUSR2, &usr2, NULL);
  sigaction(SIGTERM, &term, NULL);
  printf("ready\n");
  fflush(stdout);

  struct epoll_event events[64];
  while (!quit) {
    if (restart) {
      restart = 0;
      memset(histogram, 0, sizeof histogram);
      latencies = 0;
      latency_max = 0;
      for (int i = 0; i < count; i++) counts[i].last_ns = counts[i].longest_ns = counts[i].longest_end_ns = 0;
    }
    if (mark) {
      mark = 0;
      unsigned long long at = now_ns();
      for (int i = 0; i < count; i++) {
        Port *p = &counts[i];
        if (p->marked_ns == 0 || p->mark_closed_ns > 0) {
          p->marked_ns = at;
          p->mark_closed_ns = p->marked_longest_ns = p->marked_end_ns = p->marked_added_ns = 0;
          p->pending_silence_ns = 0;
        } else p->mark_closed_ns = at;
      }
    }
    if (report) {
      /* what the sockets hold is read first: the report is as of now, not of this loop's last turn */
      for (int i = 0; i < count; i++) read_port(i);
      print_report(counts, ports, count);
      report = 0;
    }
    int ready = epoll_wait(epoll, events, 64, 100);
    for (int e = 0; e < ready; e++) {
      int i = (int)events[e].data.u32;
      read_port(i);
    }
  }
  if (times_path != NULL) {
    FILE *out = fopen(times_path, "w");
    if (out == NULL) { perror(times_path); return 1; }
    for (size_t t = 0; t < timed; t++) fprintf(out, "%llu\n", times[t]);
    fclose(out);
  }
  print_report(counts, ports, count);
  return 0;
}
