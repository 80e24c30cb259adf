/*
 * The floor anchor of the load harness: the least CPU a forwarder can spend on this machine for a given
 * latency budget. It does what the service's forwarding threads do and nothing else — no packet core, no
 * failover, no counters, no API — with the fewest system calls C allows: one thread, one epoll loop; a quiet
 * input is watched for readability, a flowing one is read with recvmmsg every BATCH_MS milliseconds (as
 * DISTRIBUTARY_BATCH_MS). Each turn then ends in ONE sendmmsg(2) for every output of every channel read in it:
 * one unconnected sending socket, one message per output and batch, addressed to that output (msg_name), its
 * iovecs pointing at the received datagrams past their RTP header (no copy in this process), and a UDP_SEGMENT
 * control message so that the kernel still cuts it into 1316-byte datagrams (segmentation offload). The kernel
 * takes at most 1024 messages a call (UIO_MAXIOV): more outputs than that in one turn take more calls. A batch
 * holds up to 48 datagrams; a datagram of another size goes alone. With a batch of 0 each wake-up reads what
 * came and sends it at once, still in one sendmmsg. Whatever it costs is the kernel's and the machine's share
 * of the work: wake-ups and the per-datagram send and loopback delivery. The bytes go out as they came.
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
#include <stdint.h>
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

#define SLOTS 64          /* datagrams one recvmmsg reads */
#define POOL 4096         /* datagrams held in one turn before its messages must go */
#define SLOT_BYTES 2048
#define MAX_OUTPUTS 16
#define MAX_CHANNELS 512
#define PAYLOAD 1316
#define MAX_SEGMENTS 48   /* 48 × 1316 bytes: one UDP datagram's worth before the kernel cuts it */
#define PER_CALL 1024     /* UIO_MAXIOV: the most messages one sendmmsg takes */
#define QUEUE (8 * PER_CALL)
#define QUIET_MS 50

typedef struct {
  int in;
  struct sockaddr_in outs[MAX_OUTPUTS];
  int out_count;
  int flowing;
  int quiet_turns;
} Channel;

static Channel channels[MAX_CHANNELS];
static int channel_count;
static int sender;

/* The turn's datagrams as read (pool), their payloads past the RTP header in order (payloads), and the
   messages that send them (queue): each message is one output's batch, its iovecs a run of payloads. */
static unsigned char pool[POOL][SLOT_BYTES];
static struct iovec pool_iov[POOL];
static struct mmsghdr pool_headers[POOL];
static int pool_used;
static struct iovec payloads[POOL];
static int payload_count;
static struct mmsghdr queue[QUEUE];
static int queued;
static union {
  char bytes[CMSG_SPACE(sizeof(uint16_t))];
  struct cmsghdr align;
} segment_control;

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

/* Sends every queued message, as few sendmmsg calls as the kernel allows (one up to 1024 messages); a message
   the kernel refuses (a full send buffer) is dropped, as a datagram on the wire would be. Frees the turn's memory. */
static void send_queued(void) {
  for (int at = 0; at < queued;) {
    int count = queued - at < PER_CALL ? queued - at : PER_CALL;
    int sent = sendmmsg(sender, queue + at, (unsigned)count, MSG_DONTWAIT);
    at += sent > 0 ? sent : 1;
  }
  queued = 0;
  pool_used = 0;
  payload_count = 0;
}

/* One message per output for the payloads [first, first + count): one batch of the channel. */
static void queue_batch(const Channel *c, int first, int count) {
  for (int o = 0; o < c->out_count; o++) {
    struct msghdr *m = &queue[queued++].msg_hdr;
    m->msg_name = (void *)&c->outs[o];
    m->msg_namelen = sizeof c->outs[o];
    m->msg_iov = &payloads[first];
    m->msg_iovlen = (size_t)count;
    m->msg_control = count > 1 ? segment_control.bytes : NULL;
    m->msg_controllen = count > 1 ? sizeof segment_control.bytes : 0;
    m->msg_flags = 0;
  }
}

/* Reads what waits on one input and queues it for every output; returns how many datagrams there were. */
static int drain(Channel *c) {
  int total = 0;
  for (int call = 0; call < 16; call++) {
    /* room for a full read, each datagram of it a batch of its own at every output, or the turn goes now */
    if (pool_used + SLOTS > POOL || queued + SLOTS * c->out_count > QUEUE) send_queued();
    int n = recvmmsg(c->in, pool_headers + pool_used, SLOTS, MSG_DONTWAIT, NULL);
    if (n <= 0) break;
    total += n;
    int first = payload_count, segments = 0;
    for (int i = 0; i < n; i++) {
      unsigned char *d = pool[pool_used + i];
      int size = (int)pool_headers[pool_used + i].msg_len;
      int at = (size >= 12 && (d[0] & 0xc0) == 0x80) ? 12 + 4 * (d[0] & 0x0f) : 0;
      int payload = size - at;
      if (payload <= 0) continue;
      if (segments > 0 && (payload != PAYLOAD || segments == MAX_SEGMENTS)) {
        queue_batch(c, first, segments);
        first = payload_count;
        segments = 0;
      }
      payloads[payload_count++] = (struct iovec){.iov_base = d + at, .iov_len = (size_t)payload};
      segments++;
      if (payload != PAYLOAD) {
        queue_batch(c, first, segments);
        first = payload_count;
        segments = 0;
      }
    }
    if (segments > 0) queue_batch(c, first, segments);
    pool_used += n;
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
  for (int i = 0; i < POOL; i++) {
    pool_iov[i].iov_base = pool[i];
    pool_iov[i].iov_len = SLOT_BYTES;
    pool_headers[i].msg_hdr.msg_iov = &pool_iov[i];
    pool_headers[i].msg_hdr.msg_iovlen = 1;
  }
  struct cmsghdr *cm = (struct cmsghdr *)segment_control.bytes;
  cm->cmsg_level = SOL_UDP;
  cm->cmsg_type = UDP_SEGMENT;
  cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t segment = PAYLOAD;
  memcpy(CMSG_DATA(cm), &segment, sizeof segment);
  sender = udp_socket();
  int send_buffer = 4 << 20;
  setsockopt(sender, SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof send_buffer);
  struct sockaddr_in from = loopback(0);
  if (bind(sender, (struct sockaddr *)&from, sizeof from) != 0) { perror("bind"); return 1; }
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
    for (char *p = outs; p != NULL && c->out_count < MAX_OUTPUTS; p = strchr(p + 1, ','))
      c->outs[c->out_count++] = loopback(atoi(p + 1));
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
    send_queued();
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
    send_queued();
  }
  return 0;
}
