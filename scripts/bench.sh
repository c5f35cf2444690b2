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
#   idle-fanout (default: all). Results go to $OUT: one JSON file per run
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
#   IDLE_CONNS=10000  idle-fanout connections (over the USERS users)
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
# 1024 (service imap process_limit), so idle-fanout beyond about 1000
# connections fails on Dovecot and is listed under "Failed runs".
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
IDLE_CONNS=${IDLE_CONNS:-10000}
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

ALL_CASES=(deliver pop3-download "${SYNC_NAMES[@]}" imap-mixed idle-fanout)
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=("${ALL_CASES[@]}")
for c in "${CASES[@]}"; do
	[[ " ${ALL_CASES[*]} " == *" $c "* ]] || die "unknown case '$c' (known: ${ALL_CASES[*]})"
done

# --- tuning -------------------------------------------------------------------
if [ "$TUNE" = 1 ]; then
	want=$((IDLE_CONNS + 1024))
	have=$(sysctl -n fs.inotify.max_user_instances)
	if [ "$have" -lt "$want" ]; then
		info "raising fs.inotify.max_user_instances $have -> $want (TUNE=0 to leave it)"
		sysctl -qw fs.inotify.max_user_instances="$want"
	fi
	files=$((2 * IDLE_CONNS + 4096))
	if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$files" ]; then
		ulimit -Hn "$files"
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
BUZON_PID=

cleanup() {
	[ "$KEEP" = 1 ] && { info "KEEP=1: buzon (pid ${BUZON_PID:-none}) and Dovecot left running"; return; }
	if [ -n "$BUZON_PID" ] && kill -0 "$BUZON_PID" 2>/dev/null; then
		kill -TERM "$BUZON_PID"
		wait "$BUZON_PID" 2>/dev/null || true
	fi
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

# --- buzon ------------------------------------------------------------------
BUZON_DATA=$OUT/buzon-data
BUZON_CONF=$OUT/buzon.toml
[ "$FRESH" = 1 ] && rm -rf "$BUZON_DATA"
cat >"$BUZON_CONF" <<EOF
# Written by $PROG. Limits are lifted so that the load generator, not a
# per-address or per-account limit, is what the server meets.
[listen]
imap = "127.0.0.1:$BUZON_IMAP_PORT"
imaps = "off"
pop3 = "127.0.0.1:$BUZON_POP3_PORT"
pop3s = "off"
lmtp = "127.0.0.1:$BUZON_LMTP_PORT"

[auth]
$AUTH

[limits]
max_connections_per_ip = 0
max_connections_per_account = 100000
commands_per_second = 1000000
EOF
if [ ! -d "$BUZON_DATA" ]; then
	info "creating $TOTAL_USERS buzon users"
	for ((u = 1; u <= TOTAL_USERS; u++)); do
		printf 'pass\n' | "$BUZON" user add --data "$BUZON_DATA" --config "$BUZON_CONF" "user$u@example.org" >/dev/null
	done
fi
for port in $BUZON_IMAP_PORT $BUZON_POP3_PORT $BUZON_LMTP_PORT; do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && die "port $port is in use (set BUZON_*_PORT)"
done
"$BUZON" serve --data "$BUZON_DATA" --config "$BUZON_CONF" >>"$OUT/buzon.log" 2>&1 9>&- &
BUZON_PID=$!
for port in $BUZON_IMAP_PORT $BUZON_POP3_PORT $BUZON_LMTP_PORT; do
	for ((i = 0; i < 300; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		kill -0 "$BUZON_PID" 2>/dev/null || { tail -20 "$OUT/buzon.log" >&2; die "buzon serve exited"; }
		sleep 0.1
	done
done
info "buzon serving (pid $BUZON_PID), log $OUT/buzon.log"

# --- running the tool ---------------------------------------------------------
# server_args SERVER: how to reach and measure SERVER.
server_args() {
	case "$1" in
	buzon) echo "--label buzon --user user%d@example.org --imap-port $BUZON_IMAP_PORT --pop3-port $BUZON_POP3_PORT --lmtp-port $BUZON_LMTP_PORT --pid $BUZON_PID" ;;
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
	idle-fanout) echo "idle-fanout --users $USERS --connections $IDLE_CONNS -c 64 --timeout 120s" ;;
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

# --- rounds -------------------------------------------------------------------
failed=()
for ((round = 1; round <= ROUNDS; round++)); do
	order=(buzon dovecot)
	[ $((round % 2)) -eq 0 ] && order=(dovecot buzon)
	for c in "${CASES[@]}"; do
		for server in "${order[@]}"; do
			wait_quiet
			info "round $round/$ROUNDS: $c on $server"
			# shellcheck disable=SC2046
			if ! bench "$server" $(case_args "$c") --name "$c" --out "$OUT/json/$c.$server.$round.json" \
				>"$OUT/$c.$server.$round.txt" 2>"$OUT/$c.$server.$round.log"; then
				failed+=("$c on $server, round $round: $(tail -1 "$OUT/$c.$server.$round.log")")
				info "FAILED: ${failed[-1]}"
			fi
		done
	done
done

# --- report -------------------------------------------------------------------
{
	echo "# buzon and Dovecot on $(hostname), $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "$(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM;" \
		"buzon $(git describe --always --dirty 2>/dev/null || echo '?'); Dovecot $(/usr/sbin/dovecot --version | cut -d' ' -f1) ($DOVECOT_MODE mode);" \
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
