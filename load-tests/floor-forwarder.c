/*
 * The floor anchor of the load harness: the least CPU a forwarder can spend on this machine for a given
 * latency budget. It does what the service's forwarding threads do and nothing else — no packet core, no
 * failover, no counters, no API: one thread, one epoll loop; a quiet input is watched for readability, a
 * flowing one is read with recvmmsg every BATCH_MS milliseconds (as DISTRIBUTARY_BATCH_MS), its RTP header
 * dropped, and each output gets the batch in one send(2) that the kernel cuts into datagrams (UDP_SEGMENT).
 * With a batch of 0 each datagram is forwarded as it comes. Whatever it costs is the kernel's and the
 * machine's share of the work: wake-ups and the per-datagram send and loopback delivery.
 *
 *   cc -O2 -o floor-forwarder load-tests/floor-forwarder.c
 *   ./floor-forwarder BATCH_MS INPUT_PORT:OUT_PORT,OUT_PORT,... [INPUT_PORT:...] ...
 *
 * Binds each input on 127.0.0.1, sends to 127.0.0.1, prints "ready" once all are bound, runs until SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define SLOTS 64
#define SLOT_BYTES 2048
#define MAX_OUTPUTS 16
#define MAX_CHANNELS 512
#define PAYLOAD 1316
#define MAX_BATCH (48 * PAYLOAD)
#define QUIET_MS 50

typedef struct {
  int in;
  int outs[MAX_OUTPUTS];
  int out_count;
  int flowing;
  int quiet_turns;
} Channel;

static Channel channels[MAX_CHANNELS];
static int channel_count;
static unsigned char slots[SLOTS][SLOT_BYTES];
static struct mmsghdr headers[SLOTS];
static struct iovec iovecs[SLOTS];
static unsigned char batch[MAX_BATCH];
static volatile sig_atomic_t quit = 0;
static void on_term(int sig) { (void)sig; quit = 1; }

static int udp_socket(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { perror("socket"); exit(1); }
  return fd;
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static void flush(Channel *c, int length) {
  if (length == 0) return;
  for (int o = 0; o < c->out_count; o++) send(c->outs[o], batch, (size_t)length, MSG_DONTWAIT);
}

/* Reads what waits on one input and forwards it; returns how many datagrams there were. */
static int drain(Channel *c) {
  int total = 0;
  for (int call = 0; call < 16; call++) {
    int n = recvmmsg(c->in, headers, SLOTS, MSG_DONTWAIT, NULL);
    if (n <= 0) break;
    total += n;
    int length = 0;
    for (int i = 0; i < n; i++) {
      const unsigned char *d = slots[i];
      int size = (int)headers[i].msg_len;
      int at = (size >= 12 && (d[0] & 0xc0) == 0x80) ? 12 + 4 * (d[0] & 0x0f) : 0;
      int payload = size - at;
      if (payload <= 0) continue;
      if (payload != PAYLOAD || length + payload > MAX_BATCH) {
        flush(c, length);
        length = 0;
      }
      memcpy(batch + length, d + at, (size_t)payload);
      length += payload;
      if (payload != PAYLOAD) {
        flush(c, length);
        length = 0;
      }
    }
    flush(c, length);
    if (n < SLOTS) break;
  }
  return total;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s BATCH_MS IN:OUT,OUT,... ...\n", argv[0]);
    return 2;
  }
  int batch_ms = atoi(argv[1]);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  for (int i = 0; i < SLOTS; i++) {
    iovecs[i].iov_base = slots[i];
    iovecs[i].iov_len = SLOT_BYTES;
    headers[i].msg_hdr.msg_iov = &iovecs[i];
    headers[i].msg_hdr.msg_iovlen = 1;
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  for (int a = 2; a < argc && channel_count < MAX_CHANNELS; a++) {
    Channel *c = &channels[channel_count];
    char *spec = argv[a];
    c->in = udp_socket();
    int size = 4 << 20;
    setsockopt(c->in, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    struct sockaddr_in in = loopback(atoi(spec));
    if (bind(c->in, (struct sockaddr *)&in, sizeof in) != 0) { perror("bind"); return 1; }
    char *outs = strchr(spec, ':');
    for (char *p = outs; p != NULL && c->out_count < MAX_OUTPUTS; p = strchr(p + 1, ',')) {
      int fd = udp_socket();
      int segment = PAYLOAD;
      setsockopt(fd, SOL_UDP, UDP_SEGMENT, &segment, sizeof segment);
      struct sockaddr_in out = loopback(atoi(p + 1));
      if (connect(fd, (struct sockaddr *)&out, sizeof out) != 0) { perror("connect"); return 1; }
      c->outs[c->out_count++] = fd;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)channel_count};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->in, &ev);
    channel_count++;
  }
  printf("ready\n");
  fflush(stdout);
  int flowing = 0;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  struct epoll_event events[64];
  while (!quit) {
    int timeout = -1;
    if (flowing > 0) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      long long left = (next.tv_sec - now.tv_sec) * 1000000000LL + (next.tv_nsec - now.tv_nsec);
      timeout = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
    }
    int n = epoll_wait(ep, events, 64, timeout);
    for (int i = 0; i < n; i++) {
      Channel *c = &channels[events[i].data.u32];
      drain(c);
      if (batch_ms > 0 && !c->flowing) {
        /* Flowing: stop watching, read it with the others every batch. */
        struct epoll_event ev = {.events = 0, .data.u32 = events[i].data.u32};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->in, &ev);
        c->flowing = 1;
        c->quiet_turns = 0;
        if (flowing++ == 0) {
          clock_gettime(CLOCK_MONOTONIC, &next);
          next.tv_nsec += batch_ms * 1000000L;
          if (next.tv_nsec >= 1000000000L) { next.tv_sec++; next.tv_nsec -= 1000000000L; }
        }
      }
    }
    if (flowing == 0) continue;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec < next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec < next.tv_nsec)) continue;
    next = now;
    next.tv_nsec += batch_ms * 1000000L;
    if (next.tv_nsec >= 1000000000L) { next.tv_sec++; next.tv_nsec -= 1000000000L; }
    for (int k = 0; k < channel_count; k++) {
      Channel *c = &channels[k];
      if (!c->flowing) continue;
      if (drain(c) > 0) c->quiet_turns = 0;
      else if (++c->quiet_turns * batch_ms >= QUIET_MS) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)k};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->in, &ev);
        c->flowing = 0;
        flowing--;
      }
    }
  }
  return 0;
}
