"""test_pop3: Postern's POP3 (issue 7, "Done means"), pop3-login and the postern-pop3 session,
as mail clients see them.

One sandbox with delivery enabled; users are made with `postern admin user add`, mail
arrives by SMTP on port 25 (or, for exact file contents, is written straight into the
Maildir as vmail). Clients are Python's poplib where it can say what is tested, a raw line
client (Pop) for exact bytes (pipelining, STLS injection, byte-stuffing, overlong lines), and
getmail6 retrieving into a local Maildir. Dovecot's own pop3 binary (dovecot-pop3d), run on a
copy of a user's Maildir, says what UIDLs Dovecot would report. Log lines are checked
against Dovecot's shapes and with fail2ban-regex's stock dovecot filter; processes in /proc.
"""

import base64
import imaplib
import os
import pathlib
import poplib
import pwd
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import (BINDIR, CrlfClient, ProcInfo, children_of, finish_sandbox, gid_of,
                      make_world_dir, service_children, start_sandbox, tls_context, uid_of,
                      wait_until)

DOMAIN = "pop.test"
PASSWORD = "Pop-Secret-7"
IDLE_S = 4
STAMP = r"^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \S+ "
SESSION_ID = r"session=<[A-Za-z0-9+/]{16}>"
PLAINTEXT_REFUSED = ("-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) "
                     "connections.")
IN_USE = "-ERR [IN-USE] Mailbox is locked by another POP3 session."
BASE_CAPA = ["TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"]
DOVECOT_POP3 = "/usr/lib/dovecot/pop3"
LOCK_NAME = "dovecot-pop3-session.lock"


# ---- the sandbox, users and mail -----------------------------------------------------------

@pytest.fixture(scope="module")
def sb():
    for prog in ("postern-master", "postern-pop3-login", "postern-pop3"):
        if not os.access(os.path.join(BINDIR, prog), os.X_OK):
            pytest.fail(f"{BINDIR}/{prog} is missing: run `make all` first")
    box = start_sandbox("postern-pop3-", [
        "qmgr_enable=yes", f"login_idle_timeout={IDLE_S}s", "auth_failure_delay=50ms",
        "auth_failure_max_delay=200ms", "auth_failure_limit=1000"])
    try:
        admin(box, "domain", "add", DOMAIN)
    except BaseException:
        finish_sandbox(box)
        raise
    yield box
    finish_sandbox(box)


@pytest.fixture(autouse=True)
def evidence(request):
    """Print the log lines a test wrote: pytest shows them when it fails."""
    box = request.getfixturevalue("sb") if "sb" in request.fixturenames else None
    start = os.path.getsize(box.log) if box and os.path.exists(box.log) else 0
    yield
    if box:
        with open(box.log, "rb") as f:
            f.seek(start)
            print("==== log lines written during the test\n" +
                  f.read().decode(errors="replace")[-20000:])


def admin(sb, *args, password=None):
    cmd = [os.path.join(sb.bindir, "postern"), "admin", "-c", sb.conf, *args]
    res = subprocess.run(cmd, input=password, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{args}: {res.stdout}{res.stderr}"
    return res


class User:
    def __init__(self, sb, local):
        self.sb = sb
        self.addr = f"{local}@{DOMAIN}"
        self.pw = PASSWORD
        self.home = os.path.join(sb.env["POSTERN_MAIL_ROOT"], DOMAIN, local)
        self.maildir = os.path.join(self.home, "Maildir")

    def files(self):
        """{basename without flags: path} of the INBOX's messages."""
        out = {}
        for sub in ("new", "cur"):
            d = os.path.join(self.maildir, sub)
            for n in os.listdir(d):
                out[n.split(":")[0]] = os.path.join(d, n)
        return out

    def flags_of(self, path_or_base):
        base = os.path.basename(path_or_base).split(":")[0]
        path = self.files().get(base)
        assert path, f"{base} is not in the Maildir"
        return os.path.basename(path).partition(":2,")[2]


_COUNTER = [0]


def make_user(sb, prefix="p"):
    _COUNTER[0] += 1
    u = User(sb, f"{prefix}{_COUNTER[0]}")
    admin(sb, "user", "add", u.addr, "--password-stdin", password=PASSWORD + "\n")
    return u


@pytest.fixture
def user(sb):
    return make_user(sb)


def message(subject, body="Hello.\r\n"):
    mid = f"<{time.time_ns()}.{abs(hash(subject)) % 10**6}@pop.example>"
    head = (f"From: Sender <sender@example.org>\r\nTo: rcpt@{DOMAIN}\r\nSubject: {subject}\r\n"
            f"Date: Tue, 14 Nov 2023 10:20:30 +0100\r\nMessage-ID: {mid}\r\n")
    return (head + "\r\n" + body).encode(), mid


def deliver(sb, user, subject, body="Hello.\r\n"):
    """Send a message to user by SMTP; wait until it is in the Maildir; (path, Message-ID)."""
    data, mid = message(subject, body)
    with smtplib.SMTP("127.0.0.1", sb.ports["smtp"], timeout=30) as s:
        s.sendmail("someone@example.org", [user.addr], data)

    def find():
        for path in user.files().values():
            try:
                with open(path, "rb") as f:
                    if mid.encode() in f.read():
                        return path
            except FileNotFoundError:
                pass
        return None
    return wait_until(find, 30, what=f"{mid} in {user.addr}'s Maildir"), mid


def drop_file(user, data, name=None):
    """Write a message file straight into new/ as vmail (LF line ends as given)."""
    name = name or f"{int(time.time())}.M{time.time_ns() % 1000000}P{os.getpid()}.test"
    tmp = os.path.join(user.maildir, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    pw = pwd.getpwnam("vmail")
    os.chown(tmp, pw.pw_uid, pw.pw_gid)
    path = os.path.join(user.maildir, "new", name)
    os.rename(tmp, path)
    return path


def wire_form(data):
    """A file's bytes as RETR must send them: CRLF line ends and byte-stuffing, without the
    terminating line."""
    text = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    lines = text.split(b"\r\n")[:-1]
    return b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)


# ---- clients -------------------------------------------------------------------------------

class Pop(CrlfClient):
    """A POP3 client at the byte level: send exact bytes, read CRLF lines and raw blocks."""

    SERVICE = "pop3"

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.line()

    def block(self):
        """The raw bytes of a multi-line block up to and without the terminating ".\\r\\n"."""
        while True:
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return b""
            end = self.buf.find(b"\r\n.\r\n")
            if end >= 0:
                data, self.buf = self.buf[:end + 2], self.buf[end + 5:]
                return data
            assert self._fill(), f"connection closed inside a block: {self.buf[:200]!r}"

    def multi(self, text):
        """Send a command with a multi-line answer: (status line, [lines] unstuffed)."""
        status = self.cmd(text)
        if not status or not status.startswith("+OK"):
            return status, None
        lines = self.block().decode(errors="replace").split("\r\n")[:-1]
        return status, [ln[1:] if ln.startswith(".") else ln for ln in lines]

    def login(self, user, pw=PASSWORD):
        assert self.cmd(f"USER {user.addr}") == "+OK"
        return self.cmd(f"PASS {pw}")


def tls_pop(sb):
    """A client on 110 after STLS."""
    c = Pop(sb, "pop3")
    assert c.cmd("STLS") == "+OK Begin TLS negotiation now."
    c.starttls()
    return c


def logged_in(sb, user, service="pop3s"):
    c = Pop(sb, service) if service == "pop3s" else tls_pop(sb)
    assert c.login(user) == "+OK Logged in."
    return c


def poplib_ssl(sb):
    return poplib.POP3_SSL("127.0.0.1", sb.ports["pop3s"], context=tls_context(sb.ca),
                           timeout=30)


def plain_b64(user, pw, authz=""):
    return base64.b64encode(f"{authz}\0{user}\0{pw}".encode()).decode()


def log_mark(sb):
    return len(sb.log_text().splitlines())


def log_lines(sb, needle, since=0):
    return [ln for ln in sb.log_text().splitlines()[since:] if needle in ln]


def wait_log(sb, pattern, since=0, timeout=10):
    rx = re.compile(pattern)

    def found():
        return [ln for ln in sb.log_text().splitlines()[since:] if rx.search(ln)]
    return wait_until(found, timeout, interval=0.1, what=f"log line {pattern!r}")


def session_procs(sb, user):
    out = []
    for info in children_of(sb.master_pid):
        args = info.cmdline
        if args and os.path.basename(args[0]) == "postern-pop3" and \
                any(a == "-U" and b == user.addr for a, b in zip(args, args[1:])):
            out.append(info)
    return out


def no_session(sb, user):
    return wait_until(lambda: not session_procs(sb, user), 10,
                      what=f"{user.addr}'s POP3 session to end")


# ---- greeting, CAPA, TLS -------------------------------------------------------------------

def test_greeting_and_capa_before_tls(sb):
    with Pop(sb, "pop3") as c:
        assert c.greeting == "+OK Postern ready."
        status, lines = c.multi("CAPA")
        assert status == "+OK"
        # no USER, no SASL: a client that follows CAPA never sends a password in the clear
        assert lines == BASE_CAPA + ["STLS", "IMPLEMENTATION Postern"], lines
        assert c.cmd("QUIT") == "+OK Logging out"
        assert c.at_eof()
    p = poplib.POP3("127.0.0.1", sb.ports["pop3"], timeout=15)
    try:
        caps = p.capa()
        assert "STLS" in caps and "USER" not in caps and "SASL" not in caps, caps
    finally:
        p.close()


def test_stls_with_poplib_then_capa_and_login(sb, user):
    path, _ = deliver(sb, user, "over STLS")
    data = open(path, "rb").read()      # before the session moves it from new/ to cur/
    p = poplib.POP3("127.0.0.1", sb.ports["pop3"], timeout=30)
    try:
        assert p.getwelcome() == b"+OK Postern ready."
        p.stls(tls_context(sb.ca))
        caps = p.capa()
        assert caps["SASL"] == ["PLAIN", "LOGIN"] and "USER" in caps, caps
        assert "STLS" not in caps and caps["IMPLEMENTATION"] == ["Postern"], caps
        assert p.user(user.addr) == b"+OK"
        assert p.pass_(PASSWORD) == b"+OK Logged in."
        assert p.stat() == (1, len(data) + data.count(b"\n"))
        assert p.quit() == b"+OK Logging out."
    finally:
        p.close()


def test_implicit_tls_on_995(sb, user):
    with Pop(sb, "pop3s") as c:
        assert c.greeting == "+OK Postern ready."
        with open(sb.ca) as f:
            assert c.sock.getpeercert(binary_form=True) == ssl.PEM_cert_to_DER_cert(f.read())
        status, lines = c.multi("CAPA")
        assert lines == BASE_CAPA + ["USER", "SASL PLAIN LOGIN", "IMPLEMENTATION Postern"]
        assert c.cmd("STLS") == "-ERR TLS is already active."
        assert c.login(user) == "+OK Logged in."
        # after login CAPA still offers what the AUTHORIZATION state offered (RFC 2449 §5)
        assert c.multi("CAPA")[1] == lines
        assert c.cmd("QUIT") == "+OK Logging out."
    p = poplib_ssl(sb)
    try:
        p.user(user.addr)
        p.pass_(PASSWORD)
        assert p.stat() == (0, 0)
        p.quit()
    finally:
        p.close()


def test_no_password_before_tls(sb, user):
    mark = log_mark(sb)
    with Pop(sb, "pop3") as c:
        assert c.cmd(f"USER {user.addr}") == PLAINTEXT_REFUSED
        assert c.cmd(f"PASS {PASSWORD}") == PLAINTEXT_REFUSED
        assert c.cmd(f"AUTH PLAIN {plain_b64(user.addr, PASSWORD)}") == PLAINTEXT_REFUSED
        assert c.cmd("AUTH LOGIN") == PLAINTEXT_REFUSED
        assert c.multi("AUTH") == ("+OK", [])        # no mechanism may be used yet
        assert c.cmd("QUIT") == "+OK Logging out"
        assert c.at_eof()
    line = wait_log(sb, r"pop3-login: Info: Disconnected: Aborted login by logging out", mark)[0]
    assert re.match(STAMP + r"pop3-login: Info: Disconnected: Aborted login by logging out "
                    r"\(tried to use disallowed plaintext auth\): user=<>, rip=127\.0\.0\.1, "
                    r"lip=127\.0\.0\.1, " + SESSION_ID + "$", line), line


def test_stls_discards_pipelined_commands(sb, user):
    with Pop(sb, "pop3") as c:
        # One write: CAPA, USER and PASS travel in the packet of STLS and must be dropped.
        c.send(f"STLS\r\nCAPA\r\nUSER {user.addr}\r\nPASS {PASSWORD}\r\n")
        assert c.line() == "+OK Begin TLS negotiation now."
        time.sleep(0.3)         # give a buggy server time to answer in clear text
        c.sock.setblocking(False)
        try:
            early = c.sock.recv(4096)
        except BlockingIOError:
            early = b""
        c.sock.settimeout(15)
        assert early == b"", f"answered in clear text after STLS: {early!r}"
        c.starttls()
        # The first answer inside TLS is to what was sent inside TLS: USER was never seen.
        assert c.cmd(f"PASS {PASSWORD}") == "-ERR No username given."
        assert c.multi("CAPA")[0] == "+OK"
        assert c.cmd("STLS") == "-ERR TLS is already active."


# ---- authentication ------------------------------------------------------------------------

def test_wrong_password_is_refused_and_logged_like_dovecot(sb, user, tmp_path):
    mark = log_mark(sb)
    p = poplib.POP3("127.0.0.1", sb.ports["pop3"], timeout=30)
    try:
        p.stls(tls_context(sb.ca))
        p.user(user.addr)
        with pytest.raises(poplib.error_proto) as e:
            p.pass_("wrong-password")
        assert e.value.args[0] == b"-ERR [AUTH] Authentication failed."
        assert p.capa()     # still usable
    finally:
        p.close()
    line = wait_log(sb, r"pop3-login: Info: Disconnected: .*user=<" + re.escape(user.addr),
                    mark)[0]
    assert re.match(STAMP + r"pop3-login: Info: Disconnected: Connection closed \(auth failed, "
                    r"1 attempts in \d+ secs\): user=<" + re.escape(user.addr) +
                    r">, method=PLAIN, rip=127\.0\.0\.1, lip=127\.0\.0\.1, TLS, " + SESSION_ID +
                    "$", line), line
    assert log_lines(sb, f"auth: sql({user.addr},127.0.0.1): Password mismatch", mark)
    log = tmp_path / "log"
    log.write_text(line + "\n")
    res = subprocess.run(["fail2ban-regex", "--out", "ip", str(log),
                          "/etc/fail2ban/filter.d/dovecot.conf"],
                         capture_output=True, text=True, timeout=120)
    assert res.stdout.split() == ["127.0.0.1"], res.stdout + res.stderr


def test_fail2ban_dovecot_filter_reads_only_the_failures(sb, user, tmp_path):
    with tls_pop(sb) as c:
        assert c.login(user, "bad-for-fail2ban") == "-ERR [AUTH] Authentication failed."
    with Pop(sb, "pop3") as c:      # a password offered in the clear counts too
        assert c.cmd(f"USER {user.addr}") == PLAINTEXT_REFUSED
    with logged_in(sb, user) as c:  # a Login: line, and the session's lines: no match
        assert c.cmd("QUIT") == "+OK Logging out."
    wait_until(lambda: len([ln for ln in log_lines(sb, "pop3-login: Info: Disconnected")
                            if "auth failed" in ln or "plaintext" in ln]) >= 2, 10,
               what="the failure lines")
    lines = log_lines(sb, "pop3-login: ") + log_lines(sb, "pop3(")
    failures = [ln for ln in lines if "(auth failed," in ln or "disallowed plaintext" in ln]
    others = [ln for ln in lines if ln not in failures]
    assert failures and any("Info: Login: " in ln for ln in others)
    log = tmp_path / "log"
    log.write_text("\n".join(lines) + "\n")
    res = subprocess.run(["fail2ban-regex", str(log), "/etc/fail2ban/filter.d/dovecot.conf"],
                         capture_output=True, text=True, timeout=120)
    m = re.search(r"Lines: (\d+) lines, \d+ ignored, (\d+) matched, (\d+) missed", res.stdout)
    assert m, res.stdout[-3000:] + res.stderr[-2000:]
    assert int(m.group(2)) == len(failures), res.stdout[-3000:]
    assert int(m.group(3)) == len(others), res.stdout[-3000:]


def test_three_failures_end_the_connection(sb, user):
    mark = log_mark(sb)
    with Pop(sb, "pop3s") as c:
        assert c.login(user, "nope-1") == "-ERR [AUTH] Authentication failed."
        assert c.cmd(f"AUTH PLAIN {plain_b64(user.addr, 'nope-2')}") == \
            "-ERR [AUTH] Authentication failed."
        assert c.login(user, "nope-3") == "-ERR [AUTH] Authentication failed."
        assert c.at_eof()
    line = wait_log(sb, r"pop3-login: Info: Disconnected: .*\(auth failed, 3 ", mark)[0]
    assert "Too many invalid authentication attempts (auth failed, 3 attempts in " in line
    assert f"user=<{user.addr}>, method=PLAIN" in line, line


def test_auth_plain_with_initial_response_and_pipelined_commands(sb, user):
    mark = log_mark(sb)
    deliver(sb, user, "pipelined")
    with Pop(sb, "pop3s") as c:
        # AUTH and two more commands in one packet: the session gets the two.
        c.send(f"AUTH PLAIN {plain_b64(user.addr, PASSWORD)}\r\nSTAT\r\nNOOP\r\n")
        assert c.line() == "+OK Logged in."
        assert re.match(r"^\+OK 1 \d+$", c.line())
        assert c.line() == "+OK"
    line = wait_log(sb, r"pop3-login: Info: Login: user=<" + re.escape(user.addr), mark)[0]
    assert re.match(STAMP + r"pop3-login: Info: Login: user=<" + re.escape(user.addr) +
                    r">, method=PLAIN, rip=127\.0\.0\.1, lip=127\.0\.0\.1, mpid=\d+, TLS, " +
                    SESSION_ID + "$", line), line


def test_user_pass_pipelined_with_transaction_commands(sb, user):
    deliver(sb, user, "one")
    deliver(sb, user, "two")
    with tls_pop(sb) as c:
        c.send(f"USER {user.addr}\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST\r\nUIDL 2\r\nQUIT\r\n")
        assert c.line() == "+OK"
        assert c.line() == "+OK Logged in."
        assert re.match(r"^\+OK 2 \d+$", c.line())
        assert c.line() == "+OK 2 messages:"
        assert len(c.block().split(b"\r\n")) == 3
        assert re.match(r"^\+OK 2 [0-9a-f]{16}$", c.line())
        assert c.line() == "+OK Logging out."
        assert c.at_eof()


def test_auth_plain_without_initial_response_and_authzid(sb, user):
    with tls_pop(sb) as c:
        assert c.cmd("AUTH PLAIN") == "+ "
        c.send(plain_b64(user.addr, PASSWORD, authz=user.addr) + "\r\n")
        assert c.line() == "+OK Logged in."


def test_auth_login_mechanism(sb, user):
    with Pop(sb, "pop3s") as c:
        assert c.cmd("AUTH LOGIN") == "+ VXNlcm5hbWU6"               # "Username:"
        assert c.cmd(base64.b64encode(user.addr.encode()).decode()) == "+ UGFzc3dvcmQ6"
        assert c.cmd(base64.b64encode(PASSWORD.encode()).decode()) == "+OK Logged in."


def test_bare_auth_cancel_bad_base64_and_unknown_mechanism(sb, user):
    mark = log_mark(sb)
    with Pop(sb, "pop3s") as c:
        assert c.multi("AUTH") == ("+OK", ["PLAIN", "LOGIN"])     # what Outlook asks
        assert c.cmd("AUTH PLAIN") == "+ "
        assert c.cmd("*") == "-ERR Authentication aborted by client."
        assert c.cmd("AUTH PLAIN not!base64") == "-ERR Invalid base64 data in SASL response."
        assert c.cmd("AUTH CRAM-MD5") == "-ERR Unsupported authentication mechanism."
        assert c.cmd("AUTH PLAIN a b") == "-ERR Invalid arguments."
        assert c.cmd("PASS x") == "-ERR No username given."
        assert c.cmd("NOOP") == "-ERR Unknown command."     # not before login
        assert c.cmd("STAT") == "-ERR Unknown command."
        assert c.cmd("AUTH LOGIN") == "+ VXNlcm5hbWU6"     # and leave mid-exchange
    wait_log(sb, r"pop3-login: Info: Disconnected: Connection closed \(client didn't finish "
             r"SASL auth, waited 0 secs\): user=<>, method=LOGIN, rip=127\.0\.0\.1, "
             r"lip=127\.0\.0\.1, TLS, " + SESSION_ID, mark)


def test_too_many_bad_commands_end_the_connection(sb):
    with Pop(sb, "pop3s") as c:
        for i in range(9):
            assert c.cmd(f"FROB{i}") == "-ERR Unknown command."
        assert c.cmd("FROB9") == "-ERR Unknown command."
        assert c.line() == "-ERR Too many invalid commands."
        assert c.at_eof()


def test_authd_tempfail_is_sys_temp(sb, user):
    sb.stop_mysql()
    try:
        with Pop(sb, "pop3s") as c:
            assert c.login(user) == \
                "-ERR [SYS/TEMP] Temporary authentication failure. Try again later."
    finally:
        sb.start_mysql()
    wait_until(lambda: _login_works(sb, user), 20, interval=0.3, what="logins after the outage")


def _login_works(sb, user):
    with Pop(sb, "pop3s") as c:
        return c.login(user) == "+OK Logged in."


def test_idle_client_is_disconnected(sb):
    mark = log_mark(sb)
    with Pop(sb, "pop3") as c:
        t0 = time.monotonic()
        assert c.line() == "-ERR Disconnected for inactivity."
        assert IDLE_S - 0.5 <= time.monotonic() - t0 <= IDLE_S + 3
        assert c.at_eof()
    line = wait_log(sb, r"pop3-login: Info: Disconnected: Inactivity ", mark)[0]
    assert f"(no auth attempts in {IDLE_S} secs): user=<>, rip=127.0.0.1" in line, line


def test_plaintext_login_when_allowed(own_master):
    """pop3_allow_plaintext_auth = yes: USER and SASL on 110 before STLS."""
    m = own_master({"pop3_allow_plaintext_auth": "yes"})
    m.start()
    mark = log_mark(m)
    with Pop(m, "pop3") as c:
        assert c.multi("CAPA")[1] == BASE_CAPA + ["STLS", "USER", "SASL PLAIN LOGIN",
                                                  "IMPLEMENTATION Postern"]
        assert c.cmd("USER nobody@nowhere.test") == "+OK"
        assert c.cmd("PASS wrong") == "-ERR [AUTH] Authentication failed."
    line = wait_log(m, r"pop3-login: Info: Disconnected: .*nobody@nowhere", mark)[0]
    assert ", TLS," not in line and "(auth failed, 1 attempts in " in line, line


def test_session_that_cannot_start_is_sys_temp(sb):
    """master refuses the session (the home is gone): the login answers for it."""
    user = make_user(sb)
    shutil.rmtree(user.home)
    mark = log_mark(sb)
    with Pop(sb, "pop3s") as c:
        c.send(f"USER {user.addr}\r\nPASS {PASSWORD}\r\nSTAT\r\n")
        assert c.line() == "+OK"
        assert c.line() == ("-ERR [SYS/TEMP] Internal error occurred. Refer to server log for "
                            "more information.")
        assert c.at_eof()
    wait_log(sb, r"pop3: Error: session refused: user=<" + re.escape(user.addr) +
             r">, rip=127\.0\.0\.1, lip=127\.0\.0\.1: home \S+: No such file", mark)
    wait_log(sb, r"pop3-login: Error: Internal login failure: the session did not start: "
             r"user=<" + re.escape(user.addr) + ">", mark)


# ---- overlong lines ------------------------------------------------------------------------

def test_overlong_lines_before_login(sb):
    with Pop(sb, "pop3s") as c:
        # RFC 2449 allows 255 octets; we take up to 1 KiB
        assert c.cmd("X" * 300) == "-ERR Unknown command."
        assert c.cmd("Y" * 1024) == "-ERR Unknown command."
        c.send("Z" * 1025 + "\r\nCAPA\r\n")
        assert c.line() == "-ERR Input line too long."
        assert c.at_eof()
    with Pop(sb, "pop3s") as c:     # without any line end at all
        c.send("A" * 5000)
        assert c.line() == "-ERR Input line too long."
        assert c.at_eof()
    with Pop(sb, "pop3s") as c:     # SASL lines may be longer, within their own limit
        assert c.cmd("AUTH PLAIN " + "A" * 2000) == "-ERR [AUTH] Authentication failed."
        c.send("AUTH PLAIN " + "A" * 9000 + "\r\n")
        assert c.line() == "-ERR Input line too long."
        assert c.at_eof()


def test_overlong_line_in_session_closes_and_deletes_nothing(sb, user):
    deliver(sb, user, "keep me")
    with logged_in(sb, user) as c:
        assert c.cmd("DELE 1") == "+OK Marked to be deleted."
        assert c.cmd("NOOP" + " " * 1000) == "+OK"
        c.send("LIST " + "9" * 3000 + "\r\n")
        assert c.line() == "-ERR Input line too long."
        assert c.at_eof()
    no_session(sb, user)
    assert len(user.files()) == 1


# ---- the transaction state -----------------------------------------------------------------

def test_every_transaction_command(sb, user):
    paths = [deliver(sb, user, f"message {i}", f"body {i}\r\nline 2\r\n")[0] for i in range(3)]
    datas = [open(p, "rb").read() for p in paths]
    sizes = [len(d) + d.count(b"\n") for d in datas]          # CRLF sizes
    with logged_in(sb, user) as c:
        assert c.cmd("STAT") == f"+OK 3 {sum(sizes)}"
        assert c.multi("LIST") == ("+OK 3 messages:", [f"{i + 1} {s}" for i, s in enumerate(sizes)])
        assert c.cmd("LIST 2") == f"+OK 2 {sizes[1]}"
        assert c.cmd("LIST 4") == "-ERR There's no message 4."
        assert c.cmd("LIST 0") == "-ERR There's no message 0."
        assert c.cmd("LIST x") == "-ERR Invalid message number: x"
        assert c.cmd("LIST 1 2") == "-ERR Noise after message number:  2"
        assert c.cmd("LIST 99999999999") == "-ERR Message number too large: 99999999999"
        status, uidls = c.multi("UIDL")
        assert status == "+OK" and [u.split()[0] for u in uidls] == ["1", "2", "3"]
        assert c.cmd("UIDL 3") == "+OK " + uidls[2]
        # RETR: "+OK N octets" with LIST's N, and exactly N bytes (no dot line here)
        assert c.cmd("RETR 1") == f"+OK {sizes[0]} octets"
        assert c.block() == wire_form(datas[0]) and len(wire_form(datas[0])) == sizes[0]
        # TOP n 0: the header and the empty line; TOP n 1: and one body line
        head = datas[1].split(b"\n\n", 1)[0] + b"\n\n"
        assert c.cmd("TOP 2 0") == "+OK"
        assert c.block() == wire_form(head)
        assert c.cmd("TOP 2 1") == "+OK"
        assert c.block() == wire_form(head + b"body 1\n")
        assert c.cmd("TOP 2") == "-ERR Noise after message number: "
        assert c.cmd("TOP 2 x") == "-ERR Invalid size: x"
        assert c.cmd("DELE 2") == "+OK Marked to be deleted."
        assert c.cmd("DELE 2") == "-ERR Message is deleted."
        assert c.cmd("RETR 2") == "-ERR Message is deleted."
        assert c.cmd("STAT") == f"+OK 2 {sizes[0] + sizes[2]}"
        assert c.multi("LIST")[1] == [f"1 {sizes[0]}", f"3 {sizes[2]}"]
        assert c.multi("UIDL")[1] == [uidls[0], uidls[2]]
        assert c.cmd("RSET") == "+OK"       # forgets the DELE and the \\Seen of RETR 1
        assert c.cmd("STAT") == f"+OK 3 {sum(sizes)}"
        assert c.cmd("RETR 1") == f"+OK {sizes[0]} octets"
        c.block()
        assert c.cmd("NOOP") == "+OK"
        assert c.cmd("FROB") == "-ERR Unknown command: FROB"
        assert c.cmd("USER x") == "-ERR Unknown command: USER"
        assert c.multi("CAPA")[0] == "+OK"
        assert c.cmd("DELE 3") == "+OK Marked to be deleted."
        assert c.cmd("QUIT") == "+OK Logging out, messages deleted."
        assert c.at_eof()
    no_session(sb, user)
    left = user.files()
    assert sorted(left) == sorted(os.path.basename(p).split(":")[0] for p in paths[:2])
    # RETR gave message 1 \Seen at QUIT (Dovecot's default); TOP gave message 2 nothing
    assert "S" in user.flags_of(paths[0]) and "S" not in user.flags_of(paths[1])


def test_logout_line_counts_like_dovecot(sb, user):
    path, _ = deliver(sb, user, "counted", "x\r\n.dot\r\n")
    data = open(path, "rb").read()
    size = len(data) + data.count(b"\n")
    mark = log_mark(sb)
    with logged_in(sb, user) as c:
        assert c.cmd("RETR 1") == f"+OK {size} octets"
        body = c.block()
        assert c.cmd("TOP 1 0") == "+OK"
        top = c.block()
        assert c.cmd("DELE 1") == "+OK Marked to be deleted."
        pid = session_procs(sb, user)[0].pid
        assert c.cmd("QUIT") == "+OK Logging out, messages deleted."
    retr = len(f"+OK {size} octets\r\n") + len(body)     # Dovecot counts the +OK line too
    top_bytes = len("+OK\r\n") + len(top)
    line = wait_log(sb, re.escape(f"pop3({user.addr})<{pid}>: "), mark)[0]
    assert re.match(STAMP + re.escape(
        f"pop3({user.addr})<{pid}>: Info: Disconnected: Logged out top=1/{top_bytes}, "
        f"retr=1/{retr}, del=1/1, size={size}") + "$", line), line


def test_message_with_dot_lines_is_retrieved_byte_exact(sb, user):
    # LF line ends on disk, a lone ".", "..", lines starting with dots, a dot mid-line,
    # a CRLF line in the middle, and no line end after the last line.
    data = (b"From: dots@example.org\nSubject: dots\n\n.\n..\n.leading\nmid.dle\n"
            b"...three\n\n.\r\nCRLF line\r\nlast line without end")
    drop_file(user, data)
    want = wire_form(data)
    size = len(data) + data.count(b"\n") - data.count(b"\r\n")   # CRLF line ends
    assert want.count(b"\r\n") == 12 and b"\r\n..\r\n...\r\n..leading\r\n" in want
    with logged_in(sb, user) as c:
        status = c.cmd("RETR 1")
        got = c.block()
        assert got == want, f"{got!r} != {want!r}"
        # LIST's size is the message with CRLF line ends (the final CRLF the server adds to
        # end the transfer is not part of the message)
        assert status == f"+OK {size} octets"
        assert c.cmd("LIST 1") == f"+OK 1 {size}"
        assert c.cmd("QUIT") == "+OK Logging out."
    # poplib unstuffs: the lines are the file's lines
    p = poplib_ssl(sb)
    try:
        p.user(user.addr)
        p.pass_(PASSWORD)
        _, lines, _ = p.retr(1)
        assert b"\r\n".join(lines) + b"\r\n" == data.replace(b"\r\n", b"\n").replace(
            b"\n", b"\r\n") + b"\r\n"
        p.quit()
    finally:
        p.close()


def test_dele_then_quit_removes_and_imap_sees_it(sb, user):
    p1, _ = deliver(sb, user, "stays")
    p2, _ = deliver(sb, user, "goes")
    imap = imaplib.IMAP4_SSL("127.0.0.1", sb.ports["imaps"], ssl_context=tls_context(sb.ca),
                             timeout=30)
    try:
        imap.login(user.addr, PASSWORD)
        assert imap.select("INBOX")[1] == [b"2"]
        with logged_in(sb, user) as c:
            assert c.cmd("DELE 2") == "+OK Marked to be deleted."
            assert len(user.files()) == 2            # not before QUIT
            assert c.cmd("QUIT") == "+OK Logging out, messages deleted."
        no_session(sb, user)
        assert list(user.files()) == [os.path.basename(p1).split(":")[0]]
        # the IMAP session on the same mailbox sees the expunge
        typ, data = imap.noop()
        assert typ == "OK"
        assert imap.untagged_responses.get("EXPUNGE") == [b"2"] or \
            imap.select("INBOX")[1] == [b"1"]
        typ, data = imap.uid("SEARCH", None, "ALL")
        assert len(data[0].split()) == 1
    finally:
        imap.logout()


def test_dele_then_connection_drop_deletes_nothing(sb, user):
    paths = [deliver(sb, user, f"safe {i}")[0] for i in range(2)]
    before = sorted(user.files())
    with logged_in(sb, user) as c:
        assert c.cmd("DELE 1") == "+OK Marked to be deleted."
        assert c.cmd("RETR 2").endswith(" octets")
        c.block()
        assert c.cmd("DELE 2") == "+OK Marked to be deleted."
        # no QUIT: the connection just goes away
    no_session(sb, user)
    assert sorted(user.files()) == before
    assert "S" not in user.flags_of(paths[1])        # no \Seen either: no UPDATE state
    with logged_in(sb, user) as c:
        assert c.cmd("STAT").startswith("+OK 2 ")


def test_only_one_session_per_mailbox(sb, user):
    mark = log_mark(sb)
    with logged_in(sb, user) as first:
        pid = session_procs(sb, user)[0].pid
        lock = os.path.join(user.maildir, LOCK_NAME)
        with open(lock) as f:
            assert f.read() == f"{pid}:{socket.gethostname()}"
        t0 = time.monotonic()
        p = poplib_ssl(sb)
        try:
            p.user(user.addr)
            with pytest.raises(poplib.error_proto) as e:
                p.pass_(PASSWORD)
            assert e.value.args[0] == IN_USE.encode()
        finally:
            p.close()
        assert time.monotonic() - t0 < 10
        assert first.cmd("NOOP") == "+OK"         # the first one is untouched
        assert first.cmd("QUIT") == "+OK Logging out."
    no_session(sb, user)
    assert not os.path.exists(lock)
    wait_log(sb, re.escape(f"pop3({user.addr})<") + r"\d+>: Info: Couldn't lock POP3 session "
             r"top=0/0, retr=0/0, del=0/0, size=0$", mark)
    with logged_in(sb, user) as c:              # free again
        assert c.cmd("QUIT") == "+OK Logging out."


def test_stale_lock_is_taken_over_and_a_live_one_is_respected(sb, user):
    lock = os.path.join(user.maildir, LOCK_NAME)
    host = socket.gethostname()
    vmail = pwd.getpwnam("vmail")
    # a session that died: its pid does not exist any more
    dead = subprocess.Popen(["true"])
    dead.wait()
    with open(lock, "w") as f:
        f.write(f"{dead.pid}:{host}")
    os.chown(lock, vmail.pw_uid, vmail.pw_gid)
    with logged_in(sb, user) as c:
        assert c.cmd("QUIT") == "+OK Logging out."
    no_session(sb, user)
    assert not os.path.exists(lock)
    # a Dovecot pop3 (no fcntl lock) whose process lives: pid 1 stands in for it
    with open(lock, "w") as f:
        f.write(f"1:{host}")
    os.chown(lock, vmail.pw_uid, vmail.pw_gid)
    try:
        with Pop(sb, "pop3s") as c:
            assert c.login(user) == IN_USE
    finally:
        os.unlink(lock)


# ---- UIDL ----------------------------------------------------------------------------------

def uidlist(user):
    """(uidvalidity, {basename: uid}) from dovecot-uidlist."""
    with open(os.path.join(user.maildir, "dovecot-uidlist")) as f:
        head, *recs = f.read().splitlines()
    uidv = int(re.search(r"\bV(\d+)", head).group(1))
    out = {}
    for rec in recs:
        uid, _, rest = rec.partition(" ")
        out[rest.split(":")[-1].split(":")[0]] = int(uid)
    return uidv, out


def dovecot_uidls(maildir, fmt="%08Xu%08Xv"):
    """UIDL as Dovecot's own pop3 answers it, run on a copy of maildir as nobody."""
    nobody = pwd.getpwnam("nobody")
    d = tempfile.mkdtemp(prefix="pop3-dovecot.")
    try:
        os.chmod(d, 0o755)
        for sub in ("run", "state"):
            os.makedirs(os.path.join(d, sub))
        shutil.copytree(maildir, os.path.join(d, "home", "Maildir"), symlinks=True)
        for root, dirs, files in os.walk(os.path.join(d, "home")):
            for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.chown(n, nobody.pw_uid, nobody.pw_gid)
        conf = os.path.join(d, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(f"base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n"
                    f"protocols =\nssl = no\nfirst_valid_uid = 1\nmail_uid = {nobody.pw_uid}\n"
                    f"mail_gid = {nobody.pw_gid}\nmail_location = maildir:~/Maildir\n"
                    f"pop3_uidl_format = {fmt}\n"
                    "namespace inbox {\n  inbox = yes\n  separator = .\n}\n")
        env = {"USER": "test", "HOME": os.path.join(d, "home"), "PATH": "/usr/bin:/bin"}
        r = subprocess.run([DOVECOT_POP3, "-c", conf], input=b"UIDL\r\nQUIT\r\n", env=env,
                           capture_output=True, timeout=60)
        lines = r.stdout.decode().split("\r\n")     # run pre-authenticated: no greeting
        assert lines[0] == "+OK" and "." in lines, r.stdout + r.stderr
        return lines[1:lines.index(".")]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_uidl_stable_and_equal_to_dovecot(sb, user):
    paths = [deliver(sb, user, f"uidl {i}")[0] for i in range(3)]
    with logged_in(sb, user) as c:
        first = c.multi("UIDL")[1]
        assert c.cmd("QUIT") == "+OK Logging out."
    no_session(sb, user)
    # %08Xu%08Xv: the UID and the UIDVALIDITY of dovecot-uidlist, 8 hex digits each
    uidv, uids = uidlist(user)
    want = [f"{n + 1} {uids[os.path.basename(p).split(':')[0]]:08x}{uidv:08x}"
            for n, p in enumerate(paths)]
    assert first == want
    deliver(sb, user, "uidl later")
    with logged_in(sb, user) as c:
        again = c.multi("UIDL")[1]
        assert again[:3] == first and len(again) == 4     # stable across sessions
        assert c.cmd("DELE 1") == "+OK Marked to be deleted."
        assert c.cmd("QUIT") == "+OK Logging out, messages deleted."
    no_session(sb, user)
    with logged_in(sb, user) as c:
        after = c.multi("UIDL")[1]
        # numbers shift after the deletion, the UIDLs of the survivors do not
        assert [u.split()[1] for u in after] == [u.split()[1] for u in again[1:]]
        assert c.cmd("QUIT") == "+OK Logging out."
    no_session(sb, user)
    if not os.access(DOVECOT_POP3, os.X_OK):
        pytest.skip("dovecot-pop3d is not installed: no cross-check with Dovecot")
    assert dovecot_uidls(user.maildir) == after


def test_uidl_format_parameter(sb, user):
    deliver(sb, user, "format")
    original = open(sb.conf).read()
    try:
        # sessions read postern.conf when they start: no reload needed
        with open(sb.conf, "a") as f:
            f.write("pop3_uidl_format = %u.%v-%XUu\n")
        with logged_in(sb, user) as c:
            (line,) = c.multi("UIDL")[1]
            assert c.cmd("QUIT") == "+OK Logging out."
        no_session(sb, user)
        uidv, uids = uidlist(user)
        (uid,) = uids.values()
        assert line == f"1 {uid}.{uidv}-{uid:X}"
        if os.access(DOVECOT_POP3, os.X_OK):
            assert dovecot_uidls(user.maildir, "%u.%v-%XUu") == [line]
        # a template Postern cannot honour is refused at login, loudly
        mark = log_mark(sb)
        with open(sb.conf, "w") as f:
            f.write(original + "pop3_uidl_format = %m\n")
        with Pop(sb, "pop3s") as c:
            assert c.login(user) == ("-ERR [SYS/TEMP] Internal error occurred. Refer to "
                                     "server log for more information.")
        wait_log(sb, r"pop3: Error: pop3_uidl_format = %m: %m and %g are not supported", mark)
    finally:
        with open(sb.conf, "w") as f:
            f.write(original)


# ---- getmail6 ------------------------------------------------------------------------------

@pytest.fixture
def world_tmp():
    """A temporary directory other users can reach (pytest's tmp_path is root's alone)."""
    d = make_world_dir("postern-getmail-")
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def test_getmail6_retrieves_into_a_local_maildir(sb, user, world_tmp):
    if shutil.which("getmail") is None:
        pytest.skip("getmail6 is not installed (apt-get install getmail6)")
    tmp_path = world_tmp
    datas = [open(deliver(sb, user, f"getmail {i}", f"line\r\n.dotted {i}\r\n")[0], "rb").read()
             for i in range(3)]
    dest = tmp_path / "Mail"
    for sub in ("cur", "new", "tmp"):
        (dest / sub).mkdir(parents=True)
    gdir = tmp_path / "getmail"
    gdir.mkdir()
    rc = gdir / "getmailrc"
    rc.write_text(f"""[retriever]
type = SimplePOP3SSLRetriever
server = 127.0.0.1
port = {sb.ports['pop3s']}
username = {user.addr}
password = {PASSWORD}
ca_certs = {sb.ca}
ssl_cert_hostname = localhost

[destination]
type = Maildir
path = {dest}/

[options]
read_all = false
delete = false
delivered_to = false
received = false
verbose = 0
""")

    nobody = pwd.getpwnam("nobody")       # getmail refuses to deliver as root
    for root, dirs, files in os.walk(tmp_path):
        for n in [root] + [os.path.join(root, x) for x in dirs + files]:
            os.chown(n, nobody.pw_uid, nobody.pw_gid)

    def as_nobody():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    def run():
        r = subprocess.run(["getmail", "--getmaildir", str(gdir), "--rcfile", str(rc)],
                           capture_output=True, text=True, timeout=120, preexec_fn=as_nobody,
                           env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert r.returncode == 0, r.stdout + r.stderr
        return sorted(open(dest / "new" / n, "rb").read() for n in os.listdir(dest / "new"))
    got = run()
    assert got == sorted(datas), got        # byte for byte what the Maildir holds
    # getmail remembers the UIDLs: a second run fetches only what is new
    deliver(sb, user, "getmail later")
    assert len(run()) == 4
    assert len(run()) == 4
    no_session(sb, user)
    assert len(user.files()) == 4       # delete = false


# ---- processes -----------------------------------------------------------------------------

def test_session_runs_as_vmail_chrooted_in_the_home_without_capabilities(sb, user):
    with logged_in(sb, user) as c:
        (info,) = session_procs(sb, user)
        assert info.ppid == sb.master_pid
        vmail_uid, vmail_gid = uid_of("vmail"), gid_of("vmail")
        assert info.uids == (vmail_uid,) * 4 and info.gids == (vmail_gid,) * 4, info
        assert info.groups == (), f"supplementary groups left: {info.groups}"
        assert info.root == os.path.realpath(user.home), info.root
        assert (info.cap_eff, info.cap_prm, info.cap_inh, info.cap_amb, info.cap_bnd) == \
            (0, 0, 0, 0, 0), info
        assert info.no_new_privs == 1
        assert c.cmd("QUIT") == "+OK Logging out."


def test_login_process_runs_as_postern_in_empty_without_capabilities(sb):
    clients = [Pop(sb, "pop3"), Pop(sb, "pop3s")]
    try:
        for service in ("pop3", "pop3s"):
            kids = service_children(sb.master_pid, service)
            assert kids, f"no {service} process"
            for info in kids:
                assert os.path.basename(info.cmdline[0]) == "postern-pop3-login", info
                assert info.uids == (uid_of("postern"),) * 4, info
                assert info.gids == (gid_of("postern"),) * 4, info
                assert info.root == os.path.realpath(os.path.join(sb.spool, "empty")), info
                assert (info.cap_eff, info.cap_prm, info.cap_inh, info.cap_amb,
                        info.cap_bnd) == (0, 0, 0, 0, 0), info
                assert info.no_new_privs == 1, info
    finally:
        for c in clients:
            c.close()


def test_master_stop_ends_the_session_and_its_lock(sb, user):
    """Last in the module: it stops the sandbox's master."""
    c = logged_in(sb, user)
    try:
        (info,) = session_procs(sb, user)
        lock = os.path.join(user.maildir, LOCK_NAME)
        assert os.path.exists(lock)
        master = sb.master_pid
        os.kill(master, 15)
        wait_until(lambda: ProcInfo.read(info.pid) is None and ProcInfo.read(master) is None,
                   8, what="master and the session to end")
        assert not os.path.exists(lock), "the session left its lock behind"
    finally:
        c.close()
