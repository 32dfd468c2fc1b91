#!/bin/bash
# bench/deliver.sh: end-to-end delivery, messages per second from the first SMTP connection
# until the last message is in the recipient's Maildir new/, Postern against a stock Postfix
# from Debian's packages, side by side in one run (issue 5; target: Postern >= 1.5x Postfix).
#
# Load: Postfix's smtp-source (no pipelining), MESSAGES messages of SIZE bytes to one virtual
# user, for each session count in SESSIONS. The clock starts when smtp-source is started and
# stops when new/ holds all MESSAGES new files (counted every 50 ms by one small poller,
# the same for both servers). Each server is idle while the other one is measured: Postfix
# runs first in every row, and once Postern times out its later runs are skipped.
#
# The same for both:
#   - the database: the sandbox's private MariaDB, the same virtual_domains/virtual_users/
#     virtual_aliases rows, the recipient validated at RCPT time against virtual_users;
#   - the recipient, the message (smtp-source's), the machine, the client and the poller;
#   - durability, each as it normally is, nothing tuned: the queue file is fsync'ed before
#     the 250 (Postfix's cleanup; Postern's queue daemon, which also fsyncs the queue
#     directory), and the Maildir file is fsync'ed in tmp/ before it appears in new/
#     (Postfix's virtual(8) then link()s it into new/ and does not fsync new/; Postern's
#     virtual renames it and fsyncs new/, so Postern does one fsync more per message);
#   - both log every message to a file (Postfix through postlogd, maillog_file).
# Not the same:
#   - Postfix delivers with its own virtual(8) (no Dovecot, no LMTP), mailboxes under a
#     temporary virtual_mailbox_base, uid/gid of vmail; Postern with postern-virtual under
#     the sandbox's mail root (with the Maildir++ folders `postern admin user add` makes);
#   - Postfix's mynetworks is 127.0.0.0/8, so the client is a trusted network there; for
#     Postern 127.0.0.1 is an outside client (its mynetworks is 127.0.0.2/32);
#   - Postfix runs unchrooted (its daemons must reach the MariaDB socket under /tmp);
#     Postern runs with its normal privilege separation and chroots;
#   - Postern's sandbox also runs its IMAP/POP3/submission listeners, idle.
#
# This reconfigures the machine's system Postfix (/etc/postfix, main.cf and master.cf written
# from scratch) and deletes everything in its queue; on exit, also on failure, it stops
# Postfix, empties its queue again and puts the previous main.cf and master.cf back (saved
# as *.postern-deliver until then, so a killed run is repaired by the next one).
#   usage: bench/deliver.sh
#   env:   MESSAGES=2000 SIZE=4096 SESSIONS="20 1" TIMEOUT=120 PF_PORT=10026
#          ONLY=postfix|postern (measure one server only)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${POSTERN_BUILD:-$REPO/build}
MESSAGES=${MESSAGES:-2000}
SIZE=${SIZE:-4096}
SESSIONS=${SESSIONS:-20 1}
TIMEOUT=${TIMEOUT:-120}
PF_PORT=${PF_PORT:-10026}
ONLY=${ONLY:-}
RCPT=rcpt@bench.test
PF=/etc/postfix
PF_LOG=/var/log/postfix-deliver-bench.log
DIR=$(mktemp -d /tmp/postern-bench-deliver.XXXXXX)
chmod 755 "$DIR"
SANDBOX=$DIR/sandbox
PF_BASE=$DIR/postfix-vhosts
export DEBIAN_FRONTEND=noninteractive

case "$ONLY" in ""|postfix|postern) ;; *) echo "ONLY must be postfix or postern" >&2; exit 2 ;; esac
runs() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

missing=""
for p in postfix postfix-mysql; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get install -y -q $missing >/dev/null
fi

# --- Postfix configuration: saved before, restored after -------------------------------------
save_postfix_conf() {
	local f
	for f in main.cf master.cf; do
		[ -e "$PF/$f.postern-deliver" ] || [ -e "$PF/$f.postern-deliver-absent" ] && continue
		if [ -e "$PF/$f" ]; then
			cp -p "$PF/$f" "$PF/$f.postern-deliver"
		else
			touch "$PF/$f.postern-deliver-absent"
		fi
	done
}

restore_postfix_conf() {
	local f
	for f in main.cf master.cf; do
		if [ -e "$PF/$f.postern-deliver" ]; then
			mv -f "$PF/$f.postern-deliver" "$PF/$f"
		elif [ -e "$PF/$f.postern-deliver-absent" ]; then
			rm -f "$PF/$f" "$PF/$f.postern-deliver-absent"
		fi
	done
	rm -f "$PF"/deliver-bench-*.cf
}

PF_TOUCHED=no
cleanup() {
	set +e
	if [ "$PF_TOUCHED" = yes ]; then
		postfix stop >/dev/null 2>&1
		postsuper -d ALL >/dev/null 2>&1
	fi
	restore_postfix_conf
	"$REPO/tests/sandbox" stop "$SANDBOX" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Postern, in the sandbox (its MariaDB serves both) -----------------------------------------
POSTERN_BUILD=$BUILD "$REPO/tests/sandbox" start "$SANDBOX" \
	--set qmgr_enable=yes --set virtual_enable=yes --set local_enable=yes \
	--set smtp_agent_enable=yes >/dev/null
set -a; . "$SANDBOX/env"; set +a
ADMIN="$BUILD/postern admin -c $POSTERN_CONF"
$ADMIN domain add bench.test >/dev/null
added=$(echo benchpass | $ADMIN user add "$RCPT" --password-stdin)
PN_NEW=$(printf '%s\n' "$added" | sed -n 's/.*; mailbox //p')
PN_NEW=${PN_NEW:-$POSTERN_MAIL_ROOT/bench.test/rcpt/Maildir}/new
DBPASS=$(sed -n 's/^password *= *//p' "$SANDBOX/etc/sql.conf")
DBUSER=$(sed -n 's/^user *= *//p' "$SANDBOX/etc/sql.conf")
VUID=$(id -u vmail)
VGID=$(id -g vmail)

# --- Postfix: virtual(8) to Maildir, same MariaDB ---------------------------------------------
write_postfix_maps() {
	local m
	for m in domains:"SELECT 1 FROM virtual_domains WHERE name='%s'" \
		 mailbox:"SELECT '%d/%u/Maildir/' FROM virtual_users WHERE email='%s'" \
		 alias:"SELECT destination FROM virtual_aliases WHERE source='%s'"; do
		cat > "$PF/deliver-bench-${m%%:*}.cf" <<-X
		user = $DBUSER
		password = $DBPASS
		hosts = unix:$POSTERN_MYSQL_SOCKET
		dbname = $POSTERN_DB
		query = ${m#*:}
		X
		chmod 640 "$PF/deliver-bench-${m%%:*}.cf"
		chgrp postfix "$PF/deliver-bench-${m%%:*}.cf"
	done
}

write_postfix_main() {
	cat > "$PF/main.cf" <<-X
	# written by postern bench/deliver.sh; the previous file is main.cf.postern-deliver
	compatibility_level = 3.6
	myhostname = peer.test
	mydestination = localhost
	mynetworks = 127.0.0.0/8
	inet_interfaces = loopback-only
	inet_protocols = ipv4
	alias_maps =
	alias_database =
	smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated reject_unauth_destination
	virtual_mailbox_domains = mysql:$PF/deliver-bench-domains.cf
	virtual_mailbox_maps = mysql:$PF/deliver-bench-mailbox.cf
	virtual_alias_maps = mysql:$PF/deliver-bench-alias.cf
	virtual_transport = virtual
	virtual_mailbox_base = $PF_BASE
	virtual_uid_maps = static:$VUID
	virtual_gid_maps = static:$VGID
	virtual_minimum_uid = $VUID
	smtpd_forbid_bare_newline = yes
	smtputf8_enable = yes
	default_process_limit = 200
	maillog_file = $PF_LOG
	X
}

# Debian's services, nothing chrooted, SMTP only on the benchmark port.
write_postfix_master() {
	cat > "$PF/master.cf" <<-X
	# written by postern bench/deliver.sh; the previous file is master.cf.postern-deliver
	127.0.0.1:$PF_PORT inet n - n - - smtpd
	pickup     unix  n - n 60    1 pickup
	cleanup    unix  n - n -     0 cleanup
	qmgr       unix  n - n 300   1 qmgr
	tlsmgr     unix  - - n 1000? 1 tlsmgr
	rewrite    unix  - - n -     - trivial-rewrite
	bounce     unix  - - n -     0 bounce
	defer      unix  - - n -     0 bounce
	trace      unix  - - n -     0 bounce
	verify     unix  - - n -     1 verify
	flush      unix  n - n 1000? 0 flush
	proxymap   unix  - - n -     - proxymap
	proxywrite unix  - - n -     1 proxymap
	smtp       unix  - - n -     - smtp
	relay      unix  - - n -     - smtp
	showq      unix  n - n -     - showq
	error      unix  - - n -     - error
	retry      unix  - - n -     - error
	discard    unix  - - n -     - discard
	local      unix  - n n -     - local
	virtual    unix  - n n -     - virtual
	lmtp       unix  - - n -     - lmtp
	anvil      unix  - - n -     1 anvil
	scache     unix  - - n -     1 scache
	postlog    unix-dgram n - n - 1 postlogd
	X
}

PF_NEW=$PF_BASE/bench.test/rcpt/Maildir/new
if runs postfix; then
	PF_TOUCHED=yes
	postfix stop >/dev/null 2>&1 || true
	save_postfix_conf
	write_postfix_maps
	write_postfix_main
	write_postfix_master
	postsuper -d ALL >/dev/null 2>&1 || true
	install -d -o vmail -g vmail -m 700 "$PF_BASE" "$PF_BASE/bench.test" \
		"$PF_BASE/bench.test/rcpt" "$PF_BASE/bench.test/rcpt/Maildir"
	install -d -o vmail -g vmail -m 700 "$PF_NEW" "$PF_NEW/../cur" "$PF_NEW/../tmp"
	: > "$PF_LOG"
	postfix check
	postfix start >/dev/null 2>&1
	for i in $(seq 50); do
		(exec 3<>/dev/tcp/127.0.0.1/$PF_PORT) 2>/dev/null && break
		sleep 0.1
	done
fi

# --- measuring ----------------------------------------------------------------------------------
# measure.py NEWDIR TIMEOUT MESSAGES -- smtp-source ARGS...: runs smtp-source, counts the files
# in NEWDIR every 50 ms until MESSAGES more than at the start are there or TIMEOUT seconds have
# passed. Prints "ok|timeout|error DELIVERED SECONDS SEND_SECONDS".
cat > "$DIR/measure.py" <<'PY'
import os, subprocess, sys, time
newdir, timeout, want, cmd = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[5:]
count = lambda: len(os.listdir(newdir))
base = count()
t0 = time.monotonic()
src = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
sent, status = None, "timeout"
while True:
    done = count() - base
    now = time.monotonic() - t0
    if sent is None and src.poll() is not None:
        sent = now
        if src.returncode != 0:
            status = "error"
            break
    if done >= want:
        status = "ok"
        break
    if now >= timeout:
        break
    time.sleep(0.05)
if src.poll() is None:
    src.kill()
    src.wait()
print(status, count() - base, f"{now:.3f}", f"{sent if sent is not None else now:.3f}")
PY

# queue_files SERVER: files still in that server's queue.
queue_files() {
	case $1 in
	postfix) find /var/spool/postfix/incoming /var/spool/postfix/active \
			/var/spool/postfix/deferred -type f 2>/dev/null | wc -l ;;
	postern) find "$POSTERN_SPOOL/queue" -type f 2>/dev/null | wc -l ;;
	esac
}

# settle SERVER: wait (at most 10 s) until its queue is empty, so the next run starts idle.
settle() {
	local i
	for i in $(seq 100); do
		[ "$(queue_files "$1")" -eq 0 ] && return 0
		sleep 0.1
	done
}

# rate SERVER PORT NEWDIR SESSIONS: msg/s, or "timeout"/"error" with a line on stderr.
rate() {
	local server=$1 name status done secs sent
	name=$( [ "$server" = postern ] && echo Postern || echo Postfix )
	read -r status done secs sent < <(python3 "$DIR/measure.py" "$3" "$TIMEOUT" "$MESSAGES" -- \
		smtp-source -s "$4" -m "$MESSAGES" -l "$SIZE" -f sender@outside.example \
		-t "$RCPT" "127.0.0.1:$2")
	case $status in
	ok)	settle "$server"
		python3 -c "print(f'{$MESSAGES / $secs:.0f}')" ;;
	timeout)
		echo "$name: timed out, $done of $MESSAGES delivered ($4 sessions, sent in ${sent}s," \
			"$(queue_files "$server") queue files left)" >&2
		echo timeout ;;
	*)	echo "$name: smtp-source failed after ${sent}s, $done of $MESSAGES delivered" >&2
		echo error ;;
	esac
}

numeric() { [[ $1 =~ ^[0-9]+$ ]]; }

printf '\nEnd-to-end delivery: %d messages of %d bytes per run, smtp-source in, Maildir new/ out, %d CPUs\n' \
	"$MESSAGES" "$SIZE" "$(nproc)"
printf '%-10s %16s %16s %8s\n' sessions "Postern msg/s" "Postfix msg/s" ratio
postern_ok=yes
failed=no
for s in $SESSIONS; do
	f=-; p=-
	if runs postfix; then f=$(rate postfix "$PF_PORT" "$PF_NEW" "$s"); fi
	if runs postern; then
		if [ "$postern_ok" = yes ]; then
			p=$(rate postern "$POSTERN_SMTP_PORT" "$PN_NEW" "$s")
			numeric "$p" || postern_ok=no
		else
			p=skipped
		fi
	fi
	for x in "$p" "$f"; do [ "$x" = timeout ] || [ "$x" = error ] && failed=yes; done
	ratio=-
	if numeric "$p" && numeric "$f"; then ratio=$(python3 -c "print(f'{$p / $f:.2f}x')"); fi
	printf '%-10s %16s %16s %8s\n' "$s" "$p" "$f" "$ratio"
done
count_new() { [ -d "$1" ] && find "$1" -maxdepth 1 -type f | wc -l || echo 0; }
echo "in new/: Postern $(count_new "$PN_NEW"), Postfix $(count_new "$PF_NEW");" \
	"Postfix log: $PF_LOG"
[ "$failed" = no ]   # a run that timed out or failed makes the benchmark fail
