# shellcheck shell=bash
# shellcheck disable=SC2034  # globals the sourcing script reads (DC_VERSION, failed, ...)
# bench/lib-dovecot.sh: what the benchmarks that run Postern against a throwaway Dovecot on
# the sandbox's MariaDB and Maildirs share (bench/imap.sh, issue 6; bench/pop3.sh, issue 7).
# Sourced, not run. The caller sets REPO BUILD DOMAIN PASS ONLY KEEP REPEAT DROP_CACHES
# first, then calls, in this order:
#
#   bench_setup NAME PACKAGE...    root and ONLY checked, the Debian packages installed if
#                                  missing, $DIR (/tmp/postern-bench-NAME.*) with $SANDBOX,
#                                  $DC (Dovecot) and $TPL (templates), the EXIT trap
#   bench_start_postern ARGS...    tests/sandbox start with ARGS (--set name=value ...);
#                                  its env exported; $ADMIN $MAILROOT $DBUSER $DBPASS $VUID
#                                  $VGID set
#   add_user NAME; maildir_of NAME; bench_skeleton (the Maildir `postern admin user add`
#   makes, as $TPL/skel); bench_fill SIZE... (the message templates);
#   reset_maildir NAME N; drop_caches
#   bench_dovecot_port; write_dovecot_conf PROTOCOL [EXTRA-LINE...]; start_dovecot
#   run_pair KIND FUNCTION ARGS... (with LABELS set; rows go to ROWS)
#   bench_table TITLE              the table of ROWS with ratios and targets
#
# The messages are Dovecot-style files (`time.M..P..Q..host,S=..,W=..:2,FLAGS`, LF line ends;
# 3 in 4 \Seen, 1 in 10 \Flagged) written straight into cur/ of a template once; before each
# server's run the mailboxes it uses are made anew from the template (message files hard
# links, everything else copied), so both servers start from the same files and neither
# reads the dovecot-uidlist or index the other one wrote.

runs() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

# shellcheck disable=SC2317  # called by the EXIT trap
bench_cleanup() {
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

bench_setup() {
	local p missing=""
	BENCH_NAME=$1
	shift
	case "$ONLY" in ""|dovecot|postern) ;; *) echo "ONLY must be dovecot or postern" >&2; exit 2 ;; esac
	[ "$(id -u)" = 0 ] || { echo "$BENCH_NAME.sh: run as root (sandbox, vmail, Dovecot)" >&2; exit 2; }
	LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
	done
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	[ -z "$missing" ] || apt-get install -y -q $missing >/dev/null
	DIR=$(mktemp -d "/tmp/postern-bench-$BENCH_NAME.XXXXXX")
	chmod 755 "$DIR"
	SANDBOX=$DIR/sandbox
	DC=$DIR/dovecot
	TPL=$DIR/templates
	DC_MASTER_PID=
	ROWS=()
	failed=no
	postern_ok=yes
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# --- Postern, in the sandbox (its MariaDB serves both) -----------------------------------------
bench_start_postern() {
	POSTERN_BUILD=$BUILD "$REPO/tests/sandbox" start "$SANDBOX" "$@" >/dev/null
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
	$ADMIN domain add "$DOMAIN" >/dev/null
}

# --- users and mailbox templates -----------------------------------------------------------------
add_user() { echo "$PASS" | $ADMIN user add "$1@$DOMAIN" --password-stdin >/dev/null; }
maildir_of() { echo "$MAILROOT/$DOMAIN/$1/Maildir"; }

# The skeleton: a Maildir as `postern admin user add` makes it (folders, subscriptions), taken
# from user $1.
bench_skeleton() {
	mkdir -p "$TPL"
	cp -a "$(maildir_of "$1")" "$TPL/skel"
}

# bench_fill N...: $TPL/all holds max(N) messages, $TPL/N hard links to the first N.
bench_fill() {
	local t0
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
	python3 "$DIR/fill.py" "$TPL" "$VUID" "$VGID" "$@"
	echo "templates written in $(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')") s" >&2
}

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
# Dovecot's port: a free one unless given, chosen once the sandbox listens on its own.
bench_dovecot_port() {
	DC_PORT=${DC_PORT:-$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
	DC_VERSION=$(dovecot --version | cut -d' ' -f1)
}

# write_dovecot_conf PROTOCOL [LINE...]: the common guide's configuration (passdb sql with
# the userdb fields prefetched, then userdb sql; Dovecot's defaults for everything else),
# PROTOCOL's login service on 127.0.0.1:$DC_PORT, and LINEs appended.
write_dovecot_conf() {
	local proto=$1 home="'$MAILROOT/%d/%n'"
	shift
	mkdir -p "$DC/run" "$DC/state"
	cat > "$DC/dovecot.conf" <<-X
	# written by postern bench/$BENCH_NAME.sh; nothing of /etc/dovecot is read
	protocols = $proto
	listen = 127.0.0.1
	base_dir = $DC/run
	state_dir = $DC/state
	instance_name = postern-bench-$BENCH_NAME
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
	service $proto-login {
	  inet_listener $proto {
	    address = 127.0.0.1
	    port = $DC_PORT
	  }
	  inet_listener ${proto}s {
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
	[ $# -eq 0 ] || printf '%s\n' "$@" >> "$DC/dovecot.conf"
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
	echo "$BENCH_NAME.sh: Dovecot did not start listening on $DC_PORT:" >&2
	tail -n 20 "$DC/dovecot.log" >&2 || true
	exit 1
}

# --- rounds and the table ---------------------------------------------------------------------
# median V...: the median of numbers, or "error" if one of them is not a number.
median() {
	python3 -c 'import statistics, sys
try:
    m = statistics.median(float(v) for v in sys.argv[1:])
    print(round(m) if m >= 100 else round(m, 1))
except ValueError:
    print("error")' "$@"
}

# column_of K: the K-th (from 0) word of each line ("error" lines give "error").
column_of() { awk -v k="$1" '{ print ($1 == "error" ? "error" : $(k + 1)) }'; }

# run_pair KIND FUNCTION ARGS...: one row per entry of the array LABELS: FUNCTION SERVER ARGS
# prints one number per label; Dovecot and Postern take turns, REPEAT rounds each, and each
# row gets the median of its rounds (rate: higher is better; ms, kib: lower is better). The
# array KINDS, if set, gives a label a kind of its own.
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
		ROWS+=("${LABELS[$k]}|${KINDS[$k]:-$kind}|$p|$d")
	done
}

numeric() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }

# bench_table TITLE: ROWS ("label|kind|postern|dovecot") as a table; targets: Postern at 1.5x
# Dovecot's throughput (rates, times) and no more memory (kib).
bench_table() {
	local row label kind p d ratio target met=yes
	printf '\n%s, %d CPUs\n' "$1" "$(nproc)"
	printf 'load average when the run began: %s (other work on the machine makes figures noisy)\n' \
		"$LOADAVG"
	printf 'ratio = how many times better Postern is (rates: Postern/Dovecot; times, memory: Dovecot/Postern)\n'
	printf '%-44s %10s %10s %8s %7s\n' metric Postern Dovecot ratio target
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
}
