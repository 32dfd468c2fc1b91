#!/bin/bash
# bench/imap.sh: IMAP, Postern against a stock Dovecot from Debian's packages (dovecot-imapd,
# dovecot-mysql), side by side in one run (issue 6; target: Postern at least 1.5x Dovecot's
# throughput and no more than its memory). One client for both, build/bench/imap-load
# (bench/imap-load.c), measures:
#   logins/s      LOGIN_CONNS clients loop connect, LOGIN, LOGOUT for LOGIN_SECONDS (client i
#                 logs in as u<i>, u<i+LOGIN_CONNS>, ...: never two connections of one user);
#   SELECT+FETCH  LOGIN (not timed), then SELECT INBOX + UID FETCH 1:* (FLAGS UID RFC822.SIZE)
#                 on mailboxes of each of SIZES messages, twice: "cold" is the first SELECT
#                 of a Maildir the server has never opened (no dovecot-uidlist, no index),
#                 "cached" the second one, in a new session;
#   APPEND/s      APPEND_MESSAGES messages of APPEND_SIZE bytes (CRLF, synchronizing literal)
#                 into the INBOX, by each of APPEND_CONNS clients in turn (each its own user);
#   PSS           IDLE_CONNS connections logged in with INBOX (IDLE_MESSAGES messages)
#                 selected, then the PSS (/proc/PID/smaps_rollup) of every process of the
#                 server that serves IMAP clients, summed and divided by IDLE_CONNS: Dovecot's
#                 imap and imap-login, Postern's postern-imap and postern-imap-login
#                 (its master, authd, the other daemons and Dovecot's master, auth, config,
#                 log, anvil and stats processes are not counted; Dovecot's imap-login
#                 processes end after a plain-text login, they stay only to proxy TLS).
# Each server is idle while the other one is measured. Every measurement is made REPEAT times,
# Dovecot and Postern taking turns, and the table shows the median of each (the other work on
# a shared machine moves single runs by tens of percent).
#
# The same for both:
#   - the database: the sandbox's private MariaDB, its virtual_users table, the users made by
#     `postern admin user add` (SHA512-CRYPT, verified on every login: neither caches it);
#   - the Maildirs, at the same paths: $POSTERN_MAIL_ROOT/DOMAIN/USER/Maildir, owned by vmail.
#     They are filled by writing Dovecot-style files (`time.M..P..Q..host,S=..,W=..:2,FLAGS`,
#     LF line ends; 3 in 4 \Seen, 1 in 10 \Flagged) straight into cur/, so that neither server
#     has new/ to move into cur/, not through SMTP, once into a template; before each
#     server's run the mailboxes it uses are made anew from the template (message files hard
#     links, everything else copied), so both start from the same files and neither reads the
#     dovecot-uidlist or index the other one wrote. "Cold" means never opened by that server;
#     the files themselves are in the page cache for both (DROP_CACHES=yes drops the kernel's
#     caches before each cold run: all of the machine's, so it is off by default);
#   - plain-text LOGIN without TLS on 127.0.0.1 for both (Dovecot: ssl = no and
#     disable_plaintext_auth = no; Postern: imap_allow_plaintext_auth = yes);
#   - the client, the machine; both log every login to a file.
# Not the same:
#   - Dovecot's configuration is the common guide's (reference/peer-postfix-dovecot.sh): passdb
#     sql, with the userdb fields returned by the same query (userdb prefetch: one query per
#     login; a userdb sql follows for lookups without a login), Dovecot's defaults for
#     everything else (fsync: mail_fsync = optimized; index files inside the Maildir).
#     Written under the run's temporary directory with its own base_dir, started with
#     `dovecot -c` on DC_PORT; the machine's /etc/dovecot is not read or changed;
#   - Postern runs in the sandbox (tests/sandbox) with its privilege separation and chroots,
#     and its SMTP, POP3, delivery daemons idle; imap_process_limit is raised so that
#     IDLE_CONNS connections fit whatever the login processes' model is.
#
#   usage: bench/imap.sh
#   env:   SIZES="1000 10000 100000" LOGIN_CONNS=20 LOGIN_SECONDS=5 APPEND_MESSAGES=2000
#          APPEND_SIZE=4096 APPEND_CONNS="1 10" IDLE_CONNS=100 IDLE_MESSAGES=1000 TIMEOUT=10
#          FETCH_TIMEOUT=300 DC_PORT=(free) REPEAT=3 DROP_CACHES=no ONLY=dovecot|postern KEEP=no
# Exit status 1 when a run failed (Postern's IMAP service missing or not answering included);
# the table says whether the targets are met.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${POSTERN_BUILD:-$REPO/build}
LOAD=$BUILD/bench/imap-load
SIZES=${SIZES:-1000 10000 100000}
LOGIN_CONNS=${LOGIN_CONNS:-20}
LOGIN_SECONDS=${LOGIN_SECONDS:-5}
APPEND_MESSAGES=${APPEND_MESSAGES:-2000}
APPEND_SIZE=${APPEND_SIZE:-4096}
APPEND_CONNS=${APPEND_CONNS:-1 10}
IDLE_CONNS=${IDLE_CONNS:-100}
IDLE_MESSAGES=${IDLE_MESSAGES:-1000}
TIMEOUT=${TIMEOUT:-10}
FETCH_TIMEOUT=${FETCH_TIMEOUT:-300}
REPEAT=${REPEAT:-3}
DROP_CACHES=${DROP_CACHES:-no}
ONLY=${ONLY:-}
KEEP=${KEEP:-no}
DOMAIN=bench.test
PASS=benchpass

for f in "$BUILD/postern-master" "$BUILD/postern" "$LOAD"; do
	[ -x "$f" ] || { echo "imap.sh: $f missing: run make bench-imap" >&2; exit 2; }
done
NUSERS=$IDLE_CONNS
for n in "$LOGIN_CONNS" $APPEND_CONNS; do [ "$n" -gt "$NUSERS" ] && NUSERS=$n; done

# shellcheck source=bench/lib-dovecot.sh
. "$REPO/bench/lib-dovecot.sh"
bench_setup imap dovecot-core dovecot-imapd dovecot-mysql

# --- Postern, in the sandbox (its MariaDB serves both) -----------------------------------------
# imap_allow_plaintext_auth only exists once the IMAP service does; an older build would
# refuse the unknown parameter, and its IMAP port is then found not to speak IMAP below.
sets=(--set "imap_process_limit=$((IDLE_CONNS + LOGIN_CONNS + 50))")
[ -x "$BUILD/postern-imap" ] && sets+=(--set imap_allow_plaintext_auth=yes)
bench_start_postern "${sets[@]}"

# --- users and mailbox templates -----------------------------------------------------------------
echo "setting up: $NUSERS users u0..u$((NUSERS - 1)), mailboxes of $SIZES messages" >&2
for ((i = 0; i < NUSERS; i++)); do add_user "u$i"; done
for n in $SIZES; do add_user "m$n"; done
bench_skeleton u0
# shellcheck disable=SC2086
bench_fill $SIZES "$IDLE_MESSAGES"

# --- Dovecot: a throwaway configuration, same MariaDB, same Maildirs ----------------------------
bench_dovecot_port
if runs dovecot; then
	write_dovecot_conf imap
	start_dovecot
fi

# --- measuring ------------------------------------------------------------------------------------
# pss.py ROOTPID NAME...: "KIB COUNT": the summed PSS of ROOTPID's descendants whose executable
# is one of NAMEs.
cat > "$DIR/pss.py" <<'PY'
import os, sys
root, names = int(sys.argv[1]), set(sys.argv[2:])
children = {}
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            with open(f"/proc/{p}/stat") as f:
                text = f.read()
        except OSError:
            continue
        children.setdefault(int(text[text.rindex(")") + 2:].split()[1]), []).append(int(p))
todo, found = [root], []
while todo:
    for c in children.get(todo.pop(), []):
        found.append(c)
        todo.append(c)
total = count = 0
for pid in found:
    try:
        exe = os.path.basename(os.readlink(f"/proc/{pid}/exe")).removesuffix(" (deleted)")
        if exe not in names:
            continue
        with open(f"/proc/{pid}/smaps_rollup") as f:
            pss = next(int(l.split()[1]) for l in f if l.startswith("Pss:"))
    except (OSError, StopIteration):
        continue
    total += pss
    count += 1
print(total, count)
PY

port_of() { [ "$1" = postern ] && echo "$POSTERN_IMAP_PORT" || echo "$DC_PORT"; }
name_of() { [ "$1" = postern ] && echo Postern || echo Dovecot; }

# load SERVER NAME ARGS...: one imap-load run against SERVER; its key=value line goes to
# $DIR/SERVER.NAME.out (and stderr); status of imap-load.
load() {
	local server=$1 name=$2 rc=0
	shift 2
	echo "+ $(name_of "$server"): imap-load $* -p $(port_of "$server")" >&2
	"$LOAD" "$@" -p "$(port_of "$server")" -w "$PASS" >"$DIR/$server.$name.out" || rc=$?
	cat "$DIR/$server.$name.out" >&2
	return $rc
}

# field SERVER NAME KEY: a value from a run's key=value line.
field() { tr ' ' '\n' <"$DIR/$1.$2.out" | sed -n "s/^$3=//p"; }

measure_login() {
	load "$1" login login -U "u#@$DOMAIN" -n "$NUSERS" -c "$LOGIN_CONNS" \
		-d "$LOGIN_SECONDS" -t "$TIMEOUT" && field "$1" login rate
}

# measure_fetch SERVER N: "COLD_MS CACHED_MS" on a fresh copy of the N-message mailbox.
measure_fetch() {
	local cold cached
	reset_maildir "m$2" "$2"
	drop_caches
	load "$1" "fetch$2-cold" fetch -U "m$2@$DOMAIN" -x "$2" -t "$FETCH_TIMEOUT" || return 1
	cold=$(field "$1" "fetch$2-cold" total_ms)
	load "$1" "fetch$2-cached" fetch -U "m$2@$DOMAIN" -x "$2" -t "$FETCH_TIMEOUT" || return 1
	cached=$(field "$1" "fetch$2-cached" total_ms)
	echo "$cold $cached"
}

measure_append() {
	local i
	for ((i = 0; i < $2; i++)); do reset_maildir "u$i" 0; done
	load "$1" "append$2" append -U "u#@$DOMAIN" -c "$2" -m "$APPEND_MESSAGES" \
		-s "$APPEND_SIZE" -t "$TIMEOUT" || return 1
	field "$1" "append$2" rate
}

# measure_idle SERVER: PSS in KiB per idle connection (and the process count, on stderr).
measure_idle() {
	local server=$1 i pid root kib count rc=0 names
	for ((i = 0; i < IDLE_CONNS; i++)); do reset_maildir "u$i" "$IDLE_MESSAGES"; done
	if [ "$server" = postern ]; then
		root=$POSTERN_MASTER_PID; names="postern-imap postern-imap-login"
	else
		root=$DC_MASTER_PID; names="imap imap-login"
	fi
	rm -f "$DIR/idle.fifo"
	mkfifo "$DIR/idle.fifo"
	echo "+ $(name_of "$server"): imap-load idle -U u#@$DOMAIN -c $IDLE_CONNS" >&2
	"$LOAD" idle -p "$(port_of "$server")" -w "$PASS" -U "u#@$DOMAIN" -c "$IDLE_CONNS" \
		-t "$TIMEOUT" <"$DIR/idle.fifo" >"$DIR/$server.idle.out" &
	pid=$!
	exec 3>"$DIR/idle.fifo"
	while kill -0 "$pid" 2>/dev/null && ! grep -q '^ready' "$DIR/$server.idle.out"; do
		sleep 0.1
	done
	if grep -q '^ready' "$DIR/$server.idle.out"; then
		sleep 1		# let the processes settle after the last SELECT
		# shellcheck disable=SC2086
		read -r kib count < <(python3 "$DIR/pss.py" "$root" $names)
		echo "$(name_of "$server"): $count processes ($names), $kib KiB PSS in all" >&2
		# one session process per connection in both servers: fewer means the names
		# above no longer match the programs, and the sum would be too small
		if [ "$count" -lt "$IDLE_CONNS" ]; then
			echo "$(name_of "$server"): fewer than $IDLE_CONNS such processes" >&2
			rc=1
		fi
	fi
	exec 3>&-
	wait "$pid" || rc=1
	cat "$DIR/$server.idle.out" >&2
	[ "$rc" = 0 ] && [ -n "${kib:-}" ] || return 1
	python3 -c "print(round($kib / $IDLE_CONNS))"
}

# --- the runs --------------------------------------------------------------------------------------
# Rows: "label|kind|postern|dovecot" where kind is rate (higher is better), ms or kib (lower).
if runs postern; then
	if [ ! -x "$BUILD/postern-imap" ]; then
		echo "Postern: $BUILD/postern-imap does not exist (IMAP service not built yet);" \
			"checking what answers on its IMAP port anyway" >&2
	fi
	if ! "$LOAD" login -p "$POSTERN_IMAP_PORT" -U "u0@$DOMAIN" -w "$PASS" -d 1 -t "$TIMEOUT" \
		>/dev/null 2>"$DIR/probe.err"; then
		echo "Postern: no IMAP login on port $POSTERN_IMAP_PORT (timeout ${TIMEOUT}s):" \
			"$(sed -n 's/^imap-load: [0-9]* errors, the first: //p' "$DIR/probe.err")" >&2
		echo "Postern: its runs are skipped" >&2
		postern_ok=no
		failed=yes
	fi
fi

LABELS=("logins/s ($LOGIN_CONNS conns)")
run_pair rate measure_login
for n in $SIZES; do
	label=$n
	((n % 1000 == 0)) && label=$((n / 1000))k
	LABELS=("SELECT+FETCH $label cold (ms)" "SELECT+FETCH $label cached (ms)")
	run_pair ms measure_fetch "$n"
done
for c in $APPEND_CONNS; do
	LABELS=("APPEND/s ($APPEND_MESSAGES x $APPEND_SIZE B, $c conns)")
	run_pair rate measure_append "$c"
done
LABELS=("PSS per idle connection (KiB)")
run_pair kib measure_idle

# --- the table --------------------------------------------------------------------------------------
bench_table "IMAP: Postern against Dovecot $DC_VERSION, same MariaDB, same Maildirs, plain LOGIN on loopback"
[ "$failed" = no ]
