/**
 * A declarative document (configuration as code) using many features, and the secrets it refers to: the
 * tests of plan, apply, export and the CLI share it.
 */
export const YT_KEY = "h13-yt-key-Zq8wX2vB7nM4";
export const SRT_PASS = "h13srtpass-9fK2mQ7xL";
export const PD_KEY = "h13pdroutingkey0123456789abcdef0";
export const SLACK_PATH = "h13SlackPathSecret42";
export const TEAMS_URL = "https://h13.webhook.office.com/webhookb2/h13TeamsSecretPath77";
export const HOOK = "whsec_aDNob29rc2VjcmV0MDEyMzQ1Njc4OQ==";

/** A reference to a secret, as a document writes it. */
export const ref = (name: string) => ["$", "{secret:", name, "}"].join("");

/** Many features: two inputs with health rules, a slate, a schedule, outputs of several protocols with policies. */
export const DOCUMENT = `version: 1
channels:
  evening-news:
    name: Evening news
    tags: [eu, news]
    rtp_ip: 127.0.0.1
    rtp_port: 47110
    backup_rtp_ip: 127.0.0.1
    backup_rtp_port: 47112
    redundancy:
      failover_after_ms: 500
      health:
        rules:
          no_video: { pid_missing: video, for_ms: 1000 }
          cc: { cc_errors: 20, window_ms: 1000 }
        unhealthy_when: no_video || cc
    slate:
      after_ms: 1500
    schedule:
      windows:
        - id: weekly
          rrule: "DTSTART;TZID=Europe/Paris:20261205T200000\\nRRULE:FREQ=WEEKLY;BYDAY=SA"
          duration_s: 3600
          outputs: [youtube]
    outputs:
      local:
        name: Local UDP
        protocol: udp
        url: udp://127.0.0.1:47120
        policy: { scte35: { segmentation_types: [52, 54] } }
      rtp-copy:
        name: RTP copy
        protocol: rtp
        url: rtp://127.0.0.1:47122
      contribution:
        name: Contribution SRT
        protocol: srt
        url: srt://127.0.0.1:47124?mode=caller&passphrase=\${secret:H13_SRT_PASS}
      youtube:
        name: YouTube
        protocol: rtmp
        url: rtmp://127.0.0.1:47126/live/\${secret:H13_YT_KEY}
        enabled: false
  sports:
    name: Sports
    rtp_ip: 127.0.0.1
    rtp_port: 47114
    outputs:
      main:
        name: Main
        protocol: udp
        url: udp://127.0.0.1:47128
notifiers:
  oncall:
    name: On call
    kind: pagerduty
    routing_key: \${secret:H13_PD_KEY}
    events: [input_lost, failover]
  automation:
    name: Automation
    kind: webhook
    url: http://127.0.0.1:47130/hook
    secret: \${secret:H13_HOOK}
    events: [output_failed]
    channels: [evening-news]
  chat:
    name: Ops chat
    kind: slack
    url: https://hooks.slack.com/services/T0H13/B0H13/h13SlackPathSecret42
    events: [input_lost]
  teams:
    name: Teams room
    kind: teams
    url: \${secret:H13_TEAMS_URL}
    events: [failover]
access_rules:
  - { claim: groups, equals: tv-ops-eu, role: operator, channels: { tags: [eu] } }
  - { claim: groups, equals: tv-admins, role: admin, channels: "*" }
`;

export const RIST_SECRET = "h7ristsecret-Kp3vQ9zW";
export const RTSP_PASSWORD = "h7rtsppass-Vd8sL1";

/**
 * Every feature (acceptance 1): DOCUMENT, whose channels have two inputs with health rules, a slate, a
 * schedule and notifiers of each kind, with the sports channel given an output of every other protocol
 * (RIST with a secret by reference, RTMPS, RTSP with a password by reference, RTSPS, a recording, HLS), each
 * with a policy. A recording needs DISTRIBUTARY_RECORDINGS_DIR to be `recordings`.
 */
export const everyFeature = (recordings: string) =>
  DOCUMENT.replace(
    `        url: udp://127.0.0.1:47128
`,
    `        url: udp://127.0.0.1:47128
        policy: { scte35: strip }
      rist:
        name: RIST contribution
        protocol: rist
        url: rist://127.0.0.1:47160?profile=main&secret=\${secret:H7_RIST_SECRET}
        policy: { pids: { drop: [258] } }
      rtmps:
        name: RTMPS
        protocol: rtmps
        url: rtmps://127.0.0.1:47162/live/h7-rtmps-key
        policy: { scte35: strip }
      rtsp:
        name: RTSP
        protocol: rtsp
        url: rtsp://h7:\${secret:H7_RTSP_PASSWORD}@127.0.0.1:47164/live/cam
        policy: { scte35: strip }
      rtsps:
        name: RTSPS
        protocol: rtsps
        url: rtsps://127.0.0.1:47166/live/cam
        policy: { scte35: strip }
      archive:
        name: Archive
        protocol: file
        url: file://${recordings}/sports?rotate=60
        policy: { scte35: strip }
      web:
        name: Web
        protocol: hls
        url: hls://?target=2&window=30
        policy: { scte35: strip }
`,
  );
