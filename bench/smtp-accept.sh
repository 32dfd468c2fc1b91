#!/bin/bash
# bench/smtp-accept.sh: messages accepted per second over SMTP, Postern against a stock
# Postfix from Debian's packages, side by side in one run (issue 4).
#
# Both servers accept for the same virtual domain from the same MariaDB (the sandbox's),
# check the recipient against the same virtual_users table, write every message durably to
# their queue (Postfix's cleanup and Postern's queue daemon both fsync before the 250) and do
# nothing else: Postfix puts every message on hold (smtpd_end_of_data_restrictions =
# check_client_access static:HOLD, so its cleanup writes to hold/ and wakes no qmgr), and
# Postern runs without its qmgr (qmgr_enable=no: the queue only commits into incoming/), so
# neither spends CPU on delivery during the run. Postfix's smtpd is not chrooted here so it
# can reach the sandbox's MariaDB socket. Load: Postfix's smtp-source (no pipelining), MESSAGES
# messages of SIZE bytes, for 1 and for 20 concurrent sessions.
#
# This reconfigures the machine's system Postfix (/etc/postfix); it stops it afterwards.
#   usage: bench/smtp-accept.sh        (env: MESSAGES=2000 SIZE=4096 PF_PORT=10025)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${POSTERN_BUILD:-$REPO/build}
MESSAGES=${MESSAGES:-2000}
SIZE=${SIZE:-4096}
PF_PORT=${PF_PORT:-10025}
DIR=$(mktemp -d /tmp/postern-bench-smtp.XXXXXX)
chmod 755 "$DIR"
export DEBIAN_FRONTEND=noninteractive

missing=""
for p in postfix postfix-mysql; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get install -y -q $missing >/dev/null
fi

cleanup() {
	postfix stop >/dev/null 2>&1 || true
	postsuper -d ALL >/dev/null 2>&1 || true	# the run's held messages
	"$REPO/tests/sandbox" stop "$DIR" >/dev/null 2>&1 || true
	rm -rf "$DIR"
}
trap cleanup EXIT

# --- Postern, in the sandbox -----------------------------------------------------------------
POSTERN_BUILD=$BUILD "$REPO/tests/sandbox" start "$DIR" --set qmgr_enable=no >/dev/null
set -a; . "$DIR/env"; set +a
ADMIN="$BUILD/postern admin -c $POSTERN_CONF"
$ADMIN domain add bench.test >/dev/null
echo benchpass | $ADMIN user add rcpt@bench.test --password-stdin >/dev/null
DBPASS=$(sed -n 's/^password *= *//p' "$DIR/etc/sql.conf")
DBUSER=$(sed -n 's/^user *= *//p' "$DIR/etc/sql.conf")

# --- Postfix, configured the same way ---------------------------------------------------------
PF=/etc/postfix
for m in domains:"SELECT 1 FROM virtual_domains WHERE name='%s'" \
	 mailbox:"SELECT 1 FROM virtual_users WHERE email='%s'" \
	 alias:"SELECT destination FROM virtual_aliases WHERE source='%s'"; do
	cat > "$PF/bench-${m%%:*}.cf" <<X
user = $DBUSER
password = $DBPASS
hosts = unix:$POSTERN_MYSQL_SOCKET
dbname = mailserver
query = ${m#*:}
X
	chmod 640 "$PF/bench-${m%%:*}.cf"
done
[ -f "$PF/main.cf.postern-bench" ] || cp "$PF/main.cf" "$PF/main.cf.postern-bench" 2>/dev/null || true
[ -f "$PF/master.cf.postern-bench" ] || cp "$PF/master.cf" "$PF/master.cf.postern-bench"
cat > "$PF/main.cf" <<X
compatibility_level = 3.6
myhostname = peer.test
mydestination = localhost
mynetworks = 127.0.0.2/32
inet_interfaces = loopback-only
inet_protocols = ipv4
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated reject_unauth_destination
virtual_mailbox_domains = mysql:$PF/bench-domains.cf
virtual_mailbox_maps = mysql:$PF/bench-mailbox.cf
virtual_alias_maps = mysql:$PF/bench-alias.cf
virtual_transport = lmtp:unix:private/dovecot-lmtp
smtpd_forbid_bare_newline = yes
smtpd_end_of_data_restrictions = check_client_access static:HOLD
smtputf8_enable = yes
default_process_limit = 200
maillog_file = /var/log/postfix-bench.log
X
python3 - "$PF/master.cf.postern-bench" "$PF/master.cf" "$PF_PORT" <<'PY'
import re, sys
src, dst, port = sys.argv[1:4]
out = [f"127.0.0.1:{port} inet n - n - - smtpd"]
for line in open(src).read().splitlines():
    # no SMTP on 25, no delivery during the run (qmgr, pickup), no postscreen
    if re.match(r"^(smtp|submission|smtps|qmgr|pickup|postscreen|10025)\s+(inet|unix|fifo|pass)", line):
        continue
    if re.match(r"^(cleanup|rewrite|proxymap|tlsmgr|anvil|scache|postlog|bounce|defer|trace|verify|flush|smtp|relay|showq|error|retry|discard|local|virtual|lmtp)\s", line):
        line = re.sub(r"^(\S+\s+\S+\s+\S+\s+\S+\s+)y(\s)", r"\1n\2", line)
    out.append(line)
open(dst, "w").write("\n".join(out) + "\n")
PY
postfix stop >/dev/null 2>&1 || true
postsuper -d ALL >/dev/null 2>&1 || true
postfix check
postfix start >/dev/null 2>&1
for i in $(seq 50); do
	(exec 3<>/dev/tcp/127.0.0.1/$PF_PORT) 2>/dev/null && break
	sleep 0.1
done

# --- the runs -------------------------------------------------------------------------------
# rate HOST:PORT SESSIONS: messages per second for MESSAGES messages.
rate() {
	local t0 t1
	t0=$(date +%s.%N)
	smtp-source -s "$2" -m "$MESSAGES" -l "$SIZE" -f sender@outside.example \
		-t rcpt@bench.test "$1" >/dev/null
	t1=$(date +%s.%N)
	python3 -c "print(f'{$MESSAGES / ($t1 - $t0):.0f}')"
}

queued_postern() { find "$POSTERN_SPOOL/queue/incoming" -type f | wc -l; }
queued_postfix() { find /var/spool/postfix/hold /var/spool/postfix/incoming -type f | wc -l; }

printf '\nSMTP acceptance: %d messages of %d bytes per run, smtp-source, %d CPUs\n' \
	"$MESSAGES" "$SIZE" "$(nproc)"
printf '%-10s %16s %16s %8s\n' sessions "Postern msg/s" "Postfix msg/s" ratio
for s in 1 20; do
	p=$(rate "127.0.0.1:$POSTERN_SMTP_PORT" "$s")
	f=$(rate "127.0.0.1:$PF_PORT" "$s")
	printf '%-10s %16s %16s %8s\n' "$s" "$p" "$f" \
		"$(python3 -c "print(f'{$p / $f:.2f}x')")"
done
echo "queued: Postern $(queued_postern), Postfix $(queued_postfix) (expected $((2 * MESSAGES)) each)"
