/*
 * The load generator of bench:fanout, bench:api and the load harness (npm run load). Two modes:
 *
 * File mode: sends a TS file as 1316-byte UDP datagrams to every port given, paced like a constant-bitrate
 * encoder (absolute deadlines on CLOCK_MONOTONIC, no catch-up bursts after a pause of its own), and writes the
 * send time of every datagram to the first port (ns, CLOCK_REALTIME, the clock of the sink's kernel receive
 * timestamps) to TIMES. The first packet on PID 0x1ffe of a datagram, where it has one (padding, as the RTMP
 * runs' --udp-beside makes it), carries a stamp as synthetic mode's video packets do (magic, send time), for
 * udp-sink.c's latency. Prints "started", then "sent N" when done.
 *
 *   ./udp-source FILE RATE SECONDS TIMES PORT...
 *
 * Synthetic mode (-s): plays one channel to each port given, all from this one process. Each channel is a
 * valid TS made here at MBPS: PAT and PMT every 100 ms, a video-like PID (0x100, H.264 stream type, PES with
 * PTS every 40 ms, PCR every 40 ms, a random access point every second), MPEG-1 Layer II audio (0x101,
 * 128 kbit/s frames) and an SCTE-35 splice_insert on 0x1f0 every CUE seconds. Seven packets a datagram, as RTP
 * (payload type 33) with -r. The first plain video packet of each datagram carries a stamp (magic, send time
 * in CLOCK_REALTIME ns, channel) that udp-sink.c reads to measure latency through whatever forwards it.
 * Channels are spread over up to 8 phases of the datagram interval, as independent encoders would be.
 * Faults: -l PERCENT drops datagrams at random; -j MS holds a channel's datagrams for up to MS ms about five
 * times a second and then sends them in a burst (order kept); -g S -G MS makes every channel go silent for MS
 * every S seconds (staggered). Dropped or silent datagrams are not sent, but the stream and the RTP sequence
 * go on, as after loss on a network. SIGUSR1 prints the counts so far; at the end it prints one line per
 * channel, "channel INDEX datagrams D packets P cues K media M digest HEX media_digest HEX", then "sent N"
 * (datagram slots played): M is the packets sent on the media PIDs (video, audio, SCTE-35: all but PAT and
 * PMT), the digests those udp-sink.c keeps, of every TS packet sent in order (as stamped) and of the media
 * packets in any order, so that a sink can tell a byte-identical stream and unchanged media packets.
 *
 *   ./udp-source -s [-r] [-m MBPS] [-d SECONDS] [-c CUE_S] [-l PERCENT] [-j MS] [-g S -G MS] [-x SEED] PORT...
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ts-digest.h"

#define DATAGRAM 1316
#define TS 188
#define PER_DATAGRAM 7
#define RTP_HEADER 12
#define PID_PAT 0x0000
#define PID_PMT 0x1000
#define PID_VIDEO 0x0100
#define PID_AUDIO 0x0101
#define PID_SCTE35 0x01f0
#define MAX_PHASES 8

static unsigned long long clock_ns(clockid_t clock) {
  struct timespec now;
  clock_gettime(clock, &now);
  return (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec;
}

static void sleep_until(unsigned long long due) {
  struct timespec at = {.tv_sec = (time_t)(due / 1000000000ull), .tv_nsec = (long)(due % 1000000000ull)};
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
}

static const unsigned char STAMP_MAGIC[8] = {'D', 'S', 'T', 'R', 'S', 'T', 'M', 'P'};

static int file_mode(int argc, char **argv) {
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
    sleep_until(start + (unsigned long long)(i * interval));
    /* The datagram's first packet on PID 0x1ffe (padding the harness moved off the null PID, which udp-sink.c
       skips), if any, carries a stamp (magic, send time) as synthetic mode's video packets do. */
    unsigned char *stamp = NULL;
    for (int t = 0; t < DATAGRAM / 188 && stamp == NULL; t++) {
      unsigned char *packet = data + i * DATAGRAM + t * 188;
      if (packet[0] == 0x47 && (packet[1] & 0x5f) == 0x1f && packet[2] == 0xfe && (packet[3] & 0x30) == 0x10)
        stamp = packet + 4;
    }
    for (int p = 0; p < ports; p++) {
      if (p == 0) times[i] = clock_ns(CLOCK_REALTIME);
      if (p == 0 && stamp != NULL) {
        memcpy(stamp, STAMP_MAGIC, 8);
        memcpy(stamp + 8, &times[i], 8);
      }
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

/* ---- synthetic mode ------------------------------------------------------------------------------------ */


static uint32_t crc32_mpeg(const unsigned char *data, size_t length) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < length; i++) {
    crc ^= (uint32_t)data[i] << 24;
    for (int bit = 0; bit < 8; bit++) crc = (crc & 0x80000000u) ? (crc << 1) ^ 0x04c11db7u : crc << 1;
  }
  return crc;
}

static uint64_t random_state = 0x9e3779b97f4a7c15ull;
static uint64_t next_random(void) {
  random_state ^= random_state << 13;
  random_state ^= random_state >> 7;
  random_state ^= random_state << 17;
  return random_state;
}
static double uniform(void) { return (double)(next_random() >> 11) / 9007199254740992.0; }

static void fill_random(unsigned char *out, int length) {
  for (int i = 0; i < length; i += 8) {
    uint64_t r = next_random();
    int n = length - i < 8 ? length - i : 8;
    memcpy(out + i, &r, (size_t)n);
  }
}

/* The video's noise: random bytes but no zero, so that no H.264 start code appears inside a frame (a parser
   that remuxes to FLV, as GStreamer's h264parse does for the mix's RTMP outputs, stops on a made-up SPS). */
static void fill_video_noise(unsigned char *out, int length) {
  fill_random(out, length);
  for (int i = 0; i < length; i++)
    if (out[i] == 0) out[i] = 0x80;
}

/* A section (CRC appended here) in one TS packet on `pid`: PUSI, pointer_field 0, stuffing 0xff. */
static void section_packet(unsigned char *packet, int pid, int cc, unsigned char *section, int length) {
  uint32_t crc = crc32_mpeg(section, (size_t)length);
  section[length] = (unsigned char)(crc >> 24);
  section[length + 1] = (unsigned char)(crc >> 16);
  section[length + 2] = (unsigned char)(crc >> 8);
  section[length + 3] = (unsigned char)crc;
  memset(packet, 0xff, TS);
  packet[0] = 0x47;
  packet[1] = (unsigned char)(0x40 | (pid >> 8));
  packet[2] = (unsigned char)pid;
  packet[3] = (unsigned char)(0x10 | (cc & 0x0f));
  packet[4] = 0;
  memcpy(packet + 5, section, (size_t)length + 4);
}

static int pat_section(unsigned char *s) {
  unsigned char body[] = {0x00, 0xb0, 13, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01,
                          (unsigned char)(0xe0 | (PID_PMT >> 8)), (unsigned char)PID_PMT};
  memcpy(s, body, sizeof body);
  return (int)sizeof body;
}

static int pmt_section(unsigned char *s) {
  unsigned char body[] = {
      0x02, 0xb0, 0, 0x00, 0x01, 0xc1, 0x00, 0x00, (unsigned char)(0xe0 | (PID_VIDEO >> 8)), (unsigned char)PID_VIDEO,
      0xf0, 6, 0x05, 4, 'C', 'U', 'E', 'I', /* registration descriptor: SCTE-35 */
      0x1b, (unsigned char)(0xe0 | (PID_VIDEO >> 8)), (unsigned char)PID_VIDEO, 0xf0, 0,
      0x03, (unsigned char)(0xe0 | (PID_AUDIO >> 8)), (unsigned char)PID_AUDIO, 0xf0, 6, 0x0a, 4, 'e', 'n', 'g', 0,
      0x86, (unsigned char)(0xe0 | (PID_SCTE35 >> 8)), (unsigned char)PID_SCTE35, 0xf0, 0};
  memcpy(s, body, sizeof body);
  s[2] = (unsigned char)(sizeof body - 3 + 4);
  return (int)sizeof body;
}

/* splice_insert, out of network, with a splice time and a 30 s break: 20-byte command. */
static int cue_section(unsigned char *s, uint32_t event_id, uint64_t pts) {
  unsigned char command[20];
  command[0] = (unsigned char)(event_id >> 24);
  command[1] = (unsigned char)(event_id >> 16);
  command[2] = (unsigned char)(event_id >> 8);
  command[3] = (unsigned char)event_id;
  command[4] = 0x7f;
  command[5] = 0xef; /* out_of_network, program_splice, duration, not immediate, event_id_compliance */
  command[6] = (unsigned char)(0xfe | ((pts >> 32) & 1));
  command[7] = (unsigned char)(pts >> 24);
  command[8] = (unsigned char)(pts >> 16);
  command[9] = (unsigned char)(pts >> 8);
  command[10] = (unsigned char)pts;
  uint64_t duration = 30ull * 90000ull;
  command[11] = (unsigned char)(0xfe | ((duration >> 32) & 1));
  command[12] = (unsigned char)(duration >> 24);
  command[13] = (unsigned char)(duration >> 16);
  command[14] = (unsigned char)(duration >> 8);
  command[15] = (unsigned char)duration;
  command[16] = (unsigned char)(event_id >> 8);
  command[17] = (unsigned char)event_id;
  command[18] = 0;
  command[19] = 0;
  int at = 0;
  s[at++] = 0xfc;
  s[at++] = 0x30;
  s[at++] = 0; /* length, below */
  s[at++] = 0x00; /* protocol_version */
  s[at++] = 0x00; /* not encrypted, pts_adjustment 0 */
  s[at++] = 0;
  s[at++] = 0;
  s[at++] = 0;
  s[at++] = 0;
  s[at++] = 0x00; /* cw_index */
  s[at++] = 0xff; /* tier 0xfff, splice_command_length */
  s[at++] = (unsigned char)(0xf0 | (sizeof command >> 8));
  s[at++] = (unsigned char)sizeof command;
  s[at++] = 0x05; /* splice_insert */
  memcpy(s + at, command, sizeof command);
  at += (int)sizeof command;
  s[at++] = 0; /* descriptor_loop_length */
  s[at++] = 0;
  s[2] = (unsigned char)(at - 3 + 4);
  return at;
}

static void write_pts(unsigned char *out, uint64_t pts) {
  out[0] = (unsigned char)(0x21 | ((pts >> 29) & 0x0e));
  out[1] = (unsigned char)(pts >> 22);
  out[2] = (unsigned char)(0x01 | ((pts >> 14) & 0xfe));
  out[3] = (unsigned char)(pts >> 7);
  out[4] = (unsigned char)(0x01 | ((pts << 1) & 0xfe));
}

typedef struct {
  unsigned long long index; /* TS packets made: the stream clock */
  unsigned char cc[5];      /* pat, pmt, video, audio, scte35 */
  double next_psi_ms, next_pcr_ms, next_frame_ms, next_key_ms, next_cue_ms;
  unsigned long long elementary;
  int audio_left; /* payload packets left in the current audio PES */
  int audio_at;   /* position in the current audio frame */
  uint32_t event_id;
  int pending; /* PMT due after the PAT */
  uint16_t sequence;
  uint32_t ssrc;
  /* the datagrams waiting out a jitter hold */
  unsigned char *ring;
  int *ring_stamp;
  int ring_size, ring_head, ring_count;
  unsigned long long hold_until;
  unsigned long long sent_datagrams, sent_packets, cues, media;
  uint64_t digest, media_digest;
} Channel;

/* A datagram's TS packets as sent (stamp included) into its channel's digests. */
static void digest_datagram(Channel *c, const unsigned char *ts) {
  for (int p = 0; p < PER_DATAGRAM; p++) {
    const unsigned char *packet = ts + p * TS;
    uint64_t hash = packet_hash(packet);
    c->digest = digest_next(c->digest, hash);
    int pid = ((packet[1] & 0x1f) << 8) | packet[2];
    if (pid != PID_PAT && pid != PID_PMT) {
      c->media++;
      c->media_digest += hash;
    }
  }
}

static double ms_per_packet;
static int audio_every = 216; /* a 4-packet audio PES every 216 packets: ~130 kbit/s in 7 Mbit/s */

/* The next TS packet of channel `c` into `out`; returns 1 if it is a plain video packet (a stamp can go in). */
static int next_packet(Channel *c, unsigned char *out, int *cue) {
  double now = (double)c->index * ms_per_packet;
  c->index++;
  unsigned char section[200];
  if (c->pending) {
    c->pending = 0;
    section_packet(out, PID_PMT, c->cc[1]++, section, pmt_section(section));
    return 0;
  }
  if (now >= c->next_psi_ms) {
    c->next_psi_ms = now + 100;
    c->pending = 1;
    section_packet(out, PID_PAT, c->cc[0]++, section, pat_section(section));
    return 0;
  }
  if (now >= c->next_cue_ms) {
    c->next_cue_ms += 1e9; /* set by the caller's cue interval */
    uint64_t pts = (uint64_t)((now + 4000) * 90) & 0x1ffffffffull;
    section_packet(out, PID_SCTE35, c->cc[4]++, section, cue_section(section, c->event_id++, pts));
    *cue = 1;
    return 0;
  }
  c->elementary++;
  uint64_t pts = (uint64_t)((now + 700) * 90) & 0x1ffffffffull;
  out[0] = 0x47;
  if (c->audio_left > 0 || c->elementary % (unsigned long long)audio_every == 0) {
    int start = c->audio_left == 0;
    if (start) c->audio_left = 4;
    c->audio_left--;
    out[1] = (unsigned char)((start ? 0x40 : 0) | (PID_AUDIO >> 8));
    out[2] = (unsigned char)PID_AUDIO;
    out[3] = (unsigned char)(0x10 | (c->cc[3]++ & 0x0f));
    unsigned char *payload = out + 4;
    int room = TS - 4;
    if (start) {
      /* PES header with PTS; the MPEG-1 Layer II frames run on across PES boundaries, as the standard allows */
      unsigned char header[14] = {0, 0, 1, 0xc0, (unsigned char)((4 * 184 - 6) >> 8), (unsigned char)(4 * 184 - 6),
                                  0x80, 0x80, 5};
      write_pts(header + 9, pts);
      memcpy(payload, header, 14);
      payload += 14;
      room -= 14;
    }
    fill_random(payload, room);
    /* a frame header every 384 bytes: 128 kbit/s, 48 kHz, stereo */
    static const unsigned char frame_header[4] = {0xff, 0xfd, 0x84, 0x00};
    for (int i = 0; i < room; i++, c->audio_at = (c->audio_at + 1) % 384)
      if (c->audio_at < 4) payload[i] = frame_header[c->audio_at];
    return 0;
  }
  int frame = now >= c->next_frame_ms;
  int key = frame && now >= c->next_key_ms;
  int pcr = now >= c->next_pcr_ms;
  if (frame) c->next_frame_ms = now + 40;
  if (key) c->next_key_ms = now + 1000;
  if (pcr) c->next_pcr_ms = now + 40;
  out[1] = (unsigned char)((frame ? 0x40 : 0) | (PID_VIDEO >> 8));
  out[2] = (unsigned char)PID_VIDEO;
  int at = 4;
  if (pcr || key) {
    out[3] = (unsigned char)(0x30 | (c->cc[2]++ & 0x0f));
    out[4] = pcr ? 7 : 1;
    out[5] = (unsigned char)((key ? 0x40 : 0) | (pcr ? 0x10 : 0));
    at = 6;
    if (pcr) {
      uint64_t base = (uint64_t)(now * 90) & 0x1ffffffffull;
      out[6] = (unsigned char)(base >> 25);
      out[7] = (unsigned char)(base >> 17);
      out[8] = (unsigned char)(base >> 9);
      out[9] = (unsigned char)(base >> 1);
      out[10] = (unsigned char)(((base & 1) << 7) | 0x7e);
      out[11] = 0;
      at = 12;
    }
  } else {
    out[3] = (unsigned char)(0x10 | (c->cc[2]++ & 0x0f));
  }
  if (frame) {
    /* PES header with PTS, unbounded length, an access unit delimiter, then at a key frame a real SPS and PPS
       (1280x720, from x264) and the start of an IDR slice, else the start of a P slice: enough for a demuxer's
       parser (ffmpeg's tee needs the picture size). The rest of the frame is noise. */
    static const unsigned char key_start[] = {
        0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xec, 0x04, 0x40, 0x00, 0x00,
        0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc6, 0x0c, 0xa8, 0, 0, 0, 1, 0x68, 0xce, 0x0f, 0xc8, 0, 0, 0, 1,
        0x65, 0x88, 0x84, 0x3a, 0x0c, 0x60, 0x01, 0xc1, 0x01, 0x10, 0x8e, 0x10, 0xba, 0xaa, 0x74, 0x2b};
    static const unsigned char other_start[] = {0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x41, 0x9a, 0x21, 0xaf,
                                                0x06, 0x10, 0xe1, 0xe7, 0xb9, 0xa7, 0xe8, 0x77};
    unsigned char header[14] = {0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5};
    write_pts(header + 9, pts);
    memcpy(out + at, header, 14);
    at += 14;
    const unsigned char *start = key ? key_start : other_start;
    int length = key ? (int)sizeof key_start : (int)sizeof other_start;
    memcpy(out + at, start, (size_t)length);
    fill_video_noise(out + at + length, TS - at - length);
    return 0;
  }
  fill_video_noise(out + at, TS - at);
  return at == 4;
}

static volatile sig_atomic_t report_now = 0;
static void on_usr1(int sig) { (void)sig; report_now = 1; }

static void print_counts(Channel *channels, int count, unsigned long long slots) {
  for (int i = 0; i < count; i++)
    printf("channel %d datagrams %llu packets %llu cues %llu media %llu digest %016llx media_digest %016llx\n", i,
           channels[i].sent_datagrams, channels[i].sent_packets, channels[i].cues, channels[i].media,
           (unsigned long long)channels[i].digest, (unsigned long long)channels[i].media_digest);
  printf("sent %llu\n", slots);
  fflush(stdout);
}

static int synthetic_mode(int argc, char **argv) {
  double mbps = 7, seconds = 10, cue_every = 4, loss = 0, jitter_ms = 0, gap_every = 0, gap_ms = 0;
  int rtp = 0, option;
  while ((option = getopt(argc, argv, "srm:d:c:l:j:g:G:x:")) != -1) {
    switch (option) {
      case 's': break;
      case 'r': rtp = 1; break;
      case 'm': mbps = atof(optarg); break;
      case 'd': seconds = atof(optarg); break;
      case 'c': cue_every = atof(optarg); break;
      case 'l': loss = atof(optarg) / 100; break;
      case 'j': jitter_ms = atof(optarg); break;
      case 'g': gap_every = atof(optarg); break;
      case 'G': gap_ms = atof(optarg); break;
      case 'x': random_state = strtoull(optarg, NULL, 10) * 0x9e3779b97f4a7c15ull + 1; break;
      default: fprintf(stderr, "usage: udp-source -s [-r] [-m MBPS] [-d S] [-c CUE_S] [-l %%] [-j MS] [-g S -G MS] PORT...\n"); return 2;
    }
  }
  int count = argc - optind;
  if (count < 1) { fprintf(stderr, "udp-source -s: give one port per channel\n"); return 2; }
  double rate = mbps * 1e6 / (DATAGRAM * 8); /* datagrams a second per channel */
  double interval = 1e9 / rate;
  ms_per_packet = TS * 8 * 1000 / (mbps * 1e6);
  int phases = count < MAX_PHASES ? count : MAX_PHASES;
  int hold_slots = (int)(jitter_ms * 1e6 / interval) + 2;
  int ring_size = 1;
  while (ring_size < hold_slots + 2) ring_size <<= 1;
  int size = DATAGRAM + RTP_HEADER;

  Channel *channels = calloc((size_t)count, sizeof *channels);
  struct sockaddr_in *targets = calloc((size_t)count, sizeof *targets);
  for (int i = 0; i < count; i++) {
    targets[i].sin_family = AF_INET;
    targets[i].sin_port = htons((unsigned short)atoi(argv[optind + i]));
    inet_pton(AF_INET, "127.0.0.1", &targets[i].sin_addr);
    Channel *c = &channels[i];
    c->ssrc = 0x10000000u + (uint32_t)i;
    c->sequence = (uint16_t)next_random();
    c->event_id = 1000u * (uint32_t)(i + 1);
    /* the first cue after a second, then one every cue_every seconds; staggered between channels */
    c->next_cue_ms = 1000 + (cue_every * 1000 * i) / count;
    c->ring = calloc((size_t)ring_size, (size_t)size);
    c->ring_stamp = calloc((size_t)ring_size, sizeof *c->ring_stamp);
    c->ring_size = ring_size;
  }
  int sock = socket(AF_INET, SOCK_DGRAM, 0);
  int buffer = 8 << 20;
  setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
  struct sigaction usr1 = {.sa_handler = on_usr1};
  sigaction(SIGUSR1, &usr1, NULL);

  int batch_max = count * (ring_size + 1);
  struct mmsghdr *messages = calloc((size_t)batch_max, sizeof *messages);
  struct iovec *vectors = calloc((size_t)batch_max, sizeof *vectors);
  unsigned char **stamps = calloc((size_t)batch_max, sizeof *stamps);
  int *owners = calloc((size_t)batch_max, sizeof *owners);

  unsigned long long slots = (unsigned long long)(rate * seconds);
  printf("started\n");
  fflush(stdout);
  unsigned long long start = clock_ns(CLOCK_MONOTONIC);
  for (unsigned long long slot = 0; slot < slots; slot++) {
    for (int phase = 0; phase < phases; phase++) {
      unsigned long long due = start + (unsigned long long)(((double)slot + (double)phase / phases) * interval);
      sleep_until(due);
      unsigned long long now = clock_ns(CLOCK_MONOTONIC);
      int queued = 0;
      for (int i = phase; i < count; i += phases) {
        Channel *c = &channels[i];
        /* make this slot's datagram into the ring */
        int tail = (c->ring_head + c->ring_count) & (c->ring_size - 1);
        unsigned char *datagram = c->ring + (size_t)tail * (size_t)size;
        unsigned char *ts = datagram + RTP_HEADER;
        int stamp_at = -1, cues = 0;
        double stream_ms = (double)c->index * ms_per_packet;
        for (int p = 0; p < PER_DATAGRAM; p++) {
          int cue = 0;
          if (next_packet(c, ts + p * TS, &cue) && stamp_at < 0) stamp_at = p * TS + 4;
          if (cue) {
            cues++;
            c->next_cue_ms = (double)(c->index) * ms_per_packet + cue_every * 1000;
          }
        }
        datagram[0] = 0x80;
        datagram[1] = 33;
        datagram[2] = (unsigned char)(c->sequence >> 8);
        datagram[3] = (unsigned char)c->sequence;
        uint32_t timestamp = (uint32_t)(stream_ms * 90);
        datagram[4] = (unsigned char)(timestamp >> 24);
        datagram[5] = (unsigned char)(timestamp >> 16);
        datagram[6] = (unsigned char)(timestamp >> 8);
        datagram[7] = (unsigned char)timestamp;
        datagram[8] = (unsigned char)(c->ssrc >> 24);
        datagram[9] = (unsigned char)(c->ssrc >> 16);
        datagram[10] = (unsigned char)(c->ssrc >> 8);
        datagram[11] = (unsigned char)c->ssrc;
        c->sequence++;
        if (stamp_at >= 0) {
          memcpy(ts + stamp_at, STAMP_MAGIC, 8);
          /* the channel in 7-bit groups with the top bit set: no zero byte, as in the noise around it */
          for (int b = 0; b < 4; b++) ts[stamp_at + 16 + b] = (unsigned char)(0x80 | ((i >> (7 * b)) & 0x7f));
        }
        /* faults: a gap or a random loss drops this datagram; a jitter hold keeps it for later */
        int silent = 0;
        if (gap_every > 0 && gap_ms > 0) {
          double period = gap_every * 1000;
          double shifted = stream_ms + period * i / count;
          double t = shifted - period * (double)(long long)(shifted / period);
          silent = t < gap_ms;
        }
        if (silent || (loss > 0 && uniform() < loss)) continue;
        c->ring_stamp[tail] = stamp_at;
        c->ring_count++;
        c->cues += (unsigned long long)cues;
        if (jitter_ms > 0 && now >= c->hold_until && uniform() < 5.0 / rate)
          c->hold_until = now + (unsigned long long)(uniform() * jitter_ms * 1e6);
        if (now < c->hold_until && c->ring_count < c->ring_size - 1) continue;
        while (c->ring_count > 0) {
          int slot_index = c->ring_head;
          unsigned char *out = c->ring + (size_t)slot_index * (size_t)size;
          vectors[queued] = (struct iovec){.iov_base = rtp ? out : out + RTP_HEADER, .iov_len = rtp ? (size_t)size : DATAGRAM};
          messages[queued] = (struct mmsghdr){.msg_hdr = {.msg_name = &targets[i], .msg_namelen = sizeof targets[i],
                                                          .msg_iov = &vectors[queued], .msg_iovlen = 1}};
          stamps[queued] = c->ring_stamp[slot_index] >= 0 ? out + RTP_HEADER + c->ring_stamp[slot_index] + 8 : NULL;
          owners[queued] = i;
          queued++;
          c->ring_head = (c->ring_head + 1) & (c->ring_size - 1);
          c->ring_count--;
          c->sent_datagrams++;
          c->sent_packets += PER_DATAGRAM;
        }
      }
      unsigned long long wall = clock_ns(CLOCK_REALTIME);
      for (int q = 0; q < queued; q++)
        if (stamps[q] != NULL) memcpy(stamps[q], &wall, 8);
      for (int at = 0; at < queued;) {
        int sent = sendmmsg(sock, messages + at, (unsigned)(queued - at), 0);
        if (sent <= 0) break;
        at += sent;
      }
      /* digested once sent, so that the stamps' send time is not put off: the ring keeps them until then */
      for (int q = 0; q < queued; q++)
        digest_datagram(&channels[owners[q]], (const unsigned char *)vectors[q].iov_base + (rtp ? RTP_HEADER : 0));
    }
    if (report_now) {
      report_now = 0;
      print_counts(channels, count, slot);
    }
  }
  print_counts(channels, count, slots);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-s") == 0) return synthetic_mode(argc, argv);
  return file_mode(argc, argv);
}
