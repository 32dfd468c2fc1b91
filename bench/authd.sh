#!/bin/bash
# bench/authd.sh: authd lookups per second, cached and uncached (issue 3, "Done means").
#
# Starts a private sandbox (tests/sandbox), creates a virtual domain and a mailbox in its
# MariaDB, runs build/bench/authd-bench twice against authd's socket and prints a table:
#   cached     rcpt for the same mailbox every time (answered from authd's cache)
#   uncached   rcpt for a new, non-existent address of the domain every time (every request
#              reaches the database; negative answers are cached, hence new addresses)
# then stops the sandbox. Settings from the environment:
#   CONNS (50)  concurrent clients      DURATION (5)  seconds per run
#   WINDOW (1)  requests in flight per client
#   POSTERN_BUILD (build/)  where postern-master, postern-authd and bench/authd-bench are
# Exit status 1 if a run had errors or cached lookups stay under the 50,000/s target.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${POSTERN_BUILD:-$REPO/build}
BENCH=$BUILD/bench/authd-bench
CONNS=${CONNS:-50}
SECONDS_EACH=${DURATION:-5}
WINDOW=${WINDOW:-1}
TARGET=50000
DOMAIN=bench.test
MAILBOX=user@$DOMAIN

for f in "$BUILD/postern-master" "$BUILD/postern-authd" "$BENCH"; do
	[ -x "$f" ] || { echo "authd.sh: $f missing: run make all" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "authd.sh: run as root (the sandbox creates system users)" >&2; exit 2; }

DIR=$(mktemp -d /tmp/postern-bench-authd.XXXXXX)
chmod 755 "$DIR"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	"$REPO/tests/sandbox" stop "$DIR" >/dev/null || echo "authd.sh: sandbox stop failed" >&2
	rm -rf "$DIR"
}
trap cleanup EXIT

POSTERN_BUILD=$BUILD "$REPO/tests/sandbox" start "$DIR" >/dev/null
# shellcheck disable=SC1091
. "$DIR/env"
"$REPO/tests/sandbox" sql "$DIR" -e "
	INSERT INTO virtual_domains (name) VALUES ('$DOMAIN');
	INSERT INTO virtual_users (domain_id, password, email)
		SELECT id, '{PLAIN}bench', '$MAILBOX' FROM virtual_domains WHERE name = '$DOMAIN';"
SOCK=$POSTERN_SPOOL/private/auth

# run NAME ARGS...: one authd-bench run; its key=value line goes to $DIR/NAME.out.
run() {
	local name=$1
	shift
	echo "+ $(basename "$BENCH") -s $SOCK $* -c $CONNS -d $SECONDS_EACH -w $WINDOW" >&2
	"$BENCH" -s "$SOCK" "$@" -c "$CONNS" -d "$SECONDS_EACH" -w "$WINDOW" \
		| tee "$DIR/$name.out" >&2
}
run cached -a "$MAILBOX"
run uncached -u "$DOMAIN"

# field NAME KEY: a value from a run's key=value line.
field() {
	tr ' ' '\n' <"$DIR/$1.out" | sed -n "s/^$2=//p"
}

echo
echo "authd rcpt lookups: $CONNS concurrent clients, $WINDOW in flight each," \
	"${SECONDS_EACH} s per run, $(nproc) CPUs"
printf '%-10s %10s %10s %9s %9s %9s %7s\n' workload requests "req/s" "p50 us" "p99 us" \
	"max us" errors
status=0
for name in cached uncached; do
	printf '%-10s %10s %10s %9s %9s %9s %7s\n' "$name" "$(field $name requests)" \
		"$(field $name rate)" "$(field $name p50_us)" "$(field $name p99_us)" \
		"$(field $name max_us)" "$(field $name errors)"
	[ "$(field $name errors)" = 0 ] || status=1
done
rate=$(field cached rate)
if [ "${rate:-0}" -ge "$TARGET" ]; then
	echo "cached target (>= $TARGET/s): met"
else
	echo "cached target (>= $TARGET/s): NOT met"
	status=1
fi
exit $status
