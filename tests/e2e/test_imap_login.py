"""test_imap_login: postern-imap-login and the session start in master (issue 6, the login
half; DESIGN.md §1 login/session split, lib/sessionproto.h), proved from the outside.

Clients are Python's imaplib where it can say what is tested, and a raw line client (Raw)
for exact bytes: pipelining, STARTTLS injection, literals, junk. Processes are checked in
/proc, log lines against Dovecot's shapes and with fail2ban-regex's stock dovecot filter.

The session program is a stand-in: the module's sandbox has a daemon_directory of its own
holding links to the build's programs and, as postern-imap, build/tests/tools/fake_session,
a small C program that calls session_enter() (lib/privsep.h) as the real one does and then
reports on the socket what it became (uid, gid, groups, capabilities, cwd, its arguments)
and echoes lines. While it waits for the client, /proc shows its root directory, ids and
capability sets; so the tests prove that master's child redeemed the ticket with authd,
re-checked the account and exec'd the session with the right arguments, and that the
session dropped into the user's home for good. A refused account (home outside
virtual_mailbox_base or behind a symbolic link, uid below minimum_uid: rows changed with SQL
and a user_query that returns those columns) closes the session socket without a byte,
and the client gets NO [UNAVAILABLE]. Master's request validation is tested on the private
socket directly, as mail_owner.

Settings of the sandbox: login_idle_timeout=4s (the inactivity test), mail_max_sessions=4
(the limit test), short authd failure delays (several tests fail logins on purpose).
"""

import array
import base64
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

import postern_ipc as ipc
from conftest import (BINDIR, CrlfClient, ProcInfo, alive, finish_sandbox, make_world_dir,
                      read_text, service_children, start_sandbox, tls_context, uid_of, gid_of,
                      wait_until)

DOMAIN = "login.test"
ALICE, ALICE_PW = f"alice@{DOMAIN}", "alice-Secret-1"
BOB, BOB_PW = f"bob@{DOMAIN}", "bob-Secret-2"
CAROL, CAROL_PW = f"carol@{DOMAIN}", "carol-Secret-3"
DAVE, DAVE_PW = f"dave@{DOMAIN}", "dave-Secret-4"
ERIN, ERIN_PW = f"erin@{DOMAIN}", "erin-Secret-5"
IDLE_S = 4
MAX_SESSIONS = 4
SESSION_REQ_START = 60
UNAVAILABLE = "NO [UNAVAILABLE] Internal error occurred. Refer to server log for more information."
FAKE = re.compile(r"^(\S+) OK \[FAKE\] (.*)$")
STAMP = r"^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \S+ "
SESSION_ID = r"session=<[A-Za-z0-9+/]{16}>"
BASE_CAPS = ["IMAP4rev1", "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE"]


def fake_daemon_dir():
    """Links to every program of the build, and fake_session as postern-imap."""
    d = make_world_dir("postern-imap-login-bin-")
    for name in os.listdir(BINDIR):
        path = os.path.join(BINDIR, name)
        if name.startswith("postern") and os.path.isfile(path) and os.access(path, os.X_OK):
            os.symlink(path, os.path.join(d, name))
    fake = os.path.join(d, "postern-imap")
    if os.path.lexists(fake):
        os.unlink(fake)
    os.symlink(os.path.join(BINDIR, "tests", "tools", "fake_session"), fake)
    return d


@pytest.fixture(scope="module")
def sb():
    bindir = fake_daemon_dir()
    box = start_sandbox("postern-e2e-imap-login-", [
        f"daemon_directory={bindir}", f"login_idle_timeout={IDLE_S}s",
        f"mail_max_sessions={MAX_SESSIONS}", "auth_failure_delay=50ms",
        "auth_failure_max_delay=200ms", "auth_failure_limit=1000"])
    admin = [os.path.join(BINDIR, "postern"), "admin", "-c", box.conf]
    try:
        subprocess.run(admin + ["domain", "add", DOMAIN], check=True, capture_output=True)
        for user, pw in ((ALICE, ALICE_PW), (BOB, BOB_PW), (CAROL, CAROL_PW),
                         (DAVE, DAVE_PW), (ERIN, ERIN_PW)):
            subprocess.run(admin + ["user", "add", user, "--password-stdin"], input=pw + "\n",
                           text=True, check=True, capture_output=True)
        yield box
    finally:
        finish_sandbox(box)
        shutil.rmtree(bindir, ignore_errors=True)


# ---- clients -------------------------------------------------------------------------------

class Raw(CrlfClient):
    """An IMAP client at the byte level: send exact bytes, read CRLF lines."""

    SERVICE = "imap"

    def cmd(self, tag, text):
        """Send "tag text" and return every line up to and including the tagged one."""
        self.send(f"{tag} {text}\r\n")
        return self.until(tag)

    def until(self, tag):
        lines = []
        while True:
            ln = self.line()
            assert ln is not None, f"connection closed; got {lines}"
            lines.append(ln)
            if ln.startswith(tag + " "):
                return lines


def tls_raw(sb):
    """A client on 143 after STARTTLS."""
    c = Raw(sb, "imap")
    assert c.cmd("s0", "STARTTLS")[-1] == "s0 OK Begin TLS negotiation now."
    c.starttls()
    return c


def plain_b64(user, pw, authz=""):
    return base64.b64encode(f"{authz}\0{user}\0{pw}".encode()).decode()


def caps_of(line):
    m = re.search(r"\[CAPABILITY ([^\]]*)\]", line) or re.match(r"^\* CAPABILITY (.*)$", line)
    assert m, line
    return m.group(1).split()


def fake_report(line):
    """The fields of fake_session's first line as a dict (tag under "tag")."""
    m = FAKE.match(line or "")
    assert m, f"not the session's first line: {line!r}"
    fields = dict(item.split("=", 1) for item in m.group(2).split())
    fields["tag"] = m.group(1)
    return fields


def log_lines(sb, needle, since=0):
    return [ln for ln in sb.log_text().splitlines()[since:] if needle in ln]


def log_mark(sb):
    return len(sb.log_text().splitlines())


def wait_log(sb, pattern, since=0, timeout=10):
    rx = re.compile(pattern)

    def found():
        return [ln for ln in sb.log_text().splitlines()[since:] if rx.search(ln)]
    return wait_until(found, timeout, interval=0.1, what=f"log line {pattern!r}")


def gone(pid):
    """True once pid has exited and was reaped (no zombie left behind)."""
    return not os.path.exists(f"/proc/{pid}")


def home_of(sb, user):
    local, domain = user.split("@")
    return os.path.join(sb.env["POSTERN_MAIL_ROOT"], domain, local)


# ---- greeting, capabilities, TLS -----------------------------------------------------------

def test_greeting_and_capabilities_on_143_before_tls(sb):
    with Raw(sb, "imap") as c:
        assert c.greeting.startswith("* OK [CAPABILITY ") and c.greeting.endswith(
            "] Postern ready."), c.greeting
        caps = caps_of(c.greeting)
        assert caps == BASE_CAPS + ["STARTTLS", "LOGINDISABLED"], caps
        lines = c.cmd("a", "CAPABILITY")
        assert caps_of(lines[0]) == caps
        assert lines[1] == "a OK Pre-login capabilities listed, post-login capabilities have more."
    m = imaplib.IMAP4("127.0.0.1", sb.ports["imap"], timeout=15)
    try:
        assert "LOGINDISABLED" in m.capabilities and "AUTH=PLAIN" not in m.capabilities
    finally:
        m.shutdown()


def test_capabilities_after_starttls(sb):
    m = imaplib.IMAP4("127.0.0.1", sb.ports["imap"], timeout=15)
    try:
        typ, _ = m.starttls(ssl_context=tls_context(sb.ca))
        assert typ == "OK"
        caps = set(m.capabilities)
        assert {"AUTH=PLAIN", "AUTH=LOGIN", "SASL-IR", "LITERAL+", "IMAP4REV1"} <= caps, caps
        assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps
        typ, data = m._simple_command("STARTTLS")
    except imaplib.IMAP4.error as e:
        assert "TLS is already active" in str(e)
    else:
        raise AssertionError(f"a second STARTTLS was accepted: {typ} {data}")
    finally:
        m.shutdown()


def test_implicit_tls_on_993(sb):
    with Raw(sb, "imaps") as c:
        caps = caps_of(c.greeting)
        assert caps == BASE_CAPS + ["AUTH=PLAIN", "AUTH=LOGIN"], caps
        with open(sb.ca) as f:
            assert c.sock.getpeercert(binary_form=True) == ssl.PEM_cert_to_DER_cert(f.read())
        assert c.cmd("a", "STARTTLS") == ["a BAD TLS is already active."]
        assert c.cmd("b", "NOOP") == ["b OK NOOP completed."]


def test_no_password_before_tls(sb):
    mark = log_mark(sb)
    with Raw(sb, "imap") as c:
        assert c.cmd("a", f"LOGIN {ALICE} {ALICE_PW}") == [
            "a NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure "
            "(SSL/TLS) connections."]
        assert c.cmd("b", f"AUTHENTICATE PLAIN {plain_b64(ALICE, ALICE_PW)}")[-1].startswith(
            "b NO [PRIVACYREQUIRED] ")
        assert c.cmd("c", "AUTHENTICATE LOGIN")[-1].startswith("c NO [PRIVACYREQUIRED] ")
        assert c.cmd("d", "LOGOUT") == ["* BYE Logging out", "d OK Logout completed."]
        assert c.at_eof()
    line = wait_log(sb, r"imap-login: Info: Disconnected: Aborted login by logging out", mark)[0]
    assert re.match(STAMP + r"imap-login: Info: Disconnected: Aborted login by logging out "
                    r"\(tried to use disallowed plaintext auth\): user=<>, rip=127\.0\.0\.1, "
                    r"lip=127\.0\.0\.1, " + SESSION_ID + "$", line), line


def test_starttls_discards_pipelined_commands(sb):
    with Raw(sb, "imap") as c:
        # One write: CAPABILITY and LOGIN travel in the packet of STARTTLS and must be dropped.
        c.send(f"a STARTTLS\r\nb CAPABILITY\r\nc LOGIN {ALICE} {ALICE_PW}\r\n")
        assert c.line() == "a OK Begin TLS negotiation now."
        time.sleep(0.3)         # give a buggy server time to answer in clear text
        c.sock.setblocking(False)
        try:
            early = c.sock.recv(4096)
        except BlockingIOError:
            early = b""
        c.sock.settimeout(15)
        assert early == b"", f"answered in clear text after STARTTLS: {early!r}"
        c.starttls()
        # The first answer inside TLS is to what was sent inside TLS.
        assert c.cmd("d", "NOOP") == ["d OK NOOP completed."]
        assert "AUTH=PLAIN" in caps_of(c.cmd("e", "CAPABILITY")[0])


# ---- failed logins, their log lines and fail2ban -------------------------------------------

def test_wrong_password_is_refused_and_logged_like_dovecot(sb):
    mark = log_mark(sb)
    with tls_raw(sb) as c:
        assert c.cmd("a", f"LOGIN {BOB} wrong-password") == [
            "a NO [AUTHENTICATIONFAILED] Authentication failed."]
        assert c.cmd("b", "NOOP") == ["b OK NOOP completed."]     # still usable
    line = wait_log(sb, r"imap-login: Info: Disconnected: .*user=<" + re.escape(BOB), mark)[0]
    assert re.match(STAMP + r"imap-login: Info: Disconnected: Connection closed \(auth failed, "
                    r"1 attempts in \d+ secs\): user=<" + re.escape(BOB) + r">, method=PLAIN, "
                    r"rip=127\.0\.0\.1, lip=127\.0\.0\.1, TLS, " + SESSION_ID + "$", line), line
    # authd's own line, as Dovecot's auth process writes it
    assert log_lines(sb, f"auth: sql({BOB},127.0.0.1): Password mismatch", mark)


def test_three_failures_end_the_connection(sb):
    mark = log_mark(sb)
    with Raw(sb, "imaps") as c:
        for tag in ("a", "b"):
            assert c.cmd(tag, f"LOGIN {BOB} nope-{tag}") == [
                f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed."]
        assert c.cmd("c", f"AUTHENTICATE PLAIN {plain_b64(BOB, 'nope-c')}") == [
            "c NO [AUTHENTICATIONFAILED] Authentication failed."]
        assert c.line() == "* BYE Too many invalid authentication attempts."
        assert c.at_eof()
    line = wait_log(sb, r"imap-login: Info: Disconnected: .*\(auth failed, 3 ", mark)[0]
    assert "(auth failed, 3 attempts in " in line and f"user=<{BOB}>, method=PLAIN" in line, line


def test_crafted_user_name_cannot_forge_log_fields(sb, tmp_path):
    mark = log_mark(sb)
    evil = "x>, method=PLAIN, rip=203.0.113.9, lip=1"
    with tls_raw(sb) as c:
        assert c.cmd("a", f'LOGIN "{evil}" pw')[0].startswith("a NO [AUTHENTICATIONFAILED]")
    line = wait_log(sb, r"imap-login: Info: Disconnected: .*user=<x\?", mark)[0]
    assert line.count(" rip=") == 1 and ", rip=127.0.0.1, " in line, line
    assert "user=<x???method=PLAIN??rip=203.0.113.9??lip=1>, method=PLAIN, " in line, line
    log = tmp_path / "log"
    log.write_text(line + "\n")
    res = subprocess.run(["fail2ban-regex", "--out", "ip", str(log),
                          "/etc/fail2ban/filter.d/dovecot.conf"],
                         capture_output=True, text=True, timeout=120)
    assert res.stdout.split() == ["127.0.0.1"], res.stdout + res.stderr


def test_fail2ban_dovecot_filter_reads_the_failures(sb, tmp_path):
    with tls_raw(sb) as c:
        assert c.cmd("a", f"LOGIN {BOB} bad-for-fail2ban")[0].startswith("a NO ")
    with Raw(sb, "imap") as c:      # a password offered in the clear counts too
        assert c.cmd("a", f"LOGIN {BOB} x")[0].startswith("a NO [PRIVACYREQUIRED]")
    wait_until(lambda: len([ln for ln in log_lines(sb, "imap-login: Info: Disconnected")
                            if "auth failed" in ln or "plaintext" in ln]) >= 2, 10,
               what="the failure lines")
    lines = log_lines(sb, "imap-login: ")
    failures = [ln for ln in lines if "(auth failed," in ln or "disallowed plaintext" in ln]
    others = [ln for ln in lines if ln not in failures]
    assert failures and others
    log = tmp_path / "log"
    log.write_text("\n".join(lines) + "\n")
    res = subprocess.run(["fail2ban-regex", str(log), "/etc/fail2ban/filter.d/dovecot.conf"],
                         capture_output=True, text=True, timeout=120)
    m = re.search(r"Lines: (\d+) lines, \d+ ignored, (\d+) matched, (\d+) missed", res.stdout)
    assert m, res.stdout[-3000:] + res.stderr[-2000:]
    # Every failure, and nothing else (Login: lines, "no auth attempts"), is a match.
    assert int(m.group(2)) == len(failures), res.stdout[-3000:]
    assert int(m.group(3)) == len(others), res.stdout[-3000:]
    assert re.search(r"127\.0\.0\.1\s+\(", res.stdout) or "127.0.0.1" in res.stdout


# ---- successful logins: master, the ticket, the session ------------------------------------

def check_session_process(sb, report, user):
    """The session is master's child, chrooted into the user's home, as vmail, powerless."""
    pid = int(report["pid"])
    info = ProcInfo.read(pid)
    assert info is not None, f"session pid {pid} is not running"
    assert info.ppid == sb.master_pid, f"session {pid} is not a child of master: {info}"
    vmail_uid, vmail_gid = uid_of("vmail"), gid_of("vmail")
    assert info.uids == (vmail_uid,) * 4 and info.gids == (vmail_gid,) * 4, info
    assert info.groups == (), f"supplementary groups left: {info.groups}"
    assert info.root == os.path.realpath(home_of(sb, user)), info.root
    assert (info.cap_eff, info.cap_prm, info.cap_inh, info.cap_amb, info.cap_bnd) == \
        (0, 0, 0, 0, 0), info
    assert info.no_new_privs == 1
    # and what the session saw of itself
    assert report["uid"] == f"{vmail_uid}/{vmail_uid}/{vmail_uid}"
    assert report["gid"] == f"{vmail_gid}/{vmail_gid}/{vmail_gid}"
    assert report["groups"] == "0" and report["caps"] == "=" and report["cwd"] == "/"
    assert report["nnp"] == "1" and report["dumpable"] == "0"
    assert report["user"] == user and report["home"] == home_of(sb, user)
    assert report["mail"] == "~/Maildir" and report["quota"] == "0"
    assert report["service"] == "imap" and report["rip"] == "127.0.0.1"
    return pid


def test_login_starts_the_session_and_forwards_pipelined_commands(sb):
    mark = log_mark(sb)
    with tls_raw(sb) as c:
        # LOGIN and two more commands in one packet: the session gets the two.
        c.send(f"a LOGIN {ALICE} {ALICE_PW}\r\nb NOOP\r\nc SELECT INBOX\r\n")
        report = fake_report(c.line())
        assert report["tag"] == "a" and report["method"] == "PLAIN" and report["tls"] == "1"
        pid = check_session_process(sb, report, ALICE)
        assert c.line() == "* ECHO b NOOP"
        assert c.line() == "* ECHO c SELECT INBOX"
        # the proxy both ways, then the session's logout ends the connection
        assert c.cmd("d", "LOGOUT") == ["* ECHO d LOGOUT", "* BYE fake", "d OK LOGOUT"]
        assert c.at_eof()
    wait_until(lambda: gone(pid), 10, what="the session to exit and be reaped")
    line = wait_log(sb, r"imap-login: Info: Login: ", mark)[0]
    assert re.match(STAMP + r"imap-login: Info: Login: user=<" + re.escape(ALICE) +
                    rf">, method=PLAIN, rip=127\.0\.0\.1, lip=127\.0\.0\.1, mpid={pid}, TLS, " +
                    SESSION_ID + "$", line), line
    # a login that went to its session writes no Disconnected line of its own
    assert not log_lines(sb, "imap-login: Info: Disconnected", mark)


def test_authenticate_plain_with_initial_response(sb):
    with Raw(sb, "imaps") as c:
        c.send(f"x1 AUTHENTICATE PLAIN {plain_b64(CAROL, CAROL_PW)}\r\nx2 NOOP\r\n")
        report = fake_report(c.line())
        assert report["tag"] == "x1" and report["method"] == "PLAIN"
        check_session_process(sb, report, CAROL)
        assert c.line() == "* ECHO x2 NOOP"


def test_authenticate_plain_with_authzid_and_empty_initial_response(sb):
    with Raw(sb, "imaps") as c:
        # "=" is an empty initial response (RFC 4959): a PLAIN without the two NULs fails.
        assert c.cmd("a", "AUTHENTICATE PLAIN =") == [
            "a NO [AUTHENTICATIONFAILED] Authentication failed."]
        c.send(f"b AUTHENTICATE PLAIN {plain_b64(CAROL, CAROL_PW, authz=CAROL)}\r\n")
        assert fake_report(c.line())["user"] == CAROL


def test_authenticate_plain_without_initial_response(sb):
    m = imaplib.IMAP4_SSL("127.0.0.1", sb.ports["imaps"], ssl_context=tls_context(sb.ca),
                          timeout=15)
    try:
        typ, data = m.authenticate("PLAIN", lambda _: f"\0{ALICE}\0{ALICE_PW}".encode())
        assert typ == "OK"
        report = fake_report(f"tag OK {data[0].decode()}")
        assert report["user"] == ALICE and report["method"] == "PLAIN"
    finally:
        m.shutdown()


def test_authenticate_login_mechanism(sb):
    with tls_raw(sb) as c:
        c.send("a AUTHENTICATE LOGIN\r\n")
        assert c.line() == "+ VXNlcm5hbWU6"                 # "Username:"
        c.send(base64.b64encode(DAVE.encode()) + b"\r\n")
        assert c.line() == "+ UGFzc3dvcmQ6"                 # "Password:"
        c.send(base64.b64encode(DAVE_PW.encode()) + b"\r\n")
        report = fake_report(c.line())
        assert report["method"] == "LOGIN" and report["user"] == DAVE


def test_authenticate_cancel_bad_base64_and_unknown_mechanism(sb):
    mark = log_mark(sb)
    with Raw(sb, "imaps") as c:
        c.send("a AUTHENTICATE PLAIN\r\n")
        assert c.line() == "+ "
        c.send("*\r\n")
        assert c.line() == "a BAD Authentication aborted by client."
        assert c.cmd("b", "AUTHENTICATE PLAIN not!base64") == [
            "b BAD Invalid base64 data in SASL response."]
        assert c.cmd("c", "AUTHENTICATE CRAM-MD5") == [
            "c NO Unsupported authentication mechanism."]
        assert c.cmd("d", "NOOP") == ["d OK NOOP completed."]
        # a client that leaves in the middle of an exchange
        c.send("e AUTHENTICATE LOGIN\r\n")
        assert c.line() == "+ VXNlcm5hbWU6"
    wait_log(sb, r"imap-login: Info: Disconnected: Connection closed \(client didn't finish "
             r"SASL auth, waited 0 secs\): user=<>, method=LOGIN, rip=127\.0\.0\.1, "
             r"lip=127\.0\.0\.1, TLS, " + SESSION_ID, mark)


def test_login_with_literals(sb):
    with tls_raw(sb) as c:
        # a synchronizing literal for the password: the server says "+ OK" first
        c.send(f"a LOGIN {ERIN} {{{len(ERIN_PW)}}}\r\n")
        assert c.line() == "+ OK"
        c.send(ERIN_PW + "\r\n")
        assert fake_report(c.line())["user"] == ERIN
    with tls_raw(sb) as c:
        # LITERAL+: no round trip, a password with a space and a quote
        c.send(f'a LOGIN {{{len(ERIN)}+}}\r\n{ERIN} {{{len(ERIN_PW)}+}}\r\n{ERIN_PW}\r\n')
        assert fake_report(c.line())["user"] == ERIN


def test_id_and_enable_and_junk_before_login(sb):
    with Raw(sb, "imaps") as c:
        assert c.cmd("a", 'ID ("name" "pytest" "version" NIL)') == [
            '* ID ("name" "Postern")', "a OK ID completed."]
        assert c.cmd("b", "ID NIL")[-1] == "b OK ID completed."
        assert c.cmd("c", "ID foo")[-1].startswith("c BAD ")
        assert c.cmd("d", "ENABLE CONDSTORE") == [
            "d BAD ENABLE is not allowed before authentication."]
        assert c.cmd("e", "SELECT INBOX") == ["e BAD Error in IMAP command received by server."]
        assert c.cmd("f", "CAPABILITY extra")[-1].startswith("f BAD ")
        c.send("garbage\r\n")
        assert c.line().startswith("* BAD ") or c.line().startswith("garbage BAD ")
        assert c.cmd("g", "NOOP") == ["g OK NOOP completed."]


def test_too_many_bad_commands_end_the_connection(sb):
    with Raw(sb, "imaps") as c:
        for i in range(9):
            assert c.cmd(f"j{i}", "FROBNICATE")[-1].startswith(f"j{i} BAD ")
        assert c.cmd("j9", "FROBNICATE") == ["j9 BAD Error in IMAP command received by server."]
        assert c.line() == "* BYE Too many invalid IMAP commands."
        assert c.at_eof()


def test_overlong_line_and_literal_are_refused(sb):
    with Raw(sb, "imaps") as c:
        c.send("a LOGIN " + "x" * 9000 + " y\r\n")
        first = c.line()
        assert first.startswith("a BAD [TOOBIG]") or first.startswith("* BAD [TOOBIG]"), first
        assert c.line() == "* BYE Command too long."
        assert c.at_eof()
    with Raw(sb, "imaps") as c:
        c.send("a LOGIN alice {100000}\r\n")
        first = c.line()
        assert first.startswith("a BAD [TOOBIG]"), first       # and no "+ OK"
        assert c.line() == "* BYE Command too long."
        assert c.at_eof()


def test_idle_client_is_disconnected(sb):
    mark = log_mark(sb)
    with Raw(sb, "imap") as c:
        t0 = time.monotonic()
        assert c.line() == "* BYE Disconnected for inactivity."
        assert IDLE_S - 0.5 <= time.monotonic() - t0 <= IDLE_S + 3
        assert c.at_eof()
    line = wait_log(sb, r"imap-login: Info: Disconnected: Inactivity ", mark)[0]
    assert f"(no auth attempts in {IDLE_S} secs): user=<>, rip=127.0.0.1" in line, line


def test_plaintext_login_when_allowed(own_master):
    """imap_allow_plaintext_auth = yes: AUTH= and LOGIN on 143 before STARTTLS."""
    m = own_master({"imap_allow_plaintext_auth": "yes"})
    m.start()
    mark = log_mark(m)
    with Raw(m, "imap") as c:
        assert caps_of(c.greeting) == BASE_CAPS + ["STARTTLS", "AUTH=PLAIN", "AUTH=LOGIN"]
        assert c.cmd("a", "LOGIN nobody@nowhere.test wrong") == [
            "a NO [AUTHENTICATIONFAILED] Authentication failed."]
    line = wait_log(m, r"imap-login: Info: Disconnected: .*nobody@nowhere", mark)[0]
    assert line.endswith(", rip=127.0.0.1, lip=127.0.0.1, " + line.split(", ")[-1]), line
    assert ", TLS," not in line and "(auth failed, 1 attempts in " in line, line


# ---- the login process ---------------------------------------------------------------------

def test_login_process_runs_as_postern_in_empty_without_capabilities(sb):
    clients = [Raw(sb, "imap"), Raw(sb, "imaps")]
    try:
        for service in ("imap", "imaps"):
            kids = service_children(sb.master_pid, service)
            assert kids, f"no {service} process"
            for info in kids:
                assert os.path.basename(info.cmdline[0]) == "postern-imap-login", info
                assert info.uids == (uid_of("postern"),) * 4, info
                assert info.gids == (gid_of("postern"),) * 4, info
                assert info.root == os.path.realpath(os.path.join(sb.spool, "empty")), info
                assert (info.cap_eff, info.cap_prm, info.cap_inh, info.cap_amb,
                        info.cap_bnd) == (0, 0, 0, 0, 0), info
                assert info.no_new_privs == 1, info
        assert os.listdir(os.path.join(sb.spool, "empty")) == []
    finally:
        for c in clients:
            c.close()


def test_session_socket_belongs_to_root_and_mail_owner(sb):
    st = os.stat(os.path.join(sb.spool, "private", "session"))
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, gid_of("postern"), 0o660)


# ---- master's private/session, directly --------------------------------------------------

def session_conn(sb, user="postern"):
    """A connection to private/session that SO_PEERCRED shows as user."""
    pw = pwd.getpwnam(user)
    os.setegid(pw.pw_gid)
    os.seteuid(pw.pw_uid)
    try:
        return ipc.connect(os.path.join(sb.spool, "private", "session"))
    finally:
        os.seteuid(0)
        os.setegid(0)


def start_request(sock, attrs, fds, id_=1):
    frame = ipc.encode(SESSION_REQ_START, id_, attrs, nfds=len(fds))
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
    sock.sendmsg([frame], anc)
    while True:
        msg = ipc.recv_msg(sock)
        if msg is None or msg.id == id_:
            return msg


def good_attrs(**over):
    attrs = {"ticket": "0123456789abcdef0123456789abcdef", "service": "imap",
             "rip": "192.0.2.7", "lip": "127.0.0.1", "rport": 40000, "lport": 143, "tls": 1,
             "tag": "a1", "method": "PLAIN"}
    attrs.update(over)
    return {k: v for k, v in attrs.items() if v is not None}


BAD_REQUESTS = {
    "service": (good_attrs(service="smtp"), "unknown service"),
    "tag with space": (good_attrs(tag="a b"), "malformed tag"),
    "tag with CRLF": (good_attrs(tag="a\r\n* OK"), "malformed tag"),
    "tag with +": (good_attrs(tag="a+"), "malformed tag"),
    "empty tag": (good_attrs(tag=""), "malformed tag"),
    "long tag": (good_attrs(tag="t" * 65), "malformed tag"),
    "pop3 with a tag": (good_attrs(service="pop3", tag="a"), "malformed tag"),
    "ticket path": (good_attrs(ticket="../../etc/passwd"), "malformed ticket"),
    "short ticket": (good_attrs(ticket="abc"), "malformed ticket"),
    "rip": (good_attrs(rip="not-an-address"), "malformed address"),
    "port": (good_attrs(lport=70000), "malformed port"),
    "tls": (good_attrs(tls=2), "malformed tls"),
    "method": (good_attrs(method="PLAIN\n"), "malformed method"),
    "missing method": (good_attrs(method=None), "malformed method"),
    "extra key": (dict(good_attrs(), home="/"), "unknown attribute"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_master_refuses_malformed_session_requests(sb, case):
    attrs, reason = BAD_REQUESTS[case]
    a, b = socket.socketpair()
    with session_conn(sb) as s, a, b:
        reply = start_request(s, attrs, [a.fileno()])
        assert reply is not None and reply.status == ipc.PERMFAIL, reply
        assert reply.get("reason") == reason, reply
        a.close()
        b.settimeout(5)
        assert b.recv(10) == b"", "master kept the refused request's socket"


def test_master_wants_exactly_one_stream_socket(sb):
    a, b = socket.socketpair()
    d1, d2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    r, w = os.pipe()
    try:
        with session_conn(sb) as s:
            # the connection (and at most a pipe of pending input): anything else is refused
            for fds in ([], [d1.fileno()], [r], [a.fileno(), b.fileno()]):
                reply = start_request(s, good_attrs(), fds)
                assert reply.status == ipc.PERMFAIL, (fds, reply)
                assert reply.get("reason") == "want the session's stream socket and at " \
                    "most a pipe of pending input", reply
        with session_conn(sb) as s:     # more than two: the connection is dropped
            assert start_request(s, good_attrs(), [a.fileno(), b.fileno(), r]) is None
    finally:
        for x in (a, b, d1, d2):
            x.close()
        os.close(r)
        os.close(w)


def test_only_mail_owner_may_ask_master(sb):
    a, b = socket.socketpair()
    with ipc.connect(os.path.join(sb.spool, "private", "session")) as s, a, b:   # as root
        reply = start_request(s, good_attrs(), [a.fileno()])
        assert reply.status == ipc.PERMFAIL and reply.get("reason") == "not allowed", reply


def test_unknown_ticket_closes_the_session_socket_without_a_byte(sb):
    mark = log_mark(sb)
    a, b = socket.socketpair()
    with session_conn(sb) as s, a, b:
        reply = start_request(s, good_attrs(), [a.fileno()])
        assert reply.status == ipc.OK and reply.get("pid") > 0, reply
        pid = reply.get("pid")
        a.close()
        b.settimeout(15)
        assert b.recv(10) == b"", "the refused session wrote to its socket"
    wait_until(lambda: gone(pid), 10, what="master's child to exit and be reaped")
    wait_log(sb, r"imap: Error: session refused: user=<>, rip=192\.0\.2\.7, lip=127\.0\.0\.1: "
             r"ticket refused by authd", mark)


# ---- the session limit ---------------------------------------------------------------------

def test_mail_max_sessions(sb):
    mark = log_mark(sb)
    held = []
    try:
        for i in range(MAX_SESSIONS):
            c = Raw(sb, "imaps")
            c.send(f"a LOGIN {ALICE} {ALICE_PW}\r\n")
            fake_report(c.line())
            held.append(c)
        with Raw(sb, "imaps") as c:
            assert c.cmd("a", f"LOGIN {ALICE} {ALICE_PW}") == [f"a {UNAVAILABLE}"]
            assert c.at_eof()
        wait_log(sb, rf"mail_max_sessions \({MAX_SESSIONS}\) reached", mark)
        wait_log(sb, r"imap-login: Error: Internal login failure: the session did not start: "
                 r"user=<" + re.escape(ALICE) + r">", mark)
        held.pop().close()          # one session ends: there is room again

        def room():
            with Raw(sb, "imaps") as c:
                c.send(f"a LOGIN {ALICE} {ALICE_PW}\r\n")
                return FAKE.match(c.line() or "")
        wait_until(room, 10, interval=0.3, what="a session after one ended")
    finally:
        for c in held:
            c.close()


# ---- accounts that master's child refuses --------------------------------------------------

def sql(sb, query):
    res = subprocess.run(["mariadb", "--no-defaults", "-S", sb.env["POSTERN_MYSQL_SOCKET"],
                          "-uroot", "--batch", "--skip-column-names", sb.env["POSTERN_DB"]],
                         input=query, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module")
def odd_accounts(sb):
    """user_query now also returns home and uid columns (NULL: the defaults). Carol's home is
    outside the mail root, Dave's is a symbolic link pointing out of it, Erin's uid is below
    minimum_uid. authd is restarted to read the query; the login processes follow it."""
    outside = make_world_dir("postern-imap-outside-")
    link = os.path.join(sb.env["POSTERN_MAIL_ROOT"], DOMAIN, "dave-link")
    os.symlink(outside, link)
    sql(sb, "ALTER TABLE virtual_users ADD COLUMN IF NOT EXISTS home varchar(255) NULL, "
            "ADD COLUMN IF NOT EXISTS uid int NULL;\n"
            f"UPDATE virtual_users SET home='{outside}' WHERE email='{CAROL}';\n"
            f"UPDATE virtual_users SET home='{link}' WHERE email='{DAVE}';\n"
            f"UPDATE virtual_users SET uid=100 WHERE email='{ERIN}';\n")
    sql_conf = os.path.join(sb.env["POSTERN_DIR"], "etc", "sql.conf")
    with open(sql_conf, "a") as f:
        f.write("user_query = SELECT email AS user, home, uid FROM virtual_users "
                "WHERE email='%s'\n")
    old_authd = service_children(sb.master_pid, "authd")[0].pid
    old_logins = [k.pid for s in ("imap", "imaps") for k in service_children(sb.master_pid, s)]
    os.kill(old_authd, signal.SIGTERM)
    wait_until(lambda: [k for k in service_children(sb.master_pid, "authd")
                        if k.pid != old_authd], 10, what="a new authd")
    wait_until(lambda: not any(alive(p) for p in old_logins), 10,
               what="the login processes connected to the old authd to exit")
    yield
    os.unlink(link)
    shutil.rmtree(outside, ignore_errors=True)


@pytest.mark.parametrize("user,pw,why", [
    (CAROL, CAROL_PW, r"home /tmp/postern-imap-outside-\S+ is not below virtual_mailbox_base"),
    (DAVE, DAVE_PW, r"home \S+/dave-link is not a directory \(or is a symbolic link\)"),
    (ERIN, ERIN_PW, r"uid 100 is below minimum_uid 1000"),
])
def test_refused_account_gets_unavailable(sb, odd_accounts, user, pw, why):
    mark = log_mark(sb)
    with Raw(sb, "imaps") as c:
        c.send(f"a LOGIN {user} {pw}\r\nb NOOP\r\n")
        assert c.line() == f"a {UNAVAILABLE}"
        assert c.at_eof()
    wait_log(sb, r"imap: Error: session refused: user=<" + re.escape(user) +
             r">, rip=127\.0\.0\.1, lip=127\.0\.0\.1: " + why, mark)
    # authd's answer was fine: only the re-check refused it, and nothing ran as the user
    assert not log_lines(sb, "imap-login: Info: Login: ", mark)


def test_good_account_still_works_with_the_new_query(sb, odd_accounts):
    with Raw(sb, "imaps") as c:
        c.send(f"a LOGIN {ALICE} {ALICE_PW}\r\n")
        check_session_process(sb, fake_report(c.line()), ALICE)


# ---- master stops its sessions -------------------------------------------------------------

def test_master_stop_terminates_sessions(sb):
    """Last in the module: it stops the sandbox's master."""
    c = Raw(sb, "imaps")
    try:
        c.send(f"a LOGIN {ALICE} {ALICE_PW}\r\n")
        pid = int(fake_report(c.line())["pid"])
        master = sb.master_pid
        os.kill(master, signal.SIGTERM)
        wait_until(lambda: not alive(pid) and not alive(master), 8,
                   what="master and the session to end")
        assert c.at_eof()
        assert "did not stop in time" not in read_text(sb.log)
    finally:
        c.close()
