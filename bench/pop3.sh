#!/bin/bash
# bench/pop3.sh: POP3, Postern against a stock Dovecot from Debian's packages (dovecot-pop3d,
# dovecot-mysql), side by side in one run (issue 7). One client for both, build/bench/pop3-load
# (bench/pop3-load.c), measures:
#   logins/s      LOGIN_CONNS clients loop connect, USER, PASS, QUIT for LOGIN_SECONDS (client i
#                 logs in as u<i>, u<i+LOGIN_CONNS>, ... of 5 x LOGIN_CONNS users, each
#                 mailbox holding LOGIN_MESSAGES messages: a POP3 session reads its maildrop
#                 at login, and a user comes back only after four others);
#   RETR          RETR_CONNS clients (each its own user, a mailbox of RETR_MESSAGES messages
#                 of 0.4 to 3.5 KiB) log in, then the clock runs over RETR 1 .. RETR N, one at
#                 a time as mail clients do, every message read to its end: messages/s and
#                 MiB/s; then the time QUIT takes (both servers set \Seen on the messages
#                 retrieved, a quarter of them not yet seen); the same on one mailbox of
#                 BIG_MESSAGES messages of BIG_KIB KiB.
# Each server is idle while the other one is measured. Every measurement is made REPEAT times,
# Dovecot and Postern taking turns, and the table shows the median of each.
#
# The same for both (bench/lib-dovecot.sh): the sandbox's MariaDB and its users (SHA512-CRYPT,
# verified on every login), the Maildirs at the same paths, made anew from templates before
# each server's run (so each server's first session on a mailbox builds its own uidlist and
# index, outside the clock for RETR), plain-text USER/PASS without TLS on 127.0.0.1
# (Dovecot: ssl = no, disable_plaintext_auth = no; Postern: pop3_allow_plaintext_auth = yes),
# the client, the machine; both log every login to a file.
# Not the same: Dovecot's configuration is the common guide's (passdb sql with prefetched
# userdb fields, Dovecot's defaults: no POP3 session lock, pop3_uidl_format %08Xu%08Xv, \Seen
# on RETR), started with `dovecot -c` on DC_PORT; Postern runs in the sandbox with its
# privilege separation and chroots, a session lock per mailbox (it is always on), and its
# SMTP, IMAP and delivery daemons idle.
#
#   usage: bench/pop3.sh
#   env:   LOGIN_CONNS=20 LOGIN_SECONDS=5 LOGIN_MESSAGES=10 RETR_CONNS="1 10"
#          RETR_MESSAGES=1000 BIG_MESSAGES=50 BIG_KIB=1024 TIMEOUT=10 RETR_TIMEOUT=300
#          DC_PORT=(free) REPEAT=3 DROP_CACHES=no ONLY=dovecot|postern KEEP=no
# Exit status 1 when a run failed (Postern's POP3 service missing or not answering included).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${POSTERN_BUILD:-$REPO/build}
LOAD=$BUILD/bench/pop3-load
LOGIN_CONNS=${LOGIN_CONNS:-20}
LOGIN_SECONDS=${LOGIN_SECONDS:-5}
LOGIN_MESSAGES=${LOGIN_MESSAGES:-10}
RETR_CONNS=${RETR_CONNS:-1 10}
RETR_MESSAGES=${RETR_MESSAGES:-1000}
BIG_MESSAGES=${BIG_MESSAGES:-50}
BIG_KIB=${BIG_KIB:-1024}
TIMEOUT=${TIMEOUT:-10}
RETR_TIMEOUT=${RETR_TIMEOUT:-300}
REPEAT=${REPEAT:-3}
DROP_CACHES=${DROP_CACHES:-no}
ONLY=${ONLY:-}
KEEP=${KEEP:-no}
DOMAIN=bench.test
PASS=benchpass

for f in "$BUILD/postern-master" "$BUILD/postern" "$LOAD"; do
	[ -x "$f" ] || { echo "pop3.sh: $f missing: run make bench-pop3" >&2; exit 2; }
done
NLOGIN=$((5 * LOGIN_CONNS))
NUSERS=$NLOGIN
for n in $RETR_CONNS; do [ "$n" -gt "$NUSERS" ] && NUSERS=$n; done

# shellcheck source=bench/lib-dovecot.sh
. "$REPO/bench/lib-dovecot.sh"
bench_setup pop3 dovecot-core dovecot-pop3d dovecot-mysql

# --- Postern, in the sandbox (its MariaDB serves both) -----------------------------------------
sets=(--set "pop3_process_limit=$((LOGIN_CONNS + 50))")
[ -x "$BUILD/postern-pop3" ] && sets+=(--set pop3_allow_plaintext_auth=yes)
bench_start_postern "${sets[@]}"

# --- users and mailbox templates -----------------------------------------------------------------
echo "setting up: $NUSERS users u0..u$((NUSERS - 1)), mailboxes of $LOGIN_MESSAGES and" \
	"$RETR_MESSAGES messages, $BIG_MESSAGES of $BIG_KIB KiB" >&2
for ((i = 0; i < NUSERS; i++)); do add_user "u$i"; done
add_user big
bench_skeleton u0
bench_fill "$LOGIN_MESSAGES" "$RETR_MESSAGES"

# The big messages: text lines of 76 characters (like base64 attachments), in $TPL/big.
python3 - "$TPL/big" "$VUID" "$VGID" "$BIG_MESSAGES" "$BIG_KIB" <<'PY'
import os, sys
root, uid, gid, count, kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4]), int(sys.argv[5])
os.makedirs(root)
os.chown(root, uid, gid)
os.chmod(root, 0o700)
line = b"".join(bytes([65 + (i % 26)]) for i in range(76)) + b"\n"
for i in range(count):
    head = (f"From: big{i}@outside.example\nTo: big@bench.test\nSubject: big {i}\n"
            f"Message-ID: <big.{i}@outside.example>\n\n").encode()
    body = line * (kib * 1024 // len(line))
    data = head + body
    vsize = len(data) + data.count(b"\n")   # W=: the size with CRLF line ends
    name = f"{1700000000 + i}.M{i}P1Q{i}.bench,S={len(data)},W={vsize}:2,"
    fd = os.open(os.path.join(root, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data)
    os.fchown(fd, uid, gid)
    os.close(fd)
PY

reset_big() {
	local md
	md=$(maildir_of big)
	rm -rf "$md"
	cp -a "$TPL/skel" "$md"
	cp -al "$TPL/big/." "$md/cur/"
}

# --- Dovecot: a throwaway configuration, same MariaDB, same Maildirs ----------------------------
bench_dovecot_port
if runs dovecot; then
	write_dovecot_conf pop3
	start_dovecot
fi

# --- measuring ------------------------------------------------------------------------------------
port_of() { [ "$1" = postern ] && echo "$POSTERN_POP3_PORT" || echo "$DC_PORT"; }
name_of() { [ "$1" = postern ] && echo Postern || echo Dovecot; }

# load SERVER NAME ARGS...: one pop3-load run against SERVER; its key=value line goes to
# $DIR/SERVER.NAME.out (and stderr); status of pop3-load.
load() {
	local server=$1 name=$2 rc=0
	shift 2
	echo "+ $(name_of "$server"): pop3-load $* -p $(port_of "$server")" >&2
	"$LOAD" "$@" -p "$(port_of "$server")" -w "$PASS" >"$DIR/$server.$name.out" || rc=$?
	cat "$DIR/$server.$name.out" >&2
	return $rc
}

# field SERVER NAME KEY: a value from a run's key=value line.
field() { tr ' ' '\n' <"$DIR/$1.$2.out" | sed -n "s/^$3=//p"; }

measure_login() {
	local i
	for ((i = 0; i < NLOGIN; i++)); do reset_maildir "u$i" "$LOGIN_MESSAGES"; done
	drop_caches
	load "$1" login login -U "u#@$DOMAIN" -n "$NLOGIN" -c "$LOGIN_CONNS" \
		-d "$LOGIN_SECONDS" -t "$TIMEOUT" && field "$1" login rate
}

# measure_retr SERVER CONNS: "MESSAGES/S MIB/S QUIT_MS".
measure_retr() {
	local i
	for ((i = 0; i < $2; i++)); do reset_maildir "u$i" "$RETR_MESSAGES"; done
	drop_caches
	load "$1" "retr$2" retr -U "u#@$DOMAIN" -c "$2" -x "$RETR_MESSAGES" -t "$RETR_TIMEOUT" ||
		return 1
	echo "$(field "$1" "retr$2" rate) $(field "$1" "retr$2" mib_s) $(field "$1" "retr$2" quit_ms)"
}

measure_big() {
	reset_big
	drop_caches
	load "$1" big retr -U "big@$DOMAIN" -c 1 -x "$BIG_MESSAGES" -t "$RETR_TIMEOUT" || return 1
	field "$1" big mib_s
}

# --- the runs --------------------------------------------------------------------------------------
if runs postern; then
	if [ ! -x "$BUILD/postern-pop3" ]; then
		echo "Postern: $BUILD/postern-pop3 does not exist (POP3 service not built yet);" \
			"checking what answers on its POP3 port anyway" >&2
	fi
	reset_maildir u0 0
	if ! "$LOAD" login -p "$POSTERN_POP3_PORT" -U "u0@$DOMAIN" -w "$PASS" -d 1 -t "$TIMEOUT" \
		>/dev/null 2>"$DIR/probe.err"; then
		echo "Postern: no POP3 login on port $POSTERN_POP3_PORT (timeout ${TIMEOUT}s):" \
			"$(sed -n 's/^pop3-load: [0-9]* errors, the first: //p' "$DIR/probe.err")" >&2
		echo "Postern: its runs are skipped" >&2
		postern_ok=no
		failed=yes
	fi
fi

LABELS=("logins/s ($LOGIN_CONNS conns, $LOGIN_MESSAGES msgs)")
run_pair rate measure_login
for c in $RETR_CONNS; do
	LABELS=("RETR msgs/s ($RETR_MESSAGES msgs, $c conns)" "RETR MiB/s ($RETR_MESSAGES msgs, $c conns)"
		"QUIT after them, \\Seen on 1/4 (ms)")
	KINDS=(rate rate ms)
	run_pair rate measure_retr "$c"
	unset KINDS
done
LABELS=("RETR MiB/s ($BIG_MESSAGES x $BIG_KIB KiB, 1 conn)")
run_pair rate measure_big

# --- the table --------------------------------------------------------------------------------------
bench_table "POP3: Postern against Dovecot $DC_VERSION, same MariaDB, same Maildirs, USER/PASS on loopback"
[ "$failed" = no ]
