#!/usr/bin/env bash
# deps.sh - install, idempotently, what buzon's tests need on Debian:
# real mail clients to test against, PostgreSQL for the scale-out backend,
# Dovecot as the peer for comparisons, and the Go lint tools.
# Installs nothing that is already there; needs root (or sudo) only then.
set -euo pipefail

packages=(
	python3        # imaplib, poplib, smtplib.LMTP, mailbox
	curl           # imap://, pop3://
	isync          # mbsync
	offlineimap3   # two-way IMAP <-> Maildir sync
	fetchmail
	getmail6       # POP3 and IMAP download into a Maildir
	mpop
	mutt           # reads the fetch client's Maildir and mbox output
	swaks          # an LMTP client with PIPELINING
	openssl
	procps         # pgrep/ps for the benchmark and peer scripts
	postgresql     # initdb/pg_ctl for a throwaway cluster
	dovecot-imapd dovecot-pop3d dovecot-lmtpd  # the peer in ../shared/peers/dovecot.sh
	dovecot-sieve  # sieve-test: Pigeonhole's interpreter, to compare ours against
	dovecot-submissiond  # Dovecot's submission service, which TestSubmissionLikeDovecot compares ours with
	sieve-connect python3-sievelib  # ManageSieve clients
	libplist-utils # plistutil: libimobiledevice's reader of Apple property lists (.mobileconfig)
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	export DEBIAN_FRONTEND=noninteractive
	# The package lists on a fresh machine may be stale; refresh them once.
	$sudo apt-get update -q >/dev/null || true
	# Dovecot's packages try to start the system service; we never use it.
	$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go tools, pinned.
gobin=$(go env GOPATH)/bin
if [ ! -x "$gobin/staticcheck" ] || ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "0.8.2"; then
	echo "deps: installing staticcheck" >&2
	go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi

# The system user that owns the Dovecot peer's Maildirs. ../shared/peers/dovecot.sh
# creates it when missing, but tests start several peers at once, and two of
# them creating it together would fail one: it is made here, once, first.
if ! id dovepeer >/dev/null 2>&1; then
	echo "deps: creating the system user dovepeer (the Dovecot peer's Maildirs)" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin dovepeer
fi
