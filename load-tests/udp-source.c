/*
 * The load generator of bench:fanout: sends a TS file as 1316-byte UDP datagrams to every port given, paced
 * like a constant-bitrate encoder (absolute deadlines on CLOCK_MONOTONIC, no catch-up bursts after a pause of
 * its own), and writes the send time of every datagram to the first port (ns, CLOCK_REALTIME, the clock of
 * the sink's kernel receive timestamps) to TIMES. Prints "started", then "sent N" when done.
 *
 *   cc -O2 -o udp-source load-tests/udp-source.c && ./udp-source FILE RATE SECONDS TIMES PORT...
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#define DATAGRAM 1316

static unsigned long long clock_ns(clockid_t clock) {
  struct timespec now;
  clock_gettime(clock, &now);
  return (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 6) { fprintf(stderr, "usage: udp-source FILE RATE SECONDS TIMES PORT...\n"); return 2; }
  FILE *file = fopen(argv[1], "rb");
  if (file == NULL) { perror(argv[1]); return 1; }
  fseek(file, 0, SEEK_END);
  long size = ftell(file);
  fseek(file, 0, SEEK_SET);
  unsigned char *data = malloc((size_t)size);
  if (data == NULL || fread(data, 1, (size_t)size, file) != (size_t)size) { perror("read"); return 1; }
  fclose(file);
  double rate = atof(argv[2]);
  long total = (long)(rate * atof(argv[3]));
  if (total > size / DATAGRAM) total = size / DATAGRAM;
  int ports = argc - 5;
  struct sockaddr_in *targets = calloc((size_t)ports, sizeof *targets);
  for (int p = 0; p < ports; p++) {
    targets[p].sin_family = AF_INET;
    targets[p].sin_port = htons((unsigned short)atoi(argv[5 + p]));
    inet_pton(AF_INET, "127.0.0.1", &targets[p].sin_addr);
  }
  int sock = socket(AF_INET, SOCK_DGRAM, 0);
  int buffer = 4 << 20;
  setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
  unsigned long long *times = malloc((size_t)total * sizeof *times);

  printf("started\n");
  fflush(stdout);
  unsigned long long start = clock_ns(CLOCK_MONOTONIC);
  double interval = 1e9 / rate;
  for (long i = 0; i < total; i++) {
    unsigned long long due = start + (unsigned long long)(i * interval);
    struct timespec at = {.tv_sec = (time_t)(due / 1000000000ull), .tv_nsec = (long)(due % 1000000000ull)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
    for (int p = 0; p < ports; p++) {
      if (p == 0) times[i] = clock_ns(CLOCK_REALTIME);
      sendto(sock, data + i * DATAGRAM, DATAGRAM, 0, (struct sockaddr *)&targets[p], sizeof targets[p]);
    }
  }
  FILE *out = fopen(argv[4], "w");
  if (out == NULL) { perror(argv[4]); return 1; }
  for (long i = 0; i < total; i++) fprintf(out, "%llu\n", times[i]);
  fclose(out);
  printf("sent %ld\n", total);
  return 0;
}
