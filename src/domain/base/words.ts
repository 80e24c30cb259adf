/**
 * The words a secret masked by value must not be part of: the words of six letters or more of the service's
 * own texts (log lines, event words, problem details, page labels) and common English words. A secret that is
 * one of them, or a piece of one ("listen" of "listener"), would blank that word out of every line that uses
 * it; a real stream key or passphrase is random-looking and never is. Only words of six letters or more are
 * here because shorter secrets are not masked by value at all.
 */
const WORDS = `
  absent absolute accept accepted accepts access acknowledged across action actions active actual actually
  address addresses adjustment against algorithm alignment allowed almost already although always amount
  animal announce announced anonymous another answer answered answers anyone anything appear appears
  application applies arguments around arrive arriving article artist assets assume attachment attack
  attempt attempts attention attribute audience authenticate author authorization available avails backup
  balance bandwidth banner basket battle bearer beautiful because become before behaviour behind believe
  benefit beside better between beyond bitrate blocks bodies boolean bottom branch breakfast bridge bright
  broadcast broken brother budget buffer building business button caller camera campaign cancel cannot
  capacity capital capture career carrier carries carrying castle center central century certain certificate
  chance change changed changes channel channels chapter character characters charge charset checkbox
  checks choice choose church circle citizen classic cleanup client climate cloned closed coffee collect
  college colour column columns combine command commas comment commit common community compact company
  compare compatible complete component components computed concept concern condition conference config
  configuration configured confirm conflict conflicts connect connected connecting connection consider
  contact contain container contains content context continue continuity contract control cookie copied
  correct corrupt corruption counted counter counters country counts county couple course crashed create
  created creator credentials credit crisis crypto culture current customer damage danger dashboard datagram
  datagrams deadline dealer debate decade decide decimal decode decoded default defence defense define
  defines degree delays delete deleted deletes deleting deliver demand denied depend describe descriptor
  descriptors design desired destination destinations detail details develop device digits dinner direct
  direction director directory disable disabled disconnect disconnected discontinuity discover discuss disease
  disposition distributary distribution distributor doctor document dollar domain double download driver
  dropped duplicate duration during earlier easily economy editor effect effects effort either election
  employee enable enabled encode encoded encoding encrypted encryption endpoint energy engine enough
  entire entries environment equals errors escape estimate evening eventloop events everyone everything
  evidence exactly example exists exited expect expected expects expert explain export exported exports
  facebook failed failover failovers failure family father feature ffmpeg fields figure filename filesize
  filter finally finance finger fingerprint finish firewall flight flower follow football forbidden foreign
  forest forget formal format former forward forwarded forwarding forwards fragment frames friend fullest
  function future garden gateway general gentle global golden ground growth guessed guitar handed handing
  handle handover handshake happen header health height hidden highest history holiday honest hospital
  hostname however hundred husband identifier identify ignore ignored immediate impact import imported
  include includes income increase indeed independent indicate indicator industry information ingest initial
  inline inputs insert inside install installed instead integer interest interface internal international
  interval interview invalid island issues itself jacket javascript joining journal journey junior kernel
  killed kitchen knowledge ladder language lasted latency lateness launch lawyer layout leader league leaves
  legacy length letter letters levels library libsrt likely listed listen listener listening listens listing
  literals little liveness livestream living loaded localhost locate location locked logging logout longer
  longest loopback losses lovely machine magazine maintain malformed manage manager market masked master
  matter measure medialive medical meeting member memory merged message messages metadata method metrics
  middle military million millis milliseconds minute mirror mismatch missing mobile modern module modules
  moment monkey morning mother motion mountain movement moving mpegts multicast multiple multiplies myself
  naming narrow nation national natural nature nearly needed neither nested nesting network nobody nodejs
  normal nothing notice nowrap number numbers numeric object office officer offset oldest online openapi
  openssl operation operator option optional options orange origin original others output outputs outside
  overlaps overrun overview package packet packets padding parameter parent parsed particular partner
  passphrase passphrases passthrough password passwords pathname payload people perfect perhaps period
  permission permitted person picture pipeline placeholder planet planned platform player players playlist
  please pocket points police policy polite polyline popular position positive possible potato practice
  prefix prepare preroll present preset presets president pretty prevent preview previewed previous primary
  principal priorities priority private probably probation problem process produce producer product professor
  profile program programme programs progress project promise promises property protect protocol provide
  provider public publish publisher publishing purpose quality quantile quarter question quickly raised
  random rather reader readiness reading readline reality really realtime reason rebuild rebuilt receive
  received receiver receivers receives receiving recent reconfigure reconnect reconnecting reconnects
  record recorded recording recordings records recovered reduce redundancy reference referer refinement
  reflect refusal refused region rejected relate release remain remaining remember remote remove removed
  reordered repeat replace replaced replaces report reported represent request requested require required
  requires research reservation resolve resource respond response responses restarted restarting restarts
  restored restores restrictions result resumed resynchronised retransmits retransmitted return returned
  reveal revert review revoke revoked rocket rotate routes running runtime runtimes safety sample schedule
  scheduling schema schemas scheme school science screen scroll search season second seconds secret secrets
  section sections security segment segmentation segmented segments select selected selector sender senders
  sending senior separated sequence series serious served server service services session settings settle
  several shadow shorter shortfall should shoulder shutdown shutting sigint sigkill signal sigterm silence
  silent silver simple simply single sister situation snapshot social society socket sockets software
  soldier someone something sometimes source sources spacer special specified speech spirit splice sports
  spring square stacked standard standby started starting starts startup states station statistics status
  sticky stopped stored strategy stream streamid streaming streamkey street strict string strong struct
  student studio stuffing stylesheet subject submit success suddenly suffer suggest summary summer sunrise
  sunset supply support supported surface suspend switch switched switches switching symbol syntax system
  talent target teacher technology television tennis theory thousand thread threads throughout thrown
  thumbnails thumbs ticket timeout timers together tokens tomorrow tonight toolbar topbar touched toward
  transfer transformation transport travel treated trouble truncated trying turned twenty twitch ulimit
  unauthorized unavailable unbounded undecodable undefined understand unexpected unexpectedly unicast
  unique united universe unknown unless unlisted unreachable unrecoverable unsigned untouched update
  upgrade upload uploader uptime usually validate valley values various version viewer viewport village
  volume waiting wallet wanted warning warnings watched watcher weather website websocket weekend welcome
  western whatever whether whitespace window winter within without wonder worker workers working writer
  writev written yellow yesterday youtube
  called changing console creating describechannel egress endpoints instance linked listchannels matches
  minutes passed passes pending pipelines reaches recovering removes startchannel stopchannel stopping
  throttled updating upstream
  backing failures keyframe keyframes latest usable skipped unreadable
  missed postroll preroll renews takeover warming
  occurrence occurrences
  notifier notifiers notification notifications delivered delivery deliveries redirect redirects followed
  resolves webhook webhooks pagerduty signed signing routing renewing timestamp hourly outcome
  asking callers published serves allows shared shares maxreceivers badsecret notfound unsecure unhealthy
  upgraded handed encoder refusals
  repeated agreed aligned margin sockets threads draining drained upgrading
`;

export const SERVICE_WORDS: ReadonlyArray<string> = WORDS.split(/\s+/).filter((word) => word !== "");
