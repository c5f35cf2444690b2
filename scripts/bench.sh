#!/usr/bin/env bash
# bench.sh - run every load profile of internal/bench against buzon and
# against a Dovecot started with ../shared/peers/dovecot.sh, on this
# machine: the same users, the same generated mail (filled over LMTP into
# both), the same password-hash algorithm and cost, the two servers
# alternated round by round; then the medians and their ratios as a
# markdown table.
#
# Usage: scripts/bench.sh [CASE...]     (run as root: Dovecot needs it)
#   CASE is one of: deliver pop3-download imap-sync-SIZE imap-mixed
#   idle-fanout-CONNECTIONS (default: all); imap-sync and idle-fanout
#   stand for all their sizes. Results go to $OUT: one JSON file per run
#   (json/CASE.SERVER.ROUND.json), the servers' logs, and results.md.
#
# Environment (defaults):
#   OUT=/tmp/buzon-bench/DATE-TIME   output folder
#   ROUNDS=3          rounds; each runs every case on both servers, and
#                     who goes first alternates
#   DURATION=10s      each measured run (deliver, pop3-download, imap-sync,
#                     imap-mixed);  WARMUP=2s before each (not imap-sync)
#   CONCURRENCY=16    clients of deliver, pop3-download, imap-mixed
#   USERS=100         users 1..USERS hold MSGS messages each: pop3-download,
#   MSGS=200          imap-mixed and idle-fanout use them
#   SYNC_CASES="1000:4:102400 100000:1:8192"
#                     imap-sync cases SIZE:USERS:MAXBYTES: USERS users of
#                     their own hold SIZE messages of at most MAXBYTES
#                     (100,000 messages of up to 100 KB would be 5 GB a
#                     user); as many clients as users
#   DELIVER_USERS=10  deliver goes to users of its own, so it does not grow
#                     the others' mailboxes
#   IDLE_CASES="1000 10000"
#                     idle-fanout cases: one per number of IDLE connections
#                     (spread over the USERS users)
#   DOVECOT_MAX_IMAP=1000  the Dovecot peer's process limit (one imap process
#                     per session, default_process_limit = 1000): idle-fanout
#                     cases with more connections run on buzon alone
#   SEED=1            message generator seed
#   PASS_SCHEME=BLF-CRYPT  Dovecot's password scheme (BLF-CRYPT or ARGON2ID);
#                     buzon gets the same algorithm with the cost read from
#                     Dovecot's hash (doveadm pw's default: bcrypt cost 5,
#                     argon2id m=65536 t=3 p=1)
#   DOVECOT_MODE=performance  stock or performance (see dovecot.sh)
#   DOVECOT_SH=../shared/peers/dovecot.sh (from the repository root)
#   PEER_DIR=/tmp/buzon-bench-peer  Dovecot's folder; deleted first (FRESH)
#   DOVECOT_IMAP_PORT=12143 DOVECOT_POP3_PORT=12110 DOVECOT_LMTP_PORT=12024
#   BUZON_IMAP_PORT=13143 BUZON_POP3_PORT=13110 BUZON_LMTP_PORT=13024
#                     ports of their own, clear of other peers and of the
#                     ephemeral port range
#   FRESH=1           start both servers from empty stores (0: reuse $OUT's
#                     buzon data and PEER_DIR; fill only adds what is missing)
#   BUZON_STORE=sqlite  buzon's store: sqlite (embedded, in $OUT/buzon-data)
#                     or postgres: a PostgreSQL cluster of its own in
#                     $OUT/pg (initdb from PG_BIN, run as the postgres
#                     user, on a unix socket only; fsync and
#                     synchronous_commit on, shared_buffers=PG_SHARED_BUFFERS)
#                     whose processes are measured with buzon's
#   NODES=1           with postgres: buzon nodes serving the one database,
#                     node k (from 0) on the BUZON_*_PORTs + 100*k with a data
#                     folder (certificate, spool) of its own; the load
#                     generator spreads the clients over the nodes in turn
#                     (client i on node i mod NODES), and the CPU and memory
#                     reported are those of all nodes and PostgreSQL
#   BUZON_LABEL       buzon's label in the results: buzon (sqlite), buzon-pg
#                     (postgres, one node), buzon-pg-NODESnodes
#   PG_BIN=/usr/lib/postgresql/*/bin (the newest)  PG_SHARED_BUFFERS=1GB
#   PPROF=0           N > 0: serve Go's profiles on a metrics port of each
#                     node (BUZON_METRICS_PORT=13090 + 100*k) and save an N s
#                     CPU profile of every node during each measured buzon
#                     run, starting 3 s in, as $OUT/pprof/CASE.ROUND.nodeK.pb.gz
#                     (costs buzon a few percent; leave it off for the numbers)
#   TUNE=1            raise fs.inotify.max_user_instances (Dovecot's IDLE
#                     needs one inotify instance per imap process, and falls
#                     back to polling every 30 s beyond the limit) and the
#                     open-file limit for IDLE_CONNS connections
#   KEEP=0            1: leave both servers running at the end
#   BENCH_LOCK=/tmp/buzon-bench.lock  runs of this script on one machine
#                     take turns on this lock, so that two benchmarks never
#                     measure each other ("": no lock)
#   QUIET=0           on a shared machine: before each run, wait until the
#                     CPUs were at most QUIET percent busy over 2 s (both
#                     servers idle, so that is other people's work), for at
#                     most QUIET_WAIT=300 seconds; the busy share found is
#                     logged with each run. 0: do not wait.
#
# Note: the Dovecot peer runs one imap process per session and caps them at
# 1000 (default_process_limit), so idle-fanout cases beyond DOVECOT_MAX_IMAP
# connections are not run on Dovecot; their tables have buzon alone.
#
# The stores stay behind for FRESH=0: buzon's in $OUT (a PostgreSQL run
# leaves about 4 GB in $OUT/pg), Dovecot's in PEER_DIR. Delete them when
# done; a disk that fills up mid-run spoils the results.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

OUT=${OUT:-/tmp/buzon-bench/$(date +%Y%m%d-%H%M%S)}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONCURRENCY=${CONCURRENCY:-16}
USERS=${USERS:-100}
MSGS=${MSGS:-200}
SYNC_CASES=${SYNC_CASES:-"1000:4:102400 100000:1:8192"}
DELIVER_USERS=${DELIVER_USERS:-10}
IDLE_CASES=${IDLE_CASES:-"1000 10000"}
DOVECOT_MAX_IMAP=${DOVECOT_MAX_IMAP:-1000}
SEED=${SEED:-1}
PASS_SCHEME=${PASS_SCHEME:-BLF-CRYPT}
DOVECOT_MODE=${DOVECOT_MODE:-performance}
DOVECOT_SH=${DOVECOT_SH:-$ROOT/../shared/peers/dovecot.sh}
PEER_DIR=${PEER_DIR:-/tmp/buzon-bench-peer}
DOVECOT_IMAP_PORT=${DOVECOT_IMAP_PORT:-12143}
DOVECOT_POP3_PORT=${DOVECOT_POP3_PORT:-12110}
DOVECOT_LMTP_PORT=${DOVECOT_LMTP_PORT:-12024}
BUZON_IMAP_PORT=${BUZON_IMAP_PORT:-13143}
BUZON_POP3_PORT=${BUZON_POP3_PORT:-13110}
BUZON_LMTP_PORT=${BUZON_LMTP_PORT:-13024}
FRESH=${FRESH:-1}
BUZON_STORE=${BUZON_STORE:-sqlite}
NODES=${NODES:-1}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
PG_SHARED_BUFFERS=${PG_SHARED_BUFFERS:-1GB}
PPROF=${PPROF:-0}
BUZON_METRICS_PORT=${BUZON_METRICS_PORT:-13090}
TUNE=${TUNE:-1}
KEEP=${KEEP:-0}
BENCH_LOCK=${BENCH_LOCK-/tmp/buzon-bench.lock}
QUIET=${QUIET:-0}
QUIET_WAIT=${QUIET_WAIT:-300}

PROG=${0##*/}
die() { echo "$PROG: error: $*" >&2; exit 1; }
info() { echo "$PROG: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "run as root: the Dovecot peer needs it"
[ -x "$DOVECOT_SH" ] || die "no Dovecot peer script at $DOVECOT_SH (set DOVECOT_SH)"
command -v go >/dev/null || die "Go is needed to build buzon"
case "$BUZON_STORE" in
sqlite) [ "$NODES" = 1 ] || die "NODES=$NODES: several nodes need BUZON_STORE=postgres" ;;
postgres)
	[ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] || die "no PostgreSQL initdb and pg_ctl in PG_BIN=$PG_BIN"
	id postgres >/dev/null 2>&1 || die "PostgreSQL runs as the postgres user, which does not exist" ;;
*) die "BUZON_STORE=$BUZON_STORE is not sqlite or postgres" ;;
esac
[[ "$NODES" =~ ^[1-9][0-9]?$ ]] || die "NODES=$NODES is not a number of nodes"
if [ -z "${BUZON_LABEL:-}" ]; then
	BUZON_LABEL=buzon
	[ "$BUZON_STORE" = postgres ] && BUZON_LABEL=buzon-pg
	[ "$NODES" -gt 1 ] && BUZON_LABEL=buzon-pg-${NODES}nodes
fi

if [ -n "$BENCH_LOCK" ]; then
	exec 9>>"$BENCH_LOCK" # closed for the servers started below: they must not hold it
	if ! flock -n 9; then
		info "another benchmark holds $BENCH_LOCK; waiting for it to finish"
		flock 9
	fi
fi

mkdir -p "$OUT/json" "$OUT/bin"

# --- users: the same numbers on both servers --------------------------------
# users 1..USERS: the shared mailboxes; then each imap-sync case's users;
# then deliver's.
next_user=$((USERS + 1))
declare -a SYNC_NAMES=() SYNC_FIRST=() SYNC_USERS=() SYNC_SIZE=() SYNC_MAX=()
for c in $SYNC_CASES; do
	IFS=: read -r size users maxbytes <<<"$c"
	[[ "$size" =~ ^[0-9]+$ && "$users" =~ ^[0-9]+$ && "$maxbytes" =~ ^[0-9]+$ ]] ||
		die "SYNC_CASES entry '$c' is not SIZE:USERS:MAXBYTES"
	SYNC_NAMES+=("imap-sync-$size"); SYNC_FIRST+=("$next_user"); SYNC_USERS+=("$users")
	SYNC_SIZE+=("$size"); SYNC_MAX+=("$maxbytes")
	next_user=$((next_user + users))
done
DELIVER_FIRST=$next_user
TOTAL_USERS=$((next_user + DELIVER_USERS - 1))

declare -a IDLE_NAMES=()
max_idle=0
for n in $IDLE_CASES; do
	[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "IDLE_CASES entry '$n' is not a number of connections"
	IDLE_NAMES+=("idle-fanout-$n")
	[ "$n" -gt "$max_idle" ] && max_idle=$n
done

ALL_CASES=(deliver pop3-download "${SYNC_NAMES[@]}" imap-mixed "${IDLE_NAMES[@]}")
CASES=()
asked=("$@")
[ ${#asked[@]} -gt 0 ] || asked=("${ALL_CASES[@]}")
for c in "${asked[@]}"; do
	case "$c" in
	imap-sync) CASES+=("${SYNC_NAMES[@]}") ;;
	idle-fanout) CASES+=("${IDLE_NAMES[@]}") ;;
	*)
		[[ " ${ALL_CASES[*]} " == *" $c "* ]] || die "unknown case '$c' (known: ${ALL_CASES[*]})"
		CASES+=("$c") ;;
	esac
done

# servers_of CASE: the servers a case runs on, in the order of a round.
servers_of() {
	local n
	case "$1" in
	idle-fanout-*)
		n=${1#idle-fanout-}
		if [ "$n" -gt "$DOVECOT_MAX_IMAP" ]; then
			echo buzon
			return
		fi ;;
	esac
	echo buzon dovecot
}

# --- tuning -------------------------------------------------------------------
if [ "$TUNE" = 1 ]; then
	want=$((max_idle + 1024))
	have=$(sysctl -n fs.inotify.max_user_instances)
	if [ "$have" -lt "$want" ]; then
		info "raising fs.inotify.max_user_instances $have -> $want (TUNE=0 to leave it)"
		sysctl -qw fs.inotify.max_user_instances="$want"
	fi
	# The load generator and the server each hold one end of every
	# connection.
	files=$((max_idle + 4096))
	hard=$(ulimit -Hn)
	if [ "$hard" != unlimited ] && [ "$hard" -lt "$files" ] && ! ulimit -Hn "$files" 2>/dev/null; then
		info "cannot raise the open-file limit to $files; idle-fanout is left $hard"
		files=$hard
	fi
	[ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -ge "$files" ] || ulimit -Sn "$files"
fi

# --- build ------------------------------------------------------------------
info "building buzon"
BUZON=$OUT/bin/buzon
CGO_ENABLED=0 go build -trimpath -o "$BUZON" ./cmd/buzon
if "$BUZON" bench --help >/dev/null 2>&1; then
	BENCH=("$BUZON" bench)
else
	# Until cmd/buzon has a bench command: the package's test binary runs
	# the same command line (internal/bench TestManual).
	go test -c -o "$OUT/bin/bench.test" ./internal/bench
	BENCH=("$OUT/bin/bench.test" -test.run '^TestManual$' -test.timeout 0)
fi

# --- Dovecot ------------------------------------------------------------------
peer() {
	PEER_DIR=$PEER_DIR USERS=$TOTAL_USERS PASS_SCHEME=$PASS_SCHEME DOVECOT_MODE=$DOVECOT_MODE \
		IMAP_PORT=$DOVECOT_IMAP_PORT POP3_PORT=$DOVECOT_POP3_PORT LMTP_PORT=$DOVECOT_LMTP_PORT \
		IMAPS_PORT=$((DOVECOT_IMAP_PORT + 850)) POP3S_PORT=$((DOVECOT_POP3_PORT + 885)) \
		"$DOVECOT_SH" "$@"
}
BUZON_PIDS=()
PG_DIR=$OUT/pg
PG_PID=

# pg_ctl_as ARGS...: pg_ctl as the postgres user (PostgreSQL refuses root).
pg_ctl_as() {
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" "$@"
}

cleanup() {
	[ "$KEEP" = 1 ] && { info "KEEP=1: buzon (pids ${BUZON_PIDS[*]:-none}), ${PG_PID:+PostgreSQL ($PG_DIR), }and Dovecot left running"; return; }
	local pid
	for pid in "${BUZON_PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid"
			wait "$pid" 2>/dev/null || true
		fi
	done
	[ -n "$PG_PID" ] && pg_ctl_as stop -m fast >/dev/null 2>&1 || true
	peer stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [ "$FRESH" = 1 ]; then
	peer clean >/dev/null
fi
info "starting Dovecot ($DOVECOT_MODE, $PASS_SCHEME, $TOTAL_USERS users) in $PEER_DIR"
peer start 9>&- >"$OUT/dovecot-start.log" || { cat "$OUT/dovecot-start.log" >&2; die "Dovecot did not start"; }
# The master: the tool measures it and all its descendants, as it does
# buzon's one process.
DOVECOT_PID=$(peer pids | head -1)

# The same algorithm and cost for buzon, read from the hash Dovecot uses.
hash=$(awk -F: 'NR == 1 { print $2 }' "$PEER_DIR/passwd")
case "$hash" in
{BLF-CRYPT}*)
	cost=$(sed -E 's/^\{[^}]*\}\$2[abxy]?\$([0-9]+)\$.*/\1/' <<<"$hash")
	AUTH="scheme = \"bcrypt\"
bcrypt_cost = $((10#$cost))"
	HASH_DESC="bcrypt, cost $((10#$cost))" ;;
{ARGON2ID}*)
	read -r m t p < <(sed -nE 's/.*\$m=([0-9]+),t=([0-9]+),p=([0-9]+)\$.*/\1 \2 \3/p' <<<"$hash")
	[ -n "${p:-}" ] || die "cannot read the argon2id parameters from Dovecot's hash"
	AUTH="scheme = \"argon2id\"
argon2_memory = $m
argon2_time = $t
argon2_threads = $p"
	HASH_DESC="argon2id, m=$m t=$t p=$p" ;;
*) die "PASS_SCHEME=$PASS_SCHEME: buzon stores bcrypt or argon2id hashes; use BLF-CRYPT or ARGON2ID" ;;
esac
info "password hashing on both: $HASH_DESC"

# --- PostgreSQL ---------------------------------------------------------------
STORE_CONF='backend = "sqlite"'
if [ "$BUZON_STORE" = postgres ]; then
	[ "$FRESH" = 1 ] && rm -rf "$PG_DIR"
	if [ ! -d "$PG_DIR/data" ]; then
		info "creating a PostgreSQL cluster in $PG_DIR"
		mkdir -p "$PG_DIR/sock"
		chown -R postgres: "$PG_DIR"
		runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 \
			--locale=C >"$OUT/pg-initdb.log" 2>&1 || { cat "$OUT/pg-initdb.log" >&2; die "initdb failed"; }
		cat >>"$PG_DIR/data/postgresql.conf" <<EOF
# Written by $PROG: a unix socket only; durable commits as in production.
listen_addresses = ''
unix_socket_directories = '$PG_DIR/sock'
fsync = on
synchronous_commit = on
max_connections = 200
shared_buffers = $PG_SHARED_BUFFERS
EOF
	fi
	pg_ctl_as start -w -t 60 -l "$PG_DIR/log" >/dev/null 9>&- || { tail -20 "$PG_DIR/log" >&2; die "PostgreSQL did not start"; }
	PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
	if ! runuser -u postgres -- "$PG_BIN/psql" -h "$PG_DIR/sock" -U postgres -Atc \
		"SELECT 1 FROM pg_database WHERE datname = 'buzon'" postgres | grep -q 1; then
		runuser -u postgres -- "$PG_BIN/createdb" -h "$PG_DIR/sock" -U postgres buzon
	fi
	STORE_CONF="backend = \"postgres\"
dsn = \"host=$PG_DIR/sock user=postgres dbname=buzon sslmode=disable\""
	info "PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }') serving (pid $PG_PID), shared_buffers=$PG_SHARED_BUFFERS"
fi

# --- buzon ------------------------------------------------------------------
BUZON_DATA=$OUT/buzon-data
BUZON_CONF=$OUT/buzon.toml
[ "$FRESH" = 1 ] && rm -rf "$BUZON_DATA" "$OUT"/buzon-data-node*
# buzon_conf K: node K's config, on the BUZON_*_PORTs + 100*K.
buzon_conf() {
	local off=$((100 * $1)) metrics=
	[ "$PPROF" -gt 0 ] && metrics="metrics = \"127.0.0.1:$((BUZON_METRICS_PORT + off))\"
pprof = true"
	cat <<EOF
# Written by $PROG. Limits are lifted so that the load generator, not a
# per-address or per-account limit, is what the server meets.
[listen]
imap = "127.0.0.1:$((BUZON_IMAP_PORT + off))"
imaps = "off"
pop3 = "127.0.0.1:$((BUZON_POP3_PORT + off))"
pop3s = "off"
lmtp = "127.0.0.1:$((BUZON_LMTP_PORT + off))"
smtp = "off"
sieve = "off"
$metrics

[store]
$STORE_CONF

[auth]
$AUTH

[limits]
max_connections_per_ip = 0
max_connections_per_account = 100000
commands_per_second = 1000000
EOF
}
# node_ports BASE: BASE + 100*k for every node k, comma-separated.
node_ports() {
	local k ports=()
	for ((k = 0; k < NODES; k++)); do ports+=($(($1 + 100 * k))); done
	local IFS=,
	echo "${ports[*]}"
}
buzon_conf 0 >"$BUZON_CONF"
if [ ! -d "$BUZON_DATA" ]; then
	info "creating $TOTAL_USERS buzon users"
	mkdir -p "$BUZON_DATA"
	for ((u = 1; u <= TOTAL_USERS; u++)); do
		printf 'pass\n' | "$BUZON" user add --data "$BUZON_DATA" --config "$BUZON_CONF" "user$u@example.org" >/dev/null
	done
fi
for ((k = 0; k < NODES; k++)); do
	conf=$BUZON_CONF data=$BUZON_DATA log=$OUT/buzon.log
	if [ "$k" -gt 0 ]; then
		conf=$OUT/buzon-node$k.toml data=$OUT/buzon-data-node$k log=$OUT/buzon-node$k.log
		buzon_conf "$k" >"$conf"
	fi
	ports=($((BUZON_IMAP_PORT + 100 * k)) $((BUZON_POP3_PORT + 100 * k)) $((BUZON_LMTP_PORT + 100 * k)))
	for port in "${ports[@]}"; do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && die "port $port is in use (set BUZON_*_PORT)"
	done
	"$BUZON" serve --data "$data" --config "$conf" >>"$log" 2>&1 9>&- &
	BUZON_PIDS+=($!)
	for port in "${ports[@]}"; do
		for ((i = 0; i < 300; i++)); do
			(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
			kill -0 "${BUZON_PIDS[-1]}" 2>/dev/null || { tail -20 "$log" >&2; die "buzon serve exited"; }
			sleep 0.1
		done
	done
	info "buzon node $k serving (pid ${BUZON_PIDS[-1]}) on ports ${ports[*]}, log $log"
done
# What is measured of buzon: every node, and PostgreSQL with its backends.
BUZON_MEASURED=$(IFS=,; echo "${BUZON_PIDS[*]}${PG_PID:+,$PG_PID}")

# --- running the tool ---------------------------------------------------------
# server_args SERVER: how to reach and measure SERVER.
server_args() {
	case "$1" in
	buzon) echo "--label $BUZON_LABEL --user user%d@example.org --imap-port $(node_ports "$BUZON_IMAP_PORT") --pop3-port $(node_ports "$BUZON_POP3_PORT") --lmtp-port $(node_ports "$BUZON_LMTP_PORT") --pid $BUZON_MEASURED" ;;
	dovecot) echo "--label dovecot --user user%d --imap-port $DOVECOT_IMAP_PORT --pop3-port $DOVECOT_POP3_PORT --lmtp-port $DOVECOT_LMTP_PORT --pid $DOVECOT_PID" ;;
	esac
}

# bench SERVER ARGS...: run the tool against SERVER.
bench() {
	local server=$1; shift
	# shellcheck disable=SC2046
	"${BENCH[@]}" "$@" $(server_args "$server") --seed "$SEED"
}

# case_args CASE: the profile and flags of a case.
case_args() {
	local i
	case "$1" in
	deliver) echo "deliver --first-user $DELIVER_FIRST --users $DELIVER_USERS -c $CONCURRENCY --duration $DURATION --warmup $WARMUP" ;;
	pop3-download) echo "pop3-download --users $USERS -c $((CONCURRENCY < USERS ? CONCURRENCY : USERS)) --duration $DURATION --warmup $WARMUP" ;;
	imap-mixed) echo "imap-mixed --users $USERS -c $CONCURRENCY --duration $DURATION --warmup $WARMUP" ;;
	idle-fanout-*) echo "idle-fanout --users $USERS --connections ${1#idle-fanout-} -c 64 --timeout 120s" ;;
	imap-sync-*)
		for i in "${!SYNC_NAMES[@]}"; do
			[ "${SYNC_NAMES[$i]}" = "$1" ] || continue
			echo "imap-sync --first-user ${SYNC_FIRST[$i]} --users ${SYNC_USERS[$i]} -c ${SYNC_USERS[$i]} --duration $DURATION"
		done ;;
	esac
}

# --- fill: the same mail on both -----------------------------------------------
for server in buzon dovecot; do
	info "filling $server"
	bench "$server" fill --name "fill-shared" --users "$USERS" --mailbox-size "$MSGS" -c 8 \
		--out "$OUT/json/fill-shared.$server.json" >"$OUT/fill-shared.$server.txt"
	for i in "${!SYNC_NAMES[@]}"; do
		[[ " ${CASES[*]} " == *" ${SYNC_NAMES[$i]} "* ]] || continue
		bench "$server" fill --name "fill-${SYNC_NAMES[$i]}" --first-user "${SYNC_FIRST[$i]}" \
			--users "${SYNC_USERS[$i]}" --mailbox-size "${SYNC_SIZE[$i]}" --max-size "${SYNC_MAX[$i]}" \
			-c 8 --timeout 300s --out "$OUT/json/fill-${SYNC_NAMES[$i]}.$server.json" >"$OUT/fill-${SYNC_NAMES[$i]}.$server.txt"
	done
done

# busy_percent: how busy the CPUs were over the next 2 s, from /proc/stat.
busy_percent() {
	local a b
	a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
	local total=0 idle i
	for ((i = 1; i < ${#a[@]}; i++)); do total=$((total + b[i] - a[i])); done
	idle=$((b[4] - a[4] + b[5] - a[5])) # idle + iowait
	echo $((total > 0 ? 100 * (total - idle) / total : 0))
}

# wait_quiet: with QUIET set, wait until other work leaves the CPUs alone.
wait_quiet() {
	[ "$QUIET" -gt 0 ] || return 0
	local start=$SECONDS busy
	while busy=$(busy_percent) && [ "$busy" -gt "$QUIET" ] && [ $((SECONDS - start)) -lt "$QUIET_WAIT" ]; do
		info "machine ${busy}% busy; waiting for it to drop to ${QUIET}%"
		sleep 3
	done
	info "machine ${busy}% busy before the run (waited $((SECONDS - start)) s)"
}

# profile_nodes NAME: a CPU profile of every node (PPROF seconds), 3 s
# into a run.
profile_nodes() {
	local k
	mkdir -p "$OUT/pprof"
	sleep 3
	for ((k = 0; k < NODES; k++)); do
		curl -sS -o "$OUT/pprof/$1.node$k.pb.gz" \
			"http://127.0.0.1:$((BUZON_METRICS_PORT + 100 * k))/debug/pprof/profile?seconds=$PPROF" &
	done
	wait
}

# --- rounds -------------------------------------------------------------------
failed=()
for ((round = 1; round <= ROUNDS; round++)); do
	order=(buzon dovecot)
	[ $((round % 2)) -eq 0 ] && order=(dovecot buzon)
	for c in "${CASES[@]}"; do
		for server in "${order[@]}"; do
			[[ " $(servers_of "$c") " == *" $server "* ]] || continue
			wait_quiet
			label=$server
			[ "$server" = buzon ] && label=$BUZON_LABEL
			info "round $round/$ROUNDS: $c on $label"
			prof=
			if [ "$server" = buzon ] && [ "$PPROF" -gt 0 ]; then
				profile_nodes "$c.$round" &
				prof=$!
			fi
			# shellcheck disable=SC2046
			if ! bench "$server" $(case_args "$c") --name "$c" --out "$OUT/json/$c.$label.$round.json" \
				>"$OUT/$c.$label.$round.txt" 2>"$OUT/$c.$label.$round.log"; then
				failed+=("$c on $label, round $round: $(tail -1 "$OUT/$c.$label.$round.log")")
				info "FAILED: ${failed[-1]}"
			fi
			[ -z "$prof" ] || wait "$prof"
		done
	done
done

# --- report -------------------------------------------------------------------
{
	echo "# buzon and Dovecot on $(hostname), $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "$(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM;" \
		"buzon $(git describe --always --dirty 2>/dev/null || echo '?') ($BUZON_LABEL: $BUZON_STORE store, $NODES node(s)); Dovecot $(/usr/sbin/dovecot --version | cut -d' ' -f1) ($DOVECOT_MODE mode);" \
		"password hashing $HASH_DESC on both; $ROUNDS rounds, servers alternated; medians."
	echo "Ratios: \"better\" is buzon's advantage over Dovecot, whichever way the metric points."
	echo
	shopt -s nullglob
	files=()
	for c in "${CASES[@]}" fill-shared "${SYNC_NAMES[@]/#/fill-}"; do
		files+=("$OUT"/json/"$c".*.json)
	done
	"${BENCH[@]}" compare --base dovecot "${files[@]}" | grep -v '^PASS$'
	if [ ${#failed[@]} -gt 0 ]; then
		echo "## Failed runs"
		echo
		printf -- '- %s\n' "${failed[@]}"
	fi
} >"$OUT/results.md"
cat "$OUT/results.md"
info "results: $OUT/results.md"
