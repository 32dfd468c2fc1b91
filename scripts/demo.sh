#!/bin/sh
# demo.sh: start a whole Postern on loopback in /var/tmp/postern-demo (through tests/sandbox,
# the one way anything starts a system), add a demo domain and user, and say how to connect.
# `make demo` runs it after installing the dependencies and building. Run it again to restart
# the demo from a clean state; stop it with: tests/sandbox stop /var/tmp/postern-demo
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
SANDBOX="$REPO/tests/sandbox"
DIR=/var/tmp/postern-demo
DOMAIN=demo.test
LOGIN=demo@demo.test
PASSWORD=demo

# An old demo is stopped first, so the new one gets a fresh master and fresh ports.
"$SANDBOX" stop "$DIR" >/dev/null
"$SANDBOX" start "$DIR"
. "$DIR/env"

# The administrator's way: postern admin creates the domain, the user (SHA512-CRYPT hash,
# stored without Dovecot's {SCHEME} prefix so it fits the guide's varchar(106) column) and
# the user's Maildir; then a real login through authd proves the whole chain.
ADMIN="$POSTERN_BIN/postern admin -c $POSTERN_CONF"
# A restarted demo keeps its database: add what is missing, reset the password.
$ADMIN domain list | grep -qxF "$DOMAIN" || $ADMIN domain add "$DOMAIN" >/dev/null
if $ADMIN user list "$DOMAIN" | grep -qxF "$LOGIN"; then
	printf '%s\n' "$PASSWORD" | $ADMIN user passwd "$LOGIN" --password-stdin >/dev/null
else
	printf '%s\n' "$PASSWORD" | $ADMIN user add "$LOGIN" --password-stdin >/dev/null
fi
printf '%s\n' "$PASSWORD" | $ADMIN auth test "$LOGIN" --password-stdin

# Prove the mail path: submission with STARTTLS and AUTH, queue, qmgr, virtual, Maildir.
MAILDIR="$POSTERN_MAIL_ROOT/$DOMAIN/${LOGIN%@*}/Maildir"
/usr/bin/python3 - "$POSTERN_SUBMISSION_PORT" "$POSTERN_CA" "$LOGIN" "$PASSWORD" <<'PY'
import smtplib, ssl, sys
port, ca, login, password = sys.argv[1:5]
with smtplib.SMTP("127.0.0.1", int(port), timeout=30) as s:
    s.starttls(context=ssl.create_default_context(cafile=ca))
    s.login(login, password)
    s.sendmail(login, [login], f"From: {login}\r\nTo: {login}\r\nSubject: Welcome to "
               "Postern\r\n\r\nThis message went through submission, the queue, qmgr and "
               "the virtual agent.\r\n".encode())
PY
for _ in $(seq 50); do
	DELIVERED=$(ls -t "$MAILDIR/new" 2>/dev/null | head -1)
	[ -n "$DELIVERED" ] && break
	sleep 0.1
done
echo "test message delivered: $MAILDIR/new/${DELIVERED:-(not yet: see $POSTERN_LOG)}"

# Which program answers the IMAP port? Until the smtpd/imapd issues land it is the built-in
# test service, and a mail client cannot log in yet; say so instead of pretending.
BANNER=$(/usr/bin/python3 -c '
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
    print(s.recv(200).decode(errors="replace").strip())' "$POSTERN_IMAP_PORT" 2>/dev/null) ||
	BANNER=""

cat <<EOF

Postern demo is running in $DIR (master pid $POSTERN_MASTER_PID).

  Login:        $LOGIN   password: $PASSWORD
  IMAP:         127.0.0.1 port $POSTERN_IMAP_PORT (STARTTLS)   IMAPS: port $POSTERN_IMAPS_PORT (TLS)
  POP3:         127.0.0.1 port $POSTERN_POP3_PORT (STARTTLS)   POP3S: port $POSTERN_POP3S_PORT (TLS)
  Submission:   127.0.0.1 port $POSTERN_SUBMISSION_PORT (STARTTLS)   SMTPS: port $POSTERN_SMTPS_PORT (TLS)
  SMTP (MX):    127.0.0.1 port $POSTERN_SMTP_PORT
  Certificate:  self-signed for localhost and 127.0.0.1; the CA to trust is $POSTERN_CA
  Log:          $POSTERN_LOG
  Database:     $REPO/tests/sandbox sql $DIR
  Administer:   $ADMIN user list | alias add ... | lookup ADDRESS | auth test USER
  Stop:         $REPO/tests/sandbox stop $DIR
EOF

cat <<EOF

Send a message through submission (STARTTLS + AUTH), as a mail client would:

  swaks --server 127.0.0.1:$POSTERN_SUBMISSION_PORT --tls --tls-ca-path $POSTERN_CA \\
        --auth PLAIN --auth-user $LOGIN --auth-password $PASSWORD \\
        --from $LOGIN --to $LOGIN

It is queued durably ("250 2.0.0 Ok: queued as ID") and delivered at once into
$POSTERN_MAIL_ROOT/$DOMAIN/${LOGIN%@*}/Maildir/new/ (see $POSTERN_LOG:
"status=sent (delivered to maildir)"). The queue: $POSTERN_BIN/postern mailq -c $POSTERN_CONF
EOF

case "$BANNER" in
postern-testd*)
	cat <<EOF

IMAP and POP3 are not written yet: those listeners are served by the built-in test service
(banner: "$BANNER"), so a mail client cannot fetch mail yet. Poke at one by hand:

  openssl s_client -connect 127.0.0.1:$POSTERN_IMAPS_PORT -CAfile $POSTERN_CA -quiet

and type PING, ECHO some text, TLS or QUIT (on the clear-text ports STARTTLS works too).
EOF
	;;
esac
