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
export DEBIAN_FRONTEND=noninteractive

case "$ONLY" in ""|dovecot|postern) ;; *) echo "ONLY must be dovecot or postern" >&2; exit 2 ;; esac
runs() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
[ "$(id -u)" = 0 ] || { echo "imap.sh: run as root (sandbox, vmail, Dovecot)" >&2; exit 2; }
for f in "$BUILD/postern-master" "$BUILD/postern" "$LOAD"; do
	[ -x "$f" ] || { echo "imap.sh: $f missing: run make bench-imap" >&2; exit 2; }
done
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
NUSERS=$IDLE_CONNS
for n in "$LOGIN_CONNS" $APPEND_CONNS; do [ "$n" -gt "$NUSERS" ] && NUSERS=$n; done

missing=""
for p in dovecot-core dovecot-imapd dovecot-mysql; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
# shellcheck disable=SC2086
[ -z "$missing" ] || apt-get install -y -q $missing >/dev/null

DIR=$(mktemp -d /tmp/postern-bench-imap.XXXXXX)
chmod 755 "$DIR"
SANDBOX=$DIR/sandbox
DC=$DIR/dovecot
TPL=$DIR/templates
DC_MASTER_PID=

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	set +e
	exec 3>&- 2>/dev/null
	if [ -n "$DC_MASTER_PID" ]; then
		dovecot -c "$DC/dovecot.conf" stop >/dev/null 2>&1
		for _ in $(seq 100); do kill -0 "$DC_MASTER_PID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$DC_MASTER_PID" 2>/dev/null && kill -KILL "$DC_MASTER_PID"
	fi
	"$REPO/tests/sandbox" stop "$SANDBOX" >/dev/null 2>&1
	if [ "$KEEP" = yes ]; then echo "kept $DIR" >&2; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Postern, in the sandbox (its MariaDB serves both) -----------------------------------------
# imap_allow_plaintext_auth only exists once the IMAP service does; an older build would
# refuse the unknown parameter, and its IMAP port is then found not to speak IMAP below.
sets=(--set "imap_process_limit=$((IDLE_CONNS + LOGIN_CONNS + 50))")
[ -x "$BUILD/postern-imap" ] && sets+=(--set imap_allow_plaintext_auth=yes)
POSTERN_BUILD=$BUILD "$REPO/tests/sandbox" start "$SANDBOX" "${sets[@]}" >/dev/null
set -a
# shellcheck disable=SC1091
. "$SANDBOX/env"
set +a
ADMIN="$BUILD/postern admin -c $POSTERN_CONF"
MAILROOT=$POSTERN_MAIL_ROOT
DBPASS=$(sed -n 's/^password *= *//p' "$SANDBOX/etc/sql.conf")
DBUSER=$(sed -n 's/^user *= *//p' "$SANDBOX/etc/sql.conf")
VUID=$(id -u vmail)
VGID=$(id -g vmail)

# --- users and mailbox templates -----------------------------------------------------------------
echo "setting up: $NUSERS users u0..u$((NUSERS - 1)), mailboxes of $SIZES messages" >&2
$ADMIN domain add "$DOMAIN" >/dev/null
add_user() { echo "$PASS" | $ADMIN user add "$1@$DOMAIN" --password-stdin >/dev/null; }
for ((i = 0; i < NUSERS; i++)); do add_user "u$i"; done
for n in $SIZES; do add_user "m$n"; done
maildir_of() { echo "$MAILROOT/$DOMAIN/$1/Maildir"; }
# The skeleton: a Maildir as `postern admin user add` makes it (folders, subscriptions).
mkdir -p "$TPL"
cp -a "$(maildir_of u0)" "$TPL/skel"

# fill.py DIR UID GID N...: DIR/all holds max(N) messages, DIR/N hard links to the first N.
cat > "$DIR/fill.py" <<'PY'
import os, sys
root, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sizes = sorted({int(n) for n in sys.argv[4:]})
for d in ["all"] + [str(n) for n in sizes]:    # like cur/: `cp -a` copies the directory's
    os.makedirs(os.path.join(root, d), exist_ok=True)   # owner and mode onto it
    os.chown(os.path.join(root, d), uid, gid)
    os.chmod(os.path.join(root, d), 0o700)
words = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua").split()
for i in range(sizes[-1]):
    lines = [f"Return-Path: <sender{i % 97}@outside.example>",
             f"Delivered-To: user@bench.test",
             f"From: Sender {i % 97} <sender{i % 97}@outside.example>",
             "To: user@bench.test",
             f"Subject: message {i} {' '.join(words[i % 7:i % 7 + 4])}",
             f"Date: Mon, {1 + i % 28} Jan 2024 {i % 24:02d}:{i % 60:02d}:00 +0000",
             f"Message-ID: <bench.{i}@outside.example>",
             "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=us-ascii",
             ""]
    for k in range(3 + (i * 7919) % 40):
        lines.append(" ".join(words[(i + k + j) % len(words)] for j in range(11)))
    data = ("\n".join(lines) + "\n").encode()
    vsize = len(data) + data.count(b"\n")    # W=: the size with CRLF line ends
    flags = ("F" if i % 10 == 0 else "") + ("S" if i % 4 else "")
    name = (f"{1700000000 + i // 8}.M{(i * 1237) % 1000000}P{4000 + i % 3000}Q{i}.bench,"
            f"S={len(data)},W={vsize}:2,{flags}")
    path = os.path.join(root, "all", name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data)
    os.fchown(fd, uid, gid)
    os.close(fd)
    for n in sizes:
        if i < n:
            os.link(path, os.path.join(root, str(n), name))
PY
t0=$(date +%s.%N)
# shellcheck disable=SC2086
python3 "$DIR/fill.py" "$TPL" "$VUID" "$VGID" $SIZES "$IDLE_MESSAGES"
echo "templates written in $(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')") s" >&2

# reset_maildir USER N: USER's Maildir anew: the skeleton and N messages of the template in
# cur/ (N = 0: empty), owned by vmail.
reset_maildir() {
	local md
	md=$(maildir_of "$1")
	rm -rf "$md"
	cp -a "$TPL/skel" "$md"
	[ "$2" -eq 0 ] || cp -al "$TPL/$2/." "$md/cur/"
}

drop_caches() {
	if [ "$DROP_CACHES" = yes ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
}

# --- Dovecot: a throwaway configuration, same MariaDB, same Maildirs ----------------------------
write_dovecot_conf() {
	mkdir -p "$DC/run" "$DC/state"
	cat > "$DC/dovecot.conf" <<-X
	# written by postern bench/imap.sh; nothing of /etc/dovecot is read
	protocols = imap
	listen = 127.0.0.1
	base_dir = $DC/run
	state_dir = $DC/state
	instance_name = postern-bench-imap
	log_path = $DC/dovecot.log
	ssl = no
	disable_plaintext_auth = no
	auth_mechanisms = plain login
	mail_location = maildir:$MAILROOT/%d/%n/Maildir
	first_valid_uid = $VUID
	last_valid_uid = $VUID
	passdb {
	  driver = sql
	  args = $DC/dovecot-sql.conf.ext
	}
	userdb {
	  driver = prefetch
	}
	userdb {
	  driver = sql
	  args = $DC/dovecot-sql.conf.ext
	}
	service imap-login {
	  inet_listener imap {
	    address = 127.0.0.1
	    port = $DC_PORT
	  }
	  inet_listener imaps {
	    port = 0
	  }
	}
	service auth-worker {
	  user = vmail
	}
	namespace inbox {
	  inbox = yes
	}
	X
	local home="'$MAILROOT/%d/%n'"
	cat > "$DC/dovecot-sql.conf.ext" <<-X
	driver = mysql
	connect = host=$POSTERN_MYSQL_SOCKET dbname=$POSTERN_DB user=$DBUSER password=$DBPASS
	default_pass_scheme = SHA512-CRYPT
	password_query = SELECT email AS user, password, $home AS userdb_home, \\
	  $VUID AS userdb_uid, $VGID AS userdb_gid FROM virtual_users WHERE email = '%u'
	user_query = SELECT $home AS home, $VUID AS uid, $VGID AS gid \\
	  FROM virtual_users WHERE email = '%u'
	iterate_query = SELECT email AS user FROM virtual_users
	X
	chown vmail:dovecot "$DC/dovecot-sql.conf.ext"
	chmod 640 "$DC/dovecot-sql.conf.ext"
}

start_dovecot() {
	doveconf -c "$DC/dovecot.conf" -n >/dev/null
	dovecot -c "$DC/dovecot.conf"
	for _ in $(seq 100); do
		DC_MASTER_PID=$(cat "$DC/run/master.pid" 2>/dev/null || true)
		[ -n "$DC_MASTER_PID" ] && (exec 3<>"/dev/tcp/127.0.0.1/$DC_PORT") 2>/dev/null && return
		sleep 0.1
	done
	echo "imap.sh: Dovecot did not start listening on $DC_PORT:" >&2
	tail -n 20 "$DC/dovecot.log" >&2 || true
	exit 1
}

# Dovecot's port: a free one unless given, chosen once the sandbox listens on its own.
DC_PORT=${DC_PORT:-$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
if runs dovecot; then
	write_dovecot_conf
	start_dovecot
fi
DC_VERSION=$(dovecot --version | cut -d' ' -f1)

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
ROWS=()
failed=no
postern_ok=yes
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

# median V...: the median of numbers, or "error" if one of them is not a number.
median() {
	python3 -c 'import statistics, sys
try:
    m = statistics.median(float(v) for v in sys.argv[1:])
    print(round(m) if m >= 100 else round(m, 1))
except ValueError:
    print("error")' "$@"
}

# run_pair KIND FUNCTION ARGS...: one row per entry of the array LABELS: FUNCTION SERVER ARGS
# prints one number per label; Dovecot and Postern take turns, REPEAT rounds each, and each
# row gets the median of its rounds (rate: higher is better; ms, kib: lower is better).
run_pair() {
	local kind=$1 fn=$2 r k out dv=() pv=() d p
	shift 2
	for ((r = 0; r < REPEAT; r++)); do
		if runs dovecot; then
			out=$($fn dovecot "$@") || { out=error; failed=yes; }
			dv+=("$out")
		fi
		if runs postern && [ "$postern_ok" = yes ]; then
			out=$($fn postern "$@") || { out=error; failed=yes; postern_ok=no; }
			pv+=("$out")
		fi
	done
	for k in "${!LABELS[@]}"; do
		d=-; p=-
		# shellcheck disable=SC2046  # one word per round
		[ ${#dv[@]} -eq 0 ] || d=$(median $(printf '%s\n' "${dv[@]}" | column_of "$k"))
		# shellcheck disable=SC2046
		[ ${#pv[@]} -eq 0 ] || p=$(median $(printf '%s\n' "${pv[@]}" | column_of "$k"))
		runs postern && [ ${#pv[@]} -eq 0 ] && p=skipped
		ROWS+=("${LABELS[$k]}|$kind|$p|$d")
	done
}

# column_of K: the K-th (from 0) word of each line ("error" lines give "error").
column_of() { awk -v k="$1" '{ print ($1 == "error" ? "error" : $(k + 1)) }'; }

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
numeric() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
printf '\nIMAP: Postern against Dovecot %s, same MariaDB, same Maildirs, plain LOGIN on loopback, %d CPUs\n' \
	"$DC_VERSION" "$(nproc)"
printf 'load average when the run began: %s (other work on the machine makes figures noisy)\n' \
	"$LOADAVG"
printf 'ratio = how many times better Postern is (rates: Postern/Dovecot; times, memory: Dovecot/Postern)\n'
printf '%-44s %10s %10s %8s %7s\n' metric Postern Dovecot ratio target
met=yes
for row in "${ROWS[@]}"; do
	IFS='|' read -r label kind p d <<<"$row"
	ratio=- target=">=1.5"
	[ "$kind" = kib ] && target=">=1.0"
	if numeric "$p" && numeric "$d"; then
		ratio=$(python3 -c "p, d = $p, $d; r = p / d if '$kind' == 'rate' else d / p; print(f'{r:.2f}x')")
		python3 -c "import sys; sys.exit(0 if ${ratio%x} >= ${target#>=} else 1)" || met=no
	else
		met=no
	fi
	printf '%-44s %10s %10s %8s %7s\n' "$label" "$p" "$d" "$ratio" "$target"
done
if [ -z "$ONLY" ]; then
	echo "targets (Postern >= 1.5x Dovecot's throughput, <= its memory): $([ $met = yes ] && echo met || echo NOT met)"
fi
echo "logs: Dovecot $DC/dovecot.log, Postern $POSTERN_LOG (removed at exit unless KEEP=yes)"
[ "$failed" = no ]
