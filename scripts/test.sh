#!/usr/bin/env bash
# test.sh - the whole buzon test suite, from a fresh clone on Debian.
#
# Installs what the tests need (scripts/deps.sh), checks formatting and
# lint, runs every Go test with the race detector (real clients: Python's
# imaplib/poplib/smtplib, curl, mbsync, offlineimap, fetchmail, getmail,
# mpop; PostgreSQL in a throwaway cluster; the crash loop), and runs each
# fuzz target briefly.
#
#   FUZZTIME=3s    how long each fuzz target runs (0 to skip)
#   CRASH_KILLS=50 SIGKILLs in the crash-safety loop
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

# section NAME: prints NAME, after the time the section before it took.
section() {
	[ -n "${section_name:-}" ] && echo "   ($section_name took $((SECONDS - section_start)) s)"
	section_name=$1 section_start=$SECONDS
	echo "== $1"
}

gobin=$(go env GOPATH)/bin
section "gofmt, go vet, staticcheck"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
"$gobin/staticcheck" ./...

section "go test -race"
# Many tests mostly wait, on the servers and real clients they start and
# on timeouts, so four packages run at once, and the end-to-end tests
# (cmd/buzon) four at a time within theirs.
go test -race -count=1 -p 4 -parallel 4 -timeout 20m ./...

# The same IMAP, POP3, ManageSieve, auth and delivery (lookup, Sieve,
# quota warnings) tests again, on the scale-out backend
# (internal/store/teststore). They wait on PostgreSQL's commits more than
# they compute, so they run in the background beside the fuzz targets,
# which compute; their output follows.
fuzztime=${FUZZTIME:-3s}
if [ "$fuzztime" != "0" ]; then
	section "protocol suites on PostgreSQL, and fuzz ($fuzztime each) beside them"
else
	section "protocol suites on PostgreSQL"
fi
pglog=$(mktemp) bindir=$(mktemp -d)
# In a process group of their own, so that a failure here stops them.
BUZON_TEST_STORE=postgres setsid go test -race -count=1 -parallel 4 -timeout 20m ./internal/pop3server/... ./internal/imapserver/... \
	./internal/managesieve/... ./internal/auth/... ./internal/delivery/... >"$pglog" 2>&1 &
pgtests=$!
trap 'kill -- -$pgtests 2>/dev/null || true; rm -rf "$pglog" "$bindir"' EXIT

if [ "$fuzztime" != "0" ]; then
	# Every Fuzz function in the module, found from the source. Each
	# package's test binary is built once, instrumented for fuzzing, and
	# run once per target from the package's folder (where its
	# testdata/fuzz seeds are), with the cache folder go test would use.
	cache=$(go env GOCACHE)/fuzz
	module=$(go list -m)
	git grep -l '^func Fuzz' -- '*_test.go' | xargs -n1 dirname | sort -u | while read -r dir; do
		bin=$bindir/$(echo "$dir" | tr / _).test
		go test -c -fuzz=. -o "$bin" "./$dir"
		for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | cut -d' ' -f2); do
			echo "-- ./$dir $target"
			log=$bindir/fuzz.log
			# Minimizing each new input for a second, not Go's default
			# minute, leaves a short run's seconds to the fuzzing itself.
			(cd "$dir" && "$bin" -test.run '^$' -test.fuzz "^${target}\$" -test.fuzztime "$fuzztime" \
				-test.fuzzminimizetime 1s -test.fuzzcachedir "$cache/$module/$dir") >"$log" 2>&1 && continue
			# Go 1.26's fuzz coordinator can report its own -fuzztime
			# deadline as a failure when a loaded machine keeps a worker
			# busy past it (golang/go#75804, fixed in Go 1.27). That
			# failure writes no failing input and names no test line;
			# anything else is a real failure.
			if grep -q '^    context deadline exceeded$' "$log" &&
				! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log"; then
				echo "   stopped by Go's own fuzztime deadline (golang/go#75804), no failing input: not a failure"
				continue
			fi
			cat "$log"
			exit 1
		done
	done
fi
echo "-- protocol suites on PostgreSQL"
pgstatus=0
wait "$pgtests" || pgstatus=$?
cat "$pglog"
[ "$pgstatus" = 0 ] || exit "$pgstatus"
section "all tests passed in $SECONDS s"
