/*
 * A UDP sink for bench:fanout that costs next to nothing per datagram, so that on a small machine the
 * benchmark measures the service and not its own receivers: one epoll loop reading every socket with
 * recvmmsg. Binds 127.0.0.1 on each port given, prints "ready", and on SIGTERM or SIGUSR1 prints one line
 * per port, "port datagrams bytes", then "end" (SIGTERM also exits). With -t FILE, the arrival time of every
 * datagram on the first port is written to FILE on exit, one per line (ns, CLOCK_REALTIME): the kernel's
 * receive timestamp (SO_TIMESTAMPNS), so that neither this program's nor the benchmark's scheduling delays
 * count as the service's latency.
 *
 *   cc -O2 -o udp-sink load-tests/udp-sink.c && ./udp-sink [-t times.txt] 6000 6001 ...
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_SOCKETS 1024
#define MAX_TIMES (4 << 20)

static volatile sig_atomic_t report = 0, quit = 0;
static void on_usr1(int sig) { (void)sig; report = 1; }
static void on_term(int sig) { (void)sig; report = 1; quit = 1; }

int main(int argc, char **argv) {
  const char *times_path = NULL;
  int first = 1;
  if (argc > 2 && strcmp(argv[1], "-t") == 0) { times_path = argv[2]; first = 3; }
  int count = argc - first;
  if (count < 1 || count > MAX_SOCKETS) { fprintf(stderr, "usage: udp-sink [-t FILE] PORT...\n"); return 2; }
  static unsigned long long times[MAX_TIMES];
  size_t timed = 0;
  static int fds[MAX_SOCKETS], ports[MAX_SOCKETS];
  static unsigned long long datagrams[MAX_SOCKETS], bytes[MAX_SOCKETS];
  int epoll = epoll_create1(0);
  for (int i = 0; i < count; i++) {
    ports[i] = atoi(argv[first + i]);
    fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int size = 4 << 20;
    setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(ports[i])};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (bind(fds[i], (struct sockaddr *)&address, sizeof address) != 0) { perror("bind"); return 1; }
    if (i == 0 && times_path != NULL) {
      int on = 1;
      setsockopt(fds[i], SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    }
    struct epoll_event event = {.events = EPOLLIN, .data.u32 = (unsigned)i};
    epoll_ctl(epoll, EPOLL_CTL_ADD, fds[i], &event);
  }
  struct sigaction usr1 = {.sa_handler = on_usr1}, term = {.sa_handler = on_term};
  sigaction(SIGUSR1, &usr1, NULL);
  sigaction(SIGTERM, &term, NULL);
  printf("ready\n");
  fflush(stdout);

  static char buffers[BATCH][2048];
  static char controls[BATCH][CMSG_SPACE(sizeof(struct timespec))];
  struct mmsghdr messages[BATCH];
  struct iovec vectors[BATCH];
  struct epoll_event events[64];
  while (!quit) {
    if (report) {
      for (int i = 0; i < count; i++) printf("%d %llu %llu\n", ports[i], datagrams[i], bytes[i]);
      printf("end\n");
      fflush(stdout);
      report = 0;
    }
    int ready = epoll_wait(epoll, events, 64, 100);
    for (int e = 0; e < ready; e++) {
      int i = (int)events[e].data.u32;
      for (;;) {
        for (int b = 0; b < BATCH; b++) {
          vectors[b] = (struct iovec){.iov_base = buffers[b], .iov_len = sizeof buffers[b]};
          messages[b] = (struct mmsghdr){.msg_hdr = {.msg_iov = &vectors[b], .msg_iovlen = 1,
                                                     .msg_control = controls[b], .msg_controllen = sizeof controls[b]}};
        }
        int got = recvmmsg(fds[i], messages, BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0) break;
        datagrams[i] += (unsigned long long)got;
        if (i == 0 && times_path != NULL) {
          for (int b = 0; b < got && timed < MAX_TIMES; b++) {
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&messages[b].msg_hdr); c != NULL;
                 c = CMSG_NXTHDR(&messages[b].msg_hdr, c)) {
              if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
              struct timespec at;
              memcpy(&at, CMSG_DATA(c), sizeof at);
              times[timed++] = (unsigned long long)at.tv_sec * 1000000000ull + (unsigned long long)at.tv_nsec;
            }
          }
        }
        for (int b = 0; b < got; b++) bytes[i] += messages[b].msg_len;
        if (got < BATCH) break;
      }
    }
  }
  if (times_path != NULL) {
    FILE *out = fopen(times_path, "w");
    if (out == NULL) { perror(times_path); return 1; }
    for (size_t t = 0; t < timed; t++) fprintf(out, "%llu\n", times[t]);
    fclose(out);
  }
  for (int i = 0; i < count; i++) printf("%d %llu %llu\n", ports[i], datagrams[i], bytes[i]);
  printf("end\n");
  return 0;
}
