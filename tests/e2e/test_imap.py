"""test_imap: Postern's IMAP server as mail clients see it (issue 6, "Done means").

One sandbox with delivery enabled; users are made with `postern admin user add`, mail arrives
by SMTP on port 25 or by APPEND, and clients speak to imap-login over IMAPS (993) or 143 with
STARTTLS. The client is Python's imaplib: its own methods for the flows a mail program runs
(login, select, fetch, append, search, copy), and a thin layer on the same connection
(Wire.cmd) that sends exact command lines and returns every untagged response in order, for
the checks that need the wire: response codes, untagged updates, literals, bad input.

Everything is proved from outside: what the client sees, what lies in the Maildir (file
names, dovecot-uidlist, dovecot-keywords), what /proc says about the processes and what
the log says. When a test fails, the IMAP transcripts of its connections and the log lines
written meanwhile are printed with the failure.
"""

import base64
import datetime
import imaplib
import os
import pwd
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import BINDIR, children_of, finish_sandbox, start_sandbox, tls_context, wait_until

DOMAIN = "imap.test"
PASSWORD = "Secret-pw-42"
SPECIAL_USE = {"Drafts": "\\Drafts", "Sent": "\\Sent", "Trash": "\\Trash", "Junk": "\\Junk",
               "Archive": "\\Archive"}
AFTER_LOGIN_CAPS = {"IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "ID", "ENABLE",
                    "UNSELECT", "CHILDREN", "SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS",
                    "CONDSTORE", "ESEARCH", "QUOTA", "LITERAL+", "SASL-IR"}


# ---- the wire: parsing IMAP responses -----------------------------------------------------

class Parser:
    """IMAP data (RFC 3501 §4) into Python: atoms -> str, quoted -> str, literal -> bytes,
    NIL -> None, parenthesised lists -> list. A section like BODY[HEADER.FIELDS (A B)]<0>
    stays one atom."""

    def __init__(self, data):
        self.b = data
        self.i = 0

    def parse(self):
        out = self.items(None)
        return out

    def items(self, closer):
        out = []
        b = self.b
        while self.i < len(b):
            c = b[self.i:self.i + 1]
            if c == b" ":
                self.i += 1
            elif c == b"(":
                self.i += 1
                out.append(self.items(b")"))
            elif c == b")":
                self.i += 1
                if closer == b")":
                    return out
                raise ValueError(f"unbalanced ) at {self.i} in {b!r}")
            elif c == b'"':
                out.append(self.quoted())
            elif c == b"{" or b[self.i:self.i + 2] == b"~{":
                out.append(self.literal())
            else:
                out.append(self.atom())
        if closer is not None:
            raise ValueError(f"missing ) in {b!r}")
        return out

    def quoted(self):
        b, i, out = self.b, self.i + 1, bytearray()
        while i < len(b) and b[i:i + 1] != b'"':
            if b[i:i + 1] == b"\\":
                i += 1
            out += b[i:i + 1]
            i += 1
        if i >= len(b):
            raise ValueError(f"unterminated quoted string in {b!r}")
        self.i = i + 1
        return out.decode("utf-8", "surrogateescape")

    def literal(self):
        m = re.compile(rb"~?\{(\d+)\}\r\n").match(self.b, self.i)
        if not m:
            raise ValueError(f"bad literal at {self.i} in {self.b[:200]!r}")
        n = int(m.group(1))
        data = self.b[m.end():m.end() + n]
        self.i = m.end() + n
        return data

    def atom(self):
        b, i = self.b, self.i
        while i < len(b) and b[i:i + 1] not in (b" ", b"(", b")"):
            if b[i:i + 1] == b"[":
                j = b.index(b"]", i)
                i = j + 1
                continue
            i += 1
        text = b[self.i:i].decode("latin-1")
        self.i = i
        return None if text.upper() == "NIL" else text


def parse_data(data):
    return Parser(data).parse()


def expand_set(text):
    """A sequence set "1:3,7" -> [1, 2, 3, 7] (no '*')."""
    out = []
    for part in str(text).split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            out.extend(range(min(a, b), max(a, b) + 1))
        else:
            out.append(int(part))
    return out


class Resp:
    """One untagged response: kind (EXISTS, FETCH, LIST, OK...), num (for "* N KIND"),
    code (the [CODE ...] of a status response), args (parsed data after the kind)."""

    STATUS = {"OK", "NO", "BAD", "BYE", "PREAUTH"}

    def __init__(self, raw):
        self.raw = raw
        body = raw[2:]
        m = re.match(rb"(\d+) (\S+) ?", body)
        if m:
            self.num, self.kind, rest = int(m.group(1)), m.group(2).decode().upper(), body[m.end():]
        else:
            word, _, rest = body.partition(b" ")
            self.num, self.kind = None, word.decode("latin-1").upper()
        self.rest = rest
        self.code = None
        self.text = rest.decode("utf-8", "replace")
        if self.kind in self.STATUS:
            cm = re.match(r"\[([^\]]*)\]", self.text)
            self.code = cm.group(1) if cm else None
            self.args = None
        else:
            self.args = parse_data(rest)

    def __repr__(self):
        return f"<{self.raw[:200]!r}>"


class Reply:
    """What one command got: the tagged status, its code and text, untagged responses."""

    def __init__(self, tag):
        self.tag = tag
        self.status = None
        self.code = None
        self.text = ""
        self.untagged = []
        self.conts = []
        self.done = False
        self.eof = False

    def add(self, raw):
        if raw.startswith(b"* "):
            self.untagged.append(Resp(raw))
        elif raw.startswith(b"+"):
            self.conts.append(raw)
        elif raw.startswith(self.tag.encode() + b" "):
            rest = raw[len(self.tag) + 1:].decode("utf-8", "replace")
            self.status, _, self.text = rest.partition(" ")
            self.status = self.status.upper()
            m = re.match(r"\[([^\]]*)\]", self.text)
            self.code = m.group(1) if m else None
            self.done = True
        else:
            raise AssertionError(f"response with a foreign tag: {raw[:200]!r}")

    def of(self, kind):
        return [r for r in self.untagged if r.kind == kind]

    def codes(self):
        """Every response code of this command, untagged and tagged."""
        out = [r.code for r in self.untagged if r.code]
        if self.code:
            out.append(self.code)
        return out

    def code_of(self, word):
        for c in self.codes():
            if c.split()[0].upper() == word:
                return c
        return None

    def fetches(self):
        """{seq: {ITEM: value}} from the FETCH responses (several per message merge)."""
        out = {}
        for r in self.of("FETCH"):
            (items,) = r.args
            d = out.setdefault(r.num, {})
            for k, v in zip(items[0::2], items[1::2]):
                d[k.upper()] = v
        return out

    def search(self):
        """The numbers of the SEARCH responses (one list; MODSEQ suffix dropped)."""
        out = []
        for r in self.of("SEARCH"):
            out.extend(int(x) for x in r.args if isinstance(x, str) and x.isdigit())
        return out

    def esearch(self):
        """The ESEARCH response as a dict (TAG, UID: True, MIN, MAX, COUNT, ALL)."""
        (r,) = self.of("ESEARCH")
        args, out = list(r.args), {}
        if args and isinstance(args[0], list):
            out["TAG"] = args.pop(0)[1]
        if args and str(args[0]).upper() == "UID":
            out["UID"] = True
            args.pop(0)
        for k, v in zip(args[0::2], args[1::2]):
            out[k.upper()] = v
        return out

    def lists(self, kind="LIST"):
        """{name: (attributes set, delimiter, extended data)} of LIST / LSUB responses."""
        out = {}
        for r in self.of(kind):
            attrs, delim, name, *ext = r.args
            name = name.decode() if isinstance(name, bytes) else name
            out[name] = ({a.lower() for a in attrs}, delim, ext)
        return out

    def status_items(self):
        """{mailbox: {ITEM: int}} of STATUS responses."""
        out = {}
        for r in self.of("STATUS"):
            name, items = r.args
            name = name.decode() if isinstance(name, bytes) else name
            out[name] = {k.upper(): int(v) for k, v in zip(items[0::2], items[1::2])}
        return out

    def __repr__(self):
        return (f"<{self.tag} {self.status} {self.text!r} untagged={len(self.untagged)}"
                f"{' EOF' if self.eof else ''}>")


class Lit:
    """A literal argument of Wire.cmd: synchronizing, or LITERAL+ when plus."""

    def __init__(self, data, plus=False):
        self.data = data.encode() if isinstance(data, str) else data
        self.plus = plus


CLIENTS = []            # every connection of the running test, for the failure report


class Wire:
    """Mixed into imaplib.IMAP4 / IMAP4_SSL: a transcript of the connection and exact
    commands with every untagged response (imaplib's own methods keep working)."""

    def _start_log(self):
        self.log = []
        self.tx_lock = threading.Lock()
        CLIENTS.append(self)

    def _note(self, who, data):
        with self.tx_lock:
            self.log.append((who, bytes(data)))

    def send(self, data):
        self._note("C", data)
        super().send(data)

    def readline(self):
        line = super().readline()
        self._note("S", line)
        return line

    def read(self, size):
        data = super().read(size)
        self._note("S", data)
        return data

    def transcript(self, last=60):
        out = []
        for who, data in self.log[-last:]:
            text = data.decode("utf-8", "replace")
            if len(text) > 400:
                text = text[:400] + f"... ({len(data)} bytes)"
            out.append(f"{who}: {text.rstrip()}")
        return "\n".join(out)

    def read_response(self):
        """One logical response line, literals included ({n}CRLF + data inline)."""
        line = self._get_line()
        buf = line
        while True:
            m = re.search(rb"\{(\d+)\}$", line)
            if not m:
                return buf
            data = self.read(int(m.group(1)))
            line = self._get_line()
            buf += b"\r\n" + data + line

    def cmd(self, *parts):
        """Send "TAG part part ..." (a Lit is sent as a literal) and read until the tagged
        answer. A synchronizing literal waits for "+"; if the server answers with its tagged
        response instead, the rest is not sent."""
        tag = self._new_tag().decode()
        reply = Reply(tag)
        out = tag.encode()
        try:
            for p in parts:
                out += b" "
                if isinstance(p, Lit):
                    out += b"{%d%s}\r\n" % (len(p.data), b"+" if p.plus else b"")
                    self.send(out)
                    if not p.plus:
                        want = len(reply.conts) + 1
                        while len(reply.conts) < want:
                            reply.add(self.read_response())
                            if reply.done:
                                return reply
                    out = p.data
                else:
                    out += p.encode() if isinstance(p, str) else p
            self.send(out + b"\r\n")
        except imaplib.IMAP4.abort:
            reply.eof = reply.done = True
            return reply
        except OSError:
            pass            # the server stopped reading: what did it say before?
        try:
            while not reply.done:
                reply.add(self.read_response())
        except (imaplib.IMAP4.abort, OSError):
            reply.eof = True
            reply.done = True
        return reply

    def ok(self, *parts):
        """cmd() that must answer OK."""
        r = self.cmd(*parts)
        assert r.status == "OK", f"{' '.join(map(str, parts))[:200]} -> {r}\n{self.transcript(30)}"
        return r

    def read_until_tagged(self, tag, timeout=20):
        """Responses up to the tagged one for tag (after a raw send)."""
        reply = Reply(tag)
        self.sock.settimeout(timeout)
        try:
            while not reply.done:
                reply.add(self.read_response())
        except (imaplib.IMAP4.abort, OSError):
            reply.eof = True
        return reply

    def close_quietly(self):
        try:
            self.shutdown()
        except Exception:
            pass


class Imaps(Wire, imaplib.IMAP4_SSL):
    def __init__(self, sb, timeout=30):
        self._start_log()
        super().__init__("127.0.0.1", sb.ports["imaps"], ssl_context=tls_context(sb.ca),
                         timeout=timeout)


class Imap143(Wire, imaplib.IMAP4):
    def __init__(self, sb, timeout=30):
        self._start_log()
        super().__init__("127.0.0.1", sb.ports["imap"], timeout=timeout)


# ---- users, mail and the sandbox -----------------------------------------------------------

def admin(sb, *args, password=None):
    cmd = [os.path.join(sb.bindir, "postern"), "admin", "-c", sb.conf, *args]
    res = subprocess.run(cmd, input=password, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{args}: {res.stdout}{res.stderr}"
    return res


class User:
    def __init__(self, sb, local):
        self.sb = sb
        self.local = local
        self.addr = f"{local}@{DOMAIN}"
        self.pw = PASSWORD
        self.home = os.path.join(sb.env["POSTERN_MAIL_ROOT"], DOMAIN, local)
        self.maildir = os.path.join(self.home, "Maildir")

    def folder(self, name="INBOX"):
        return self.maildir if name.upper() == "INBOX" else os.path.join(self.maildir, "." + name)

    def files(self, name="INBOX", sub=("new", "cur")):
        """{subdir/basename: path} of the message files of a folder."""
        out = {}
        for s in sub:
            d = os.path.join(self.folder(name), s)
            if os.path.isdir(d):
                for n in os.listdir(d):
                    out[f"{s}/{n}"] = os.path.join(d, n)
        return out

    def login(self, how="imaps"):
        c = Imaps(self.sb) if how == "imaps" else Imap143(self.sb)
        if how == "starttls":
            c.starttls(ssl_context=tls_context(self.sb.ca))
        typ, data = c.login(self.addr, self.pw)
        assert typ == "OK", f"login {self.addr}: {typ} {data}\n{c.transcript()}"
        return c


_COUNTER = [0]


def make_user(sb, prefix="u"):
    _COUNTER[0] += 1
    u = User(sb, f"{prefix}{_COUNTER[0]}")
    admin(sb, "user", "add", u.addr, "--password-stdin", password=PASSWORD + "\n")
    return u


def chown_vmail(path):
    pw = pwd.getpwnam("vmail")
    os.chown(path, pw.pw_uid, pw.pw_gid)


def message(subject, body="Hello.\r\n", mid=None, frm="Sender <sender@example.org>",
            to=None, extra="", date="Tue, 14 Nov 2023 10:20:30 +0100"):
    """A simple RFC 5322 message with CRLF line ends; (bytes, Message-ID)."""
    mid = mid or f"<{time.time_ns()}.{abs(hash(subject)) % 10**6}@test.example>"
    to = to or f"rcpt@{DOMAIN}"
    head = (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n"
            f"Message-ID: {mid}\r\n{extra}")
    return (head + "\r\n" + body).encode(), mid


def smtp_send(sb, rcpt, data, sender="someone@example.org"):
    with smtplib.SMTP("127.0.0.1", sb.ports["smtp"], timeout=30) as s:
        s.sendmail(sender, [rcpt], data)


def find_file(user, mid, folder="INBOX"):
    for _, path in user.files(folder).items():
        try:
            with open(path, "rb") as f:
                if mid.encode() in f.read():
                    return path
        except FileNotFoundError:
            pass
    return None


def deliver(sb, user, data, mid, timeout=30):
    """Send data to user by SMTP and wait until it is in the Maildir; the file's path."""
    smtp_send(sb, user.addr, data)
    return wait_until(lambda: find_file(user, mid), timeout, what=f"{mid} in {user.addr}'s Maildir")


def internaldate(text):
    return datetime.datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S %z")


def caps_of(text):
    return {c.upper() for c in text.split()}


def session_procs(sb, user=None):
    """postern-imap session processes (children of master), optionally of one user."""
    out = []
    for info in children_of(sb.master_pid):
        args = info.cmdline
        if not args or os.path.basename(args[0]) != "postern-imap":
            continue
        if user is None or any(a == "-U" and b == user.addr for a, b in zip(args, args[1:])):
            out.append(info)
    return out


# ---- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sb():
    for prog in ("postern-master", "postern-imap-login", "postern-imap"):
        if not os.access(os.path.join(BINDIR, prog), os.X_OK):
            pytest.fail(f"{BINDIR}/{prog} is missing: run `make all` first")
    box = start_sandbox("postern-imap-", ["qmgr_enable=yes"])
    try:
        admin(box, "domain", "add", DOMAIN)
    except BaseException:
        finish_sandbox(box)
        raise
    yield box
    finish_sandbox(box)


@pytest.fixture(autouse=True)
def evidence(request):
    """Print the IMAP transcripts and the new log lines: pytest shows them on failure."""
    CLIENTS.clear()
    box = request.getfixturevalue("sb") if "sb" in request.fixturenames else None
    start = os.path.getsize(box.log) if box and os.path.exists(box.log) else 0
    yield
    for c in CLIENTS:
        print(f"==== IMAP transcript ({type(c).__name__})\n{c.transcript(200)}")
        c.close_quietly()
    CLIENTS.clear()
    if box:
        with open(box.log, "rb") as f:
            f.seek(start)
            print("==== log lines written during the test\n" +
                  f.read().decode(errors="replace")[-20000:])


@pytest.fixture
def user(sb):
    return make_user(sb)


def as_bytes(v):
    if v is None or isinstance(v, bytes):
        return v
    return v.encode("utf-8", "surrogateescape")


def as_str(v):
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def flags_of(item):
    return {f.lower() for f in item["FLAGS"]} - {"\\recent"}


def expect_log(sb, pattern, timeout=5):
    """Wait until the sandbox log has a line matching pattern; the match."""
    rx = re.compile(pattern, re.M)
    return wait_until(lambda: rx.search(sb.log_text()), timeout, what=f"log line /{pattern}/")


# ---- logging in ----------------------------------------------------------------------------

def test_login_over_imaps_and_capability_after_login(sb, user):
    c = Imaps(sb)
    assert c.welcome.startswith(b"* OK"), c.welcome
    pre = set(c.capabilities)
    assert {"IMAP4REV1", "AUTH=PLAIN", "SASL-IR", "ID"} <= pre, pre
    assert "LOGINDISABLED" not in pre and "STARTTLS" not in pre, pre
    typ, data = c.login(user.addr, user.pw)
    assert typ == "OK", data
    # the new capabilities come as the OK's code or as an untagged CAPABILITY (RFC 3501 §6.2.3)
    m = re.match(rb"\[CAPABILITY ([^\]]*)\]", data[0])
    told = m.group(1) if m else b" ".join(c.untagged_responses.get("CAPABILITY", []))
    assert AFTER_LOGIN_CAPS <= caps_of(told.decode()), f"after LOGIN: {data}, untagged {told}"
    (cap,) = c.ok("CAPABILITY").of("CAPABILITY")
    caps = {a.upper() for a in cap.args}
    assert AFTER_LOGIN_CAPS <= caps, f"missing after login: {AFTER_LOGIN_CAPS - caps}"
    assert not [x for x in caps if x.startswith("AUTH=") or x in ("STARTTLS", "LOGINDISABLED")], \
        caps
    assert c.cmd("LOGIN", user.addr, user.pw).status == "BAD"       # already logged in
    c.ok("SELECT INBOX")


def test_authenticate_plain_with_imaplib(sb, user):
    c = Imaps(sb)
    typ, data = c.authenticate("PLAIN", lambda _: f"\0{user.addr}\0{user.pw}".encode())
    assert typ == "OK", data
    assert c.ok("SELECT INBOX").code == "READ-WRITE"


def test_authenticate_plain_with_initial_response_and_login_mechanism(sb, user):
    c = Imaps(sb)
    assert c.ok("AUTHENTICATE PLAIN", b64(f"\0{user.addr}\0{user.pw}")).status == "OK"
    c.ok("NAMESPACE")
    d = Imaps(sb)
    assert "AUTH=LOGIN" in d.capabilities, d.capabilities
    tag = d._new_tag().decode()
    d.send(f"{tag} AUTHENTICATE LOGIN\r\n".encode())
    prompt = d.read_response()
    assert prompt.startswith(b"+ "), prompt
    assert base64.b64decode(prompt[2:]).lower().startswith(b"username"), prompt
    d.send(b64(user.addr).encode() + b"\r\n")
    prompt = d.read_response()
    assert prompt.startswith(b"+ ") and base64.b64decode(prompt[2:]).lower().startswith(
        b"password"), prompt
    d.send(b64(user.pw).encode() + b"\r\n")
    r = d.read_until_tagged(tag)
    assert r.status == "OK", r
    d.ok("SELECT INBOX")


def test_wrong_password_is_refused_slowly_then_right_one_works(sb, user):
    c = Imaps(sb)
    t0 = time.monotonic()
    r = c.cmd("LOGIN", user.addr, "wrong-password")
    took = time.monotonic() - t0
    assert r.status == "NO" and r.code == "AUTHENTICATIONFAILED", r
    assert took >= 0.4, f"failure answered after {took:.2f} s: no failure delay"
    r2 = c.cmd("LOGIN", f"nobody-here@{DOMAIN}", "x")
    assert r2.status == "NO" and r2.code == "AUTHENTICATIONFAILED", r2
    assert r2.text == r.text, "unknown user and wrong password must look alike"
    typ, _ = c.login(user.addr, user.pw)
    assert typ == "OK"
    c.ok("SELECT INBOX")


def test_dovecot_style_log_lines_for_login_and_failure(sb, user, tmp_path):
    c = user.login()
    c.ok("SELECT INBOX")
    c.logout()
    addr = re.escape(user.addr)
    expect_log(sb, rf"imap-login: (?:Info: )?Login: user=<{addr}>, method=PLAIN, "
                   rf"rip=127\.0\.0\.1, lip=127\.0\.0\.1, mpid=\d+, TLS")
    expect_log(sb, rf"imap\({addr}\)<\d+>\S*: (?:Info: )?Disconnected: Logged out "
                   rf"in=\d+ out=\d+")
    bad = Imaps(sb)
    assert bad.cmd("LOGIN", user.addr, "guess-1").status == "NO"
    bad.shutdown()
    m = expect_log(sb, rf"^.*imap-login: (?:Info: )?(?:Disconnected|Aborted login)"
                       rf"(?::(?: [^ (]+)+)? \(auth failed, "
                       rf"1 attempts in \d+ secs\): user=<{addr}>, method=PLAIN, "
                       rf"rip=127\.0\.0\.1, lip=127\.0\.0\.1, TLS.*$")
    one = tmp_path / "imap-login.log"
    one.write_text(m.group(0) + "\n")
    res = subprocess.run(["fail2ban-regex", str(one), "/etc/fail2ban/filter.d/dovecot.conf"],
                         capture_output=True, text=True, timeout=60)
    found = re.search(r"^Failregex: (\d+) total", res.stdout, re.M)
    assert found and int(found.group(1)) == 1, \
        f"fail2ban's dovecot filter does not match {m.group(0)!r}:\n{res.stdout}{res.stderr}"


def test_port_143_wants_starttls_before_any_password(sb, user):
    c = Imap143(sb)
    pre = set(c.capabilities)
    assert "STARTTLS" in pre and "LOGINDISABLED" in pre, pre
    assert "AUTH=PLAIN" not in pre, pre
    assert c.cmd("LOGIN", user.addr, user.pw).status in ("NO", "BAD")
    assert c.cmd("AUTHENTICATE PLAIN", b64(f"\0{user.addr}\0{user.pw}")).status in ("NO", "BAD")
    assert c.cmd("SELECT INBOX").status in ("NO", "BAD")
    typ, _ = c.starttls(ssl_context=tls_context(sb.ca))
    assert typ == "OK"
    post = set(c.capabilities)
    assert "LOGINDISABLED" not in post and "STARTTLS" not in post and "AUTH=PLAIN" in post, post
    typ, _ = c.login(user.addr, user.pw)
    assert typ == "OK"
    c.ok("SELECT INBOX")
    c.logout()
    expect_log(sb, rf"imap-login: (?:Info: )?Login: user=<{re.escape(user.addr)}>, "
                   rf"method=PLAIN, rip=127\.0\.0\.1, lip=127\.0\.0\.1, mpid=\d+, TLS")


def raw_line(sock):
    """One line from a socket, byte by byte (nothing beyond it is consumed)."""
    out = b""
    while not out.endswith(b"\n"):
        ch = sock.recv(1)
        if not ch:
            break
        out += ch
    return out


def test_commands_pipelined_after_starttls_are_discarded(sb):
    raw = socket.create_connection(("127.0.0.1", sb.ports["imap"]), timeout=10)
    greeting = raw_line(raw)
    assert greeting.startswith(b"* OK"), greeting
    raw.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
    line = raw_line(raw)
    assert line.startswith(b"a OK"), line
    raw.settimeout(1.0)
    try:
        extra = raw.recv(4096, socket.MSG_PEEK)
    except (socket.timeout, TimeoutError):
        extra = b""
    assert extra[:1] in (b"", b"\x16"), f"clear-text bytes after STARTTLS's OK: {extra!r}"
    raw.settimeout(10)
    tls = tls_context(sb.ca).wrap_socket(raw, server_hostname="127.0.0.1")
    tls.sendall(b"c NOOP\r\n")
    got = b""
    while b"c OK" not in got and b"c BAD" not in got:
        chunk = tls.recv(4096)
        if not chunk:
            break
        got += chunk
    lines = got.split(b"\r\n")
    assert lines[0].startswith(b"c OK"), f"the injected command was answered: {got!r}"
    tls.close()


def test_id_namespace_enable_noop_and_logout(sb, user):
    c = Imaps(sb)
    r = c.ok('ID ("name" "pytest" "version" "1")')        # before login (imap-login)
    assert len(r.of("ID")) == 1
    c.login(user.addr, user.pw)
    r = c.ok('ID ("name" "pytest")')
    (idr,) = r.of("ID")
    assert idr.args[0] is None or isinstance(idr.args[0], list), idr
    assert c.ok("ID NIL").of("ID")
    (ns,) = c.ok("NAMESPACE").of("NAMESPACE")
    personal, other, shared = ns.args
    assert personal == [["", "."]], ns
    assert other is None and shared is None, ns
    (en,) = c.ok("ENABLE CONDSTORE").of("ENABLED")
    assert [a.upper() for a in en.args] == ["CONDSTORE"], en
    en = c.ok("ENABLE X-NO-SUCH-EXTENSION").of("ENABLED")
    assert all(e.args == [] for e in en), f"enabled an unknown extension: {en}"
    c.ok("NOOP")
    assert c.cmd("CHECK").status == "BAD", "CHECK needs a selected mailbox"
    assert c.cmd("FETCH 1 FLAGS").status == "BAD", "FETCH needs a selected mailbox"
    r = c.ok("LOGOUT")
    assert r.of("BYE"), r
    c.sock.settimeout(5)
    try:
        rest = c.sock.recv(100)
    except (ssl.SSLError, ConnectionResetError):
        rest = b""
    assert rest == b"", f"connection still open after LOGOUT: {rest!r}"


# ---- SELECT, EXAMINE and what a delivered message looks like -------------------------------

def uids_of(c):
    """The UIDs of the selected mailbox in sequence order."""
    f = c.ok("FETCH 1:* (UID)").fetches()
    return [int(f[s]["UID"]) for s in sorted(f)]


def permanent_flags(reply):
    code = reply.code_of("PERMANENTFLAGS") or ""
    m = re.match(r"PERMANENTFLAGS \((.*)\)$", code)
    return {x.lower() for x in m.group(1).split()} if m else set()


def code_num(reply, word):
    code = reply.code_of(word)
    assert code, f"no [{word} ...] in {reply.codes()}"
    return int(code.split()[1])


def test_select_and_examine_responses(sb, user):
    m1, mid1 = message("first")
    m2, mid2 = message("second")
    deliver(sb, user, m1, mid1)
    deliver(sb, user, m2, mid2)
    assert all(k.startswith("new/") for k in user.files()), user.files()
    c = user.login()
    r = c.ok("EXAMINE INBOX")
    assert r.code == "READ-ONLY", r
    assert [x.num for x in r.of("EXISTS")] == [2]
    (fl,) = r.of("FLAGS")
    assert {"\\answered", "\\flagged", "\\deleted", "\\seen", "\\draft"} <= \
        {f.lower() for f in fl.args[0]}, fl
    assert "\\*" not in permanent_flags(r), "read-only but \\* permitted"
    uidvalidity = code_num(r, "UIDVALIDITY")
    uidnext = code_num(r, "UIDNEXT")
    assert uidvalidity > 0
    seen_uids = uids_of(c)
    assert len(set(seen_uids)) == 2 and max(seen_uids) < uidnext, (seen_uids, uidnext)
    assert all(k.startswith("new/") for k in user.files()), "EXAMINE moved files to cur/"
    c.ok("UNSELECT")

    r = c.ok("SELECT INBOX")
    assert r.code == "READ-WRITE", r
    assert [x.num for x in r.of("EXISTS")] == [2]
    assert [x.num for x in r.of("RECENT")] == [2]
    assert "\\*" in permanent_flags(r), r.codes()
    assert code_num(r, "UNSEEN") == 1
    assert code_num(r, "UIDVALIDITY") == uidvalidity
    assert code_num(r, "UIDNEXT") == uidnext
    assert uids_of(c) == seen_uids, "UIDs changed between EXAMINE and SELECT"
    files = user.files()
    assert files and all(re.match(r"cur/[^:]+:2,$", k) for k in files), files

    d = user.login()
    r = d.ok("SELECT INBOX")
    assert [x.num for x in r.of("EXISTS")] == [2]
    assert [x.num for x in r.of("RECENT")] == [0], "\\Recent seen by two sessions"
    assert uids_of(d) == seen_uids
    r = d.cmd("SELECT NoSuchFolder")
    assert r.status == "NO", r
    assert d.cmd("NOOP").status == "OK"


SIMPLE_MID = "<simple-multipart@test.example>"
NESTED_MID = "<nested-multipart@test.example>"
PDF = base64.encodebytes(b"%PDF-1.4\n% fake pdf for a test\n" + bytes(range(256)) * 2).decode()
SIMPLE_TEXT = "Hello Reader,\r\nplease find the report attached.\r\n"


def simple_multipart(to):
    pdf = PDF.replace("\n", "\r\n")
    return (
        'From: "Alice Example" <alice@example.org>\r\n'
        f"To: Reader <{to}>\r\n"
        "Cc: cc@example.com\r\n"
        "Subject: Report with attachment\r\n"
        "Date: Tue, 14 Nov 2023 10:20:30 +0100\r\n"
        f"Message-ID: {SIMPLE_MID}\r\n"
        "In-Reply-To: <earlier@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="XYZ-boundary"\r\n'
        "\r\n"
        "This is a multi-part message in MIME format.\r\n"
        "--XYZ-boundary\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 7bit\r\n"
        "\r\n"
        f"{SIMPLE_TEXT}"
        "--XYZ-boundary\r\n"
        'Content-Type: application/pdf; name="report.pdf"\r\n'
        'Content-Disposition: attachment; filename="report.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        f"{pdf}"
        "--XYZ-boundary--\r\n").encode()


def nested_multipart(to):
    return (
        'From: "Bob Builder" <bob@example.net>\r\n'
        f'To: {to}, "Second, Person" <second@example.com>\r\n'
        "Subject: Nested structure\r\n"
        "Date: Wed, 15 Nov 2023 08:00:00 +0000\r\n"
        f"Message-ID: {NESTED_MID}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="outer"\r\n'
        "\r\n"
        "--outer\r\n"
        'Content-Type: multipart/alternative; boundary="inner"\r\n'
        "\r\n"
        "--inner\r\n"
        "Content-Type: text/plain; charset=iso-8859-1\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "Gr=FC=DFe!\r\n"
        "--inner\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "\r\n"
        "<p>Gr&uuml;&szlig;e!</p>\r\n"
        "--inner--\r\n"
        "\r\n"
        "--outer\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        "From: inner@example.com\r\n"
        "To: bob@example.net\r\n"
        "Subject: Inner message\r\n"
        "Date: Mon, 13 Nov 2023 07:00:00 +0000\r\n"
        "Message-ID: <inner@example.com>\r\n"
        "\r\n"
        "Inner body line 1\r\n"
        "Inner body line 2\r\n"
        "--outer\r\n"
        "Content-Type: application/octet-stream; name*=utf-8''na%C3%AFve.txt\r\n"
        "Content-Disposition: attachment; filename*=utf-8''na%C3%AFve.txt\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "SGVsbG8K\r\n"
        "--outer--\r\n").encode()


@pytest.fixture(scope="module")
def reader(sb):
    """A user with the two multipart messages above, delivered by SMTP (read with EXAMINE
    only, so nothing changes them)."""
    u = make_user(sb, "reader")
    u.sent = {SIMPLE_MID: simple_multipart(u.addr), NESTED_MID: nested_multipart(u.addr)}
    for mid, data in u.sent.items():
        deliver(sb, u, data, mid)
    return u


def examine_reader(reader):
    c = reader.login()
    c.ok("EXAMINE INBOX")
    f = c.ok("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])").fetches()
    seqs = {}
    for seq, items in f.items():
        hdr = as_bytes(items["BODY[HEADER.FIELDS (MESSAGE-ID)]"]).decode()
        seqs[hdr.split(":", 1)[1].strip()] = seq
    assert set(seqs) == {SIMPLE_MID, NESTED_MID}, f
    return c, seqs


def test_delivered_message_size_date_and_bytes(sb, reader):
    c, seqs = examine_reader(reader)
    seq = seqs[SIMPLE_MID]
    path = find_file(reader, SIMPLE_MID)
    with open(path, "rb") as fh:
        on_disk = fh.read()
    mtime = os.stat(path).st_mtime
    f = c.ok(f"FETCH {seq} (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])").fetches()[seq]
    body = as_bytes(f["BODY[]"])
    sent = reader.sent[SIMPLE_MID]
    assert body == on_disk.replace(b"\n", b"\r\n"), "BODY[] is not the stored file with CRLF"
    assert body.endswith(sent), "the message as sent is not the tail of BODY[]"
    added = body[:-len(sent)].decode()
    names = [h.split(":", 1)[0].lower() for h in re.split(r"\r\n(?![ \t])", added) if h]
    assert set(names) == {"return-path", "delivered-to", "received"}, added
    assert added.startswith("Return-Path: <someone@example.org>\r\n"), added
    assert f"Delivered-To: {reader.addr}\r\n" in added, added
    size = int(f["RFC822.SIZE"])
    assert size == len(body) == len(on_disk) + on_disk.count(b"\n")
    m = re.search(r",W=(\d+)", os.path.basename(path))
    assert m and int(m.group(1)) == size, f"W= of {os.path.basename(path)} vs RFC822.SIZE {size}"
    when = internaldate(f["INTERNALDATE"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - when).total_seconds()) < 600, f"INTERNALDATE {f['INTERNALDATE']}"
    assert abs(when.timestamp() - mtime) <= 1, "INTERNALDATE is not the file's mtime (Dovecot)"
    assert "\\seen" not in flags_of(f)


def envelope_addrs(v):
    return None if v is None else [tuple(as_str(x) for x in a) for a in v]


def test_envelope(sb, reader):
    c, seqs = examine_reader(reader)
    f = c.ok(f"FETCH {seqs[SIMPLE_MID]},{seqs[NESTED_MID]} ENVELOPE").fetches()
    env = [as_str(x) if not isinstance(x, list) else x for x in f[seqs[SIMPLE_MID]]["ENVELOPE"]]
    date, subject, frm, sender, reply_to, to, cc, bcc, in_reply_to, message_id = env
    assert date == "Tue, 14 Nov 2023 10:20:30 +0100"
    assert subject == "Report with attachment"
    alice = [("Alice Example", None, "alice", "example.org")]
    assert envelope_addrs(frm) == alice
    assert envelope_addrs(sender) == alice, "Sender defaults to From"
    assert envelope_addrs(reply_to) == alice, "Reply-To defaults to From"
    assert envelope_addrs(to) == [("Reader", None, reader.local, DOMAIN)]
    assert envelope_addrs(cc) == [(None, None, "cc", "example.com")]
    assert bcc is None
    assert in_reply_to == "<earlier@example.org>"
    assert message_id == SIMPLE_MID
    env2 = f[seqs[NESTED_MID]]["ENVELOPE"]
    assert envelope_addrs(env2[5]) == [(None, None, reader.local, DOMAIN),
                                       ("Second, Person", None, "second", "example.com")]
    assert env2[8] is None


def params(v):
    """A body parameter list ("K" "V" ...) as a dict with lower-case keys."""
    if v is None:
        return {}
    return {as_str(k).lower(): as_str(x) for k, x in zip(v[0::2], v[1::2])}


def split_multipart(bs):
    """(parts, subtype, extension data) of a multipart body structure."""
    n = 0
    while n < len(bs) and isinstance(bs[n], list):
        n += 1
    return bs[:n], as_str(bs[n]), bs[n + 1:]


def lines_ok(value, body):
    """A text part's line count: RFC 2046 gives the last CRLF to the boundary, so both
    counting conventions of real servers are accepted."""
    lf = body.count(b"\n")
    return int(value) in (lf, lf + 1)


def test_bodystructure_of_a_multipart_with_attachment(sb, reader):
    c, seqs = examine_reader(reader)
    seq = seqs[SIMPLE_MID]
    f = c.ok(f"FETCH {seq} (BODYSTRUCTURE BODY BODY.PEEK[1] BODY.PEEK[2])").fetches()[seq]
    parts, subtype, ext = split_multipart(f["BODYSTRUCTURE"])
    assert subtype.upper() == "MIXED"
    assert params(ext[0]) == {"boundary": "XYZ-boundary"}, ext
    assert len(parts) == 2, parts
    text, pdf = parts
    assert [as_str(x).upper() for x in text[:2]] == ["TEXT", "PLAIN"]
    assert params(text[2]) == {"charset": "utf-8"}
    assert text[3] is None and text[4] is None
    assert as_str(text[5]).upper() == "7BIT"
    part1 = as_bytes(f["BODY[1]"])
    assert part1 == SIMPLE_TEXT.encode()[:-2], f"BODY[1] = {part1!r}"
    assert int(text[6]) == len(part1)
    assert lines_ok(text[7], part1), text
    assert [as_str(x).upper() for x in pdf[:2]] == ["APPLICATION", "PDF"]
    assert params(pdf[2]) == {"name": "report.pdf"}
    assert as_str(pdf[5]).upper() == "BASE64"
    part2 = as_bytes(f["BODY[2]"])
    assert part2 == PDF.replace("\n", "\r\n").encode()[:-2]
    assert int(pdf[6]) == len(part2)
    dsp = pdf[8]      # type subtype params id desc enc size | md5 disposition ...
    assert as_str(dsp[0]).lower() == "attachment", pdf
    assert params(dsp[1]) == {"filename": "report.pdf"}, pdf
    body = f["BODY"]     # the non-extensible form: no extension data
    bparts, bsub, bext = split_multipart(body)
    assert bsub.upper() == "MIXED" and bext == [] and len(bparts) == 2, body
    assert len(bparts[1]) == 7, bparts[1]


def decoded_param(ps, name):
    """A parameter's value whether the server decoded RFC 2231 or passed it on."""
    if name in ps:
        return ps[name]
    raw = ps.get(name + "*")
    if raw and raw.lower().startswith("utf-8''"):
        return urllib.parse.unquote(raw[7:])
    return raw


def test_bodystructure_of_nested_multiparts_and_message_rfc822(sb, reader):
    c, seqs = examine_reader(reader)
    seq = seqs[NESTED_MID]
    f = c.ok(f"FETCH {seq} (BODYSTRUCTURE BODY.PEEK[1.1] BODY.PEEK[1.2] BODY.PEEK[2] "
             f"BODY.PEEK[2.HEADER.FIELDS (SUBJECT)] BODY.PEEK[2.TEXT] BODY.PEEK[3] "
             f"BODY.PEEK[3.MIME])").fetches()[seq]
    parts, subtype, _ = split_multipart(f["BODYSTRUCTURE"])
    assert subtype.upper() == "MIXED" and len(parts) == 3, f["BODYSTRUCTURE"]
    alt, rfc822, octet = parts
    alt_parts, alt_sub, alt_ext = split_multipart(alt)
    assert alt_sub.upper() == "ALTERNATIVE" and params(alt_ext[0]) == {"boundary": "inner"}
    plain, html = alt_parts
    assert [as_str(x).upper() for x in plain[:2]] == ["TEXT", "PLAIN"]
    assert params(plain[2]) == {"charset": "iso-8859-1"}
    assert as_str(plain[5]).upper() == "QUOTED-PRINTABLE"
    assert as_bytes(f["BODY[1.1]"]) == b"Gr=FC=DFe!"
    assert int(plain[6]) == 10 and lines_ok(plain[7], b"Gr=FC=DFe!")
    assert [as_str(x).upper() for x in html[:2]] == ["TEXT", "HTML"]
    assert as_bytes(f["BODY[1.2]"]) == b"<p>Gr&uuml;&szlig;e!</p>"

    assert [as_str(x).upper() for x in rfc822[:2]] == ["MESSAGE", "RFC822"]
    inner = as_bytes(f["BODY[2]"])
    assert inner.startswith(b"From: inner@example.com\r\n") and \
        inner.endswith(b"Inner body line 2"), inner
    assert int(rfc822[6]) == len(inner)
    inner_env, inner_body, inner_lines = rfc822[7], rfc822[8], rfc822[9]
    assert as_str(inner_env[1]) == "Inner message"
    assert envelope_addrs(inner_env[2]) == [(None, None, "inner", "example.com")]
    assert [as_str(x).upper() for x in inner_body[:2]] == ["TEXT", "PLAIN"]
    assert lines_ok(inner_lines, inner)
    assert as_bytes(f["BODY[2.HEADER.FIELDS (SUBJECT)]"]) == b"Subject: Inner message\r\n\r\n"
    assert as_bytes(f["BODY[2.TEXT]"]) == b"Inner body line 1\r\nInner body line 2"

    assert [as_str(x).upper() for x in octet[:2]] == ["APPLICATION", "OCTET-STREAM"]
    assert decoded_param(params(octet[2]), "name") == "naïve.txt", octet[2]
    dsp = octet[8]
    assert as_str(dsp[0]).lower() == "attachment"
    assert decoded_param(params(dsp[1]), "filename") == "naïve.txt", dsp
    assert as_bytes(f["BODY[3]"]) == b"SGVsbG8K"
    mime = as_bytes(f["BODY[3.MIME]"])
    assert mime.startswith(b"Content-Type: application/octet-stream") and \
        mime.endswith(b"base64\r\n\r\n"), mime


def test_body_sections_partials_and_rfc822_items(sb, reader):
    c, seqs = examine_reader(reader)
    seq = seqs[SIMPLE_MID]
    full = as_bytes(c.ok(f"FETCH {seq} (BODY.PEEK[])").fetches()[seq]["BODY[]"])
    head, _, text = full.partition(b"\r\n\r\n")
    f = c.ok(f"FETCH {seq} (BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[]<0.10> "
             f"BODY.PEEK[]<20.15> BODY.PEEK[HEADER] BODY.PEEK[TEXT] RFC822.HEADER "
             f"BODY.PEEK[HEADER.FIELDS.NOT (RECEIVED RETURN-PATH)] BODY.PEEK[1.MIME] "
             f"BODY.PEEK[1]<6.6>)").fetches()[seq]
    assert as_bytes(f["BODY[HEADER.FIELDS (SUBJECT)]"]) == \
        b"Subject: Report with attachment\r\n\r\n"
    assert as_bytes(f["BODY[]<0>"]) == full[:10]
    assert as_bytes(f["BODY[]<20>"]) == full[20:35]
    assert as_bytes(f["BODY[HEADER]"]) == head + b"\r\n\r\n"
    assert as_bytes(f["RFC822.HEADER"]) == head + b"\r\n\r\n"
    assert as_bytes(f["BODY[TEXT]"]) == text
    notx = as_bytes(f["BODY[HEADER.FIELDS.NOT (RECEIVED RETURN-PATH)]"])
    assert b"Received:" not in notx and b"Return-Path:" not in notx and b"Subject:" in notx
    assert as_bytes(f["BODY[1.MIME]"]) == (b"Content-Type: text/plain; charset=utf-8\r\n"
                                           b"Content-Transfer-Encoding: 7bit\r\n\r\n")
    assert as_bytes(f["BODY[1]<6>"]) == SIMPLE_TEXT.encode()[6:12]
    f = c.ok(f"FETCH {seq} (RFC822.TEXT RFC822)").fetches()[seq]
    assert as_bytes(f["RFC822.TEXT"]) == text and as_bytes(f["RFC822"]) == full
    # EXAMINE: reading the body does not set \Seen
    assert "\\seen" not in flags_of(c.ok(f"FETCH {seq} FLAGS").fetches()[seq])


def test_fetch_of_one_item_without_parentheses(sb, reader):
    """RFC 3501 §6.4.5: a single fetch-att needs no parentheses; imaplib's fetch(), like many
    clients, sends it that way."""
    c, seqs = examine_reader(reader)
    seq = seqs[SIMPLE_MID]
    wrong = []
    for item, key in (("BODY.PEEK[]", "BODY[]"), ("BODY.PEEK[1]", "BODY[1]"),
                      ("BODY.PEEK[HEADER]", "BODY[HEADER]"), ("BODYSTRUCTURE", "BODYSTRUCTURE"),
                      ("RFC822.SIZE", "RFC822.SIZE"), ("BODY.PEEK[]<0.10>", "BODY[]<0>")):
        r = c.cmd(f"FETCH {seq} {item}")
        if r.status != "OK" or key not in r.fetches().get(seq, {}):
            wrong.append(f"FETCH {seq} {item} -> {r.status} {r.text}")
    c.select("INBOX", readonly=True)        # imaplib's own state, for its fetch()
    try:
        typ, data = c.fetch(str(seq), "BODY.PEEK[]")
    except imaplib.IMAP4.error as e:
        typ, data = "BAD", [str(e)]
    if typ != "OK" or not isinstance(data[0], tuple) or data[0][1] != \
            as_bytes(c.ok(f"FETCH {seq} (BODY.PEEK[])").fetches()[seq]["BODY[]"]):
        wrong.append(f"imaplib fetch({seq}, 'BODY.PEEK[]') -> {typ} {str(data)[:200]}")
    assert not wrong, "\n".join(wrong)


def test_body_peek_leaves_seen_alone_and_body_sets_it(sb, user):
    data, mid = message("to be read", "Line one\r\nLine two\r\n")
    deliver(sb, user, data, mid)
    c = user.login()
    c.ok("SELECT INBOX")
    f = c.ok("FETCH 1 (BODY.PEEK[] BODY.PEEK[TEXT])").fetches()[1]
    assert "FLAGS" not in f, "BODY.PEEK reported a flag change"
    assert "\\seen" not in flags_of(c.ok("FETCH 1 FLAGS").fetches()[1])
    r = c.ok("FETCH 1 (BODY[TEXT])")
    f = r.fetches()[1]
    assert as_bytes(f["BODY[TEXT]"]) == b"Line one\r\nLine two\r\n"
    assert "FLAGS" in f and "\\seen" in flags_of(f), "BODY[] must report the new \\Seen flag"
    assert "\\seen" in flags_of(c.ok("FETCH 1 FLAGS").fetches()[1])
    c.ok("STORE 1 -FLAGS (\\Seen)")
    f = c.ok("FETCH 1 RFC822").fetches()[1]
    assert "\\seen" in flags_of(f), "RFC822 sets \\Seen too"
    c.logout()
    files = user.files()
    assert len(files) == 1 and re.search(r":2,[A-Z]*S", list(files)[0]), files


# ---- folders -------------------------------------------------------------------------------

def is_maildir(path):
    return all(os.path.isdir(os.path.join(path, s)) for s in ("cur", "new", "tmp"))


def append_msg(c, folder, subject, flags="", body="Body.\r\n"):
    """APPEND a small message; (uid, Message-ID, bytes)."""
    data, mid = message(subject, body)
    r = c.ok(f"APPEND {folder}" + (f" ({flags})" if flags else ""), Lit(data))
    code = r.code_of("APPENDUID")
    assert code, f"APPEND without APPENDUID: {r}"
    return int(code.split()[2]), mid, data


def test_create_nested_and_list_with_wildcards(sb, user):
    c = user.login()
    c.ok("CREATE Projects.2024.Q1")         # the parents are implied (RFC 3501 §6.3.3)
    c.ok("CREATE Projects.Notes")
    for name in ("Projects.2024.Q1", "Projects.Notes"):
        assert is_maildir(user.folder(name)), f"no Maildir++ folder .{name} on disk"
    top = c.ok('LIST "" "%"').lists()
    assert {"INBOX", "Projects", *SPECIAL_USE} <= set(top), top
    assert not [n for n in top if "." in n], f"% matched below the top level: {top}"
    assert "\\haschildren" in top["Projects"][0], top["Projects"]
    assert "\\hasnochildren" in top["Drafts"][0], top["Drafts"]
    assert all(v[1] == "." for v in top.values())
    sub = c.ok('LIST "" "Projects.%"').lists()
    assert set(sub) == {"Projects.2024", "Projects.Notes"}, sub
    assert "\\haschildren" in sub["Projects.2024"][0]
    assert "\\hasnochildren" in sub["Projects.Notes"][0]
    deep = c.ok('LIST "" "Projects*"').lists()
    assert set(deep) == {"Projects", "Projects.2024", "Projects.2024.Q1", "Projects.Notes"}, deep
    everything = c.ok('LIST "" "*"').lists()
    assert set(deep) | set(top) <= set(everything)
    (root,) = c.ok('LIST "" ""').of("LIST")
    assert root.args[1] == "." and "\\noselect" in {a.lower() for a in root.args[0]}, root
    assert set(c.ok('LIST "" "inbox"').lists()) == {"INBOX"}
    assert c.cmd("CREATE Projects.Notes").status == "NO"
    assert c.cmd("CREATE INBOX").status == "NO"
    c.ok("SELECT Projects.2024.Q1")
    r1 = c.ok("APPEND Projects.2024.Q1", Lit(message("into a nested folder")[0]))
    r2 = c.ok("NOOP")
    assert [x.num for x in r1.of("EXISTS") + r2.of("EXISTS")][-1:] == [1], (r1, r2)


def test_special_use_folders_of_a_new_user(sb, user):
    c = user.login()
    lists = c.ok('LIST "" "*"').lists()
    for name, attr in SPECIAL_USE.items():
        assert name in lists and attr.lower() in lists[name][0], (name, lists.get(name))
    assert not ({a.lower() for a in SPECIAL_USE.values()} & lists["INBOX"][0])
    only = c.ok('LIST (SPECIAL-USE) "" "*"').lists()
    assert set(only) == set(SPECIAL_USE), only
    ret = c.ok('LIST "" "%" RETURN (SPECIAL-USE)').lists()
    assert "\\sent" in ret["Sent"][0], ret
    for name in SPECIAL_USE:
        assert is_maildir(user.folder(name)), name


def test_list_status_and_status(sb, user):
    data, mid = message("for list-status")
    deliver(sb, user, data, mid)
    c = user.login()
    append_msg(c, "Sent", "sent one", "\\Seen")
    append_msg(c, "Sent", "sent two")
    r = c.ok('LIST "" "%" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))')
    lists, st = r.lists(), r.status_items()
    assert set(st) == set(lists), (lists, st)
    assert st["INBOX"]["MESSAGES"] == 1 and st["INBOX"]["UNSEEN"] == 1, st
    assert st["Sent"]["MESSAGES"] == 2 and st["Sent"]["UNSEEN"] == 1, st
    assert st["Trash"]["MESSAGES"] == 0, st
    s = c.ok("STATUS Sent (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)").status_items()["Sent"]
    r = c.ok("EXAMINE Sent")
    assert s["MESSAGES"] == 2 and s["UNSEEN"] == 1
    assert s["UIDVALIDITY"] == code_num(r, "UIDVALIDITY")
    assert s["UIDNEXT"] == code_num(r, "UIDNEXT") == st["Sent"]["UIDNEXT"]
    assert c.cmd("STATUS NoSuchFolder (MESSAGES)").status == "NO"


def test_rename_with_children_and_rename_inbox(sb, user):
    c = user.login()
    for name in ("Work", "Work.A", "Work.A.B"):
        c.ok(f"CREATE {name}")
    _, mid, data = append_msg(c, "Work.A", "inside Work.A")
    c.ok("RENAME Work Job")
    names = set(c.ok('LIST "" "*"').lists())
    assert {"Job", "Job.A", "Job.A.B"} <= names, names
    assert not [n for n in names if n.startswith("Work")], names
    for n in ("Job", "Job.A", "Job.A.B"):
        assert is_maildir(user.folder(n)), n
    assert not [d for d in os.listdir(user.maildir) if d.startswith(".Work")]
    c.ok("EXAMINE Job.A")
    f = c.ok("FETCH 1 (BODY.PEEK[])").fetches()
    assert as_bytes(f[1]["BODY[]"]) == data, "the message did not move with its folder"
    c.ok("UNSELECT")
    assert c.cmd("RENAME Job Trash").status == "NO", "renamed onto an existing folder"
    assert c.cmd("RENAME NoSuch Other").status == "NO"

    msg, imid = message("inbox mail")
    deliver(sb, user, msg, imid)
    c.ok("RENAME INBOX Old-Inbox")
    s = c.ok("STATUS INBOX (MESSAGES)").status_items()
    assert s["INBOX"]["MESSAGES"] == 0, "RENAME INBOX must leave INBOX empty"
    s = c.ok("STATUS Old-Inbox (MESSAGES)").status_items()
    assert s["Old-Inbox"]["MESSAGES"] == 1
    assert "INBOX" in c.ok('LIST "" "*"').lists()


def test_delete(sb, user):
    c = user.login()
    c.ok("CREATE Temp")
    append_msg(c, "Temp", "doomed")
    c.ok("DELETE Temp")
    assert "Temp" not in c.ok('LIST "" "*"').lists()
    assert not os.path.exists(user.folder("Temp"))
    assert c.cmd("DELETE Temp").status == "NO"
    assert c.cmd("DELETE INBOX").status == "NO"
    c.ok("CREATE P.C")
    _, _, kept = append_msg(c, "P.C", "child keeps its mail")
    r = c.cmd("DELETE P")
    assert r.status in ("OK", "NO"), r
    lists = c.ok('LIST "" "*"').lists()
    assert "P.C" in lists, "deleting a parent removed its child"
    if r.status == "OK" and "P" in lists:
        assert "\\noselect" in lists["P"][0], lists["P"]
    c.ok("EXAMINE P.C")
    assert as_bytes(c.ok("FETCH 1 (BODY.PEEK[])").fetches()[1]["BODY[]"]) == kept


def test_subscribe_lsub_and_list_subscribed(sb, user):
    c = user.login()
    lsub = c.ok('LSUB "" "*"').lists("LSUB")
    assert set(SPECIAL_USE) <= set(lsub), f"a new user's folders are not subscribed: {lsub}"
    c.ok("CREATE Lists.Python")
    c.ok("SUBSCRIBE Lists.Python")
    assert "Lists.Python" in c.ok('LSUB "" "*"').lists("LSUB")
    assert set(c.ok('LSUB "" "Lists.%"').lists("LSUB")) == {"Lists.Python"}
    sub = c.ok('LIST (SUBSCRIBED) "" "*"').lists()
    assert "Lists.Python" in sub and "\\subscribed" in sub["Lists.Python"][0], sub
    assert "Lists" not in sub
    rec = c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"').lists()
    assert "Lists" in rec, f"RECURSIVEMATCH does not report the parent: {rec}"
    ext = rec["Lists"][2]
    assert ext and as_str(ext[0][0]).upper() == "CHILDINFO" and \
        [as_str(x).upper() for x in ext[0][1]] == ["SUBSCRIBED"], ext
    both = c.ok('LIST "" ("Drafts" "Sent")').lists()
    assert set(both) == {"Drafts", "Sent"}, both
    ret = c.ok('LIST "" "Lists*" RETURN (SUBSCRIBED CHILDREN)').lists()
    assert "\\subscribed" in ret["Lists.Python"][0] and "\\haschildren" in ret["Lists"][0], ret
    c.ok("UNSUBSCRIBE Lists.Python")
    assert "Lists.Python" not in c.ok('LSUB "" "*"').lists("LSUB")
    d = user.login()
    assert "Drafts" in d.ok('LSUB "" "*"').lists("LSUB"), "subscriptions not kept"


def test_non_ascii_names_travel_as_modified_utf7(sb, user):
    c = user.login()
    c.ok('CREATE "Caf&AOk-"')               # Café
    c.ok('CREATE "R&-D"')                   # R&D
    c.ok('CREATE "&ZeVnLIqe-"')             # 日本語
    lists = c.ok('LIST "" "*"').lists()
    assert {"Caf&AOk-", "R&-D", "&ZeVnLIqe-"} <= set(lists), lists
    for name in ("Caf&AOk-", "R&-D", "&ZeVnLIqe-"):
        assert is_maildir(os.path.join(user.maildir, "." + name)), f".{name} not on disk"
        c.ok(f'SELECT "{name}"')
    assert c.cmd('CREATE "Caf&AOk"').status in ("NO", "BAD"), "invalid mUTF-7 accepted"
    assert c.cmd('CREATE', Lit("Café".encode())).status in ("NO", "BAD"), \
        "raw 8-bit name accepted without UTF8=ACCEPT"
    assert not [d for d in os.listdir(user.maildir) if "Caf\u00e9" in d or "Caf\udcc3" in d]


def test_names_cannot_escape_the_home(sb, user):
    other = make_user(sb, "victim")
    secret, smid = message("victim's secret")
    deliver(sb, other, secret, smid)
    os.symlink(other.maildir, os.path.join(user.maildir, ".Evil"))
    os.symlink("../../" + other.local + "/Maildir", os.path.join(user.maildir, ".Evil2"))
    base = os.path.dirname(user.home)
    before_base, before_home = set(os.listdir(base)), set(os.listdir(user.home))
    before_md = {d for d in os.listdir(user.maildir) if d.startswith(".")}
    c = user.login()
    bad = ["../x", "a/b", ".hidden", "..", "x..y", "/etc", "INBOX/../../x",
           f"../{other.local}", f"../../{DOMAIN}", "a/../../b", "a\\b", "x\tz"]
    for name in bad:
        q = '"' + name + '"'
        for cmdline in (f"CREATE {q}", f"SELECT {q}", f"RENAME Drafts {q}",
                        f"STATUS {q} (MESSAGES)", f"DELETE {q}"):
            r = c.cmd(cmdline)
            assert r.status != "OK", f"{cmdline} -> {r}"
        r = c.cmd(f"APPEND {q}", Lit(b"Subject: x\r\n\r\nx\r\n"))
        assert r.status != "OK", f"APPEND {q} -> {r}"
    r = c.cmd('CREATE "~victim"')          # no home expansion: at most a folder of this user
    if r.status == "OK":
        assert is_maildir(os.path.join(user.maildir, ".~victim")), os.listdir(user.maildir)
        c.ok('DELETE "~victim"')
    for evil in ("Evil", "Evil2"):
        r = c.cmd(f"SELECT {evil}")
        if r.status == "OK":
            f = c.cmd("FETCH 1:* (BODY.PEEK[])")
            leaked = b"victim's secret" in b"".join(u.raw for u in f.untagged)
            assert not leaked, f"SELECT {evil} (a symlink) shows another user's mail"
    assert set(os.listdir(base)) == before_base, "something was created next to the home"
    created = set(os.listdir(user.home)) - before_home
    assert not created & {"x", "b", "a", "etc", ".hidden", "hidden", DOMAIN, other.local}, created
    now_md = {d for d in os.listdir(user.maildir) if d.startswith(".")}
    assert now_md == before_md, f"folders created: {now_md - before_md}"
    assert find_file(other, smid), "the other user's mail is gone"


# ---- APPEND, COPY, MOVE, STORE, EXPUNGE, CLOSE ---------------------------------------------

def test_append_with_flags_date_and_literals(sb, user):
    c = user.login()
    data, mid = message("a draft", "Draft text\r\n")
    r = c.ok('APPEND Drafts (\\Draft \\Seen $Label1) "14-Jul-2023 10:20:30 +0200"', Lit(data))
    assert r.conts, "a synchronizing literal was accepted without a continuation request"
    code = r.code_of("APPENDUID")
    assert code, r
    uidvalidity, uid = (int(x) for x in code.split()[1:])
    data2, mid2 = message("non-synchronizing")
    r2 = c.ok("APPEND Drafts", Lit(data2, plus=True))
    assert not r2.conts, "the server asked to continue a LITERAL+ literal"
    uid2 = int(r2.code_of("APPENDUID").split()[2])
    assert uid2 > uid
    data3, mid3 = message("via imaplib")
    typ, _ = c.append("Drafts", "(\\Flagged)", imaplib.Time2Internaldate(1700000000), data3)
    assert typ == "OK"
    sel = c.ok("SELECT Drafts")
    assert code_num(sel, "UIDVALIDITY") == uidvalidity
    f = c.ok(f"UID FETCH {uid}:* (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])").fetches()
    by_uid = {int(v["UID"]): v for v in f.values()}
    assert set(by_uid) >= {uid, uid2} and len(by_uid) == 3, by_uid.keys()
    m = by_uid[uid]
    assert flags_of(m) == {"\\draft", "\\seen", "$label1"}, m["FLAGS"]
    assert internaldate(m["INTERNALDATE"]) == internaldate("14-Jul-2023 10:20:30 +0200")
    assert int(m["RFC822.SIZE"]) == len(data) and as_bytes(m["BODY[]"]) == data
    assert as_bytes(by_uid[uid2]["BODY[]"]) == data2
    (third,) = [v for k, v in by_uid.items() if k not in (uid, uid2)]
    assert flags_of(third) == {"\\flagged"}
    assert internaldate(third["INTERNALDATE"]).timestamp() == 1700000000
    path = find_file(user, mid, "Drafts")
    assert path and re.search(r":2,DS[a-z]$", path), path
    assert abs(os.stat(path).st_mtime - internaldate("14-Jul-2023 10:20:30 +0200").timestamp()) <= 1
    r = c.cmd("APPEND NoSuchFolder", Lit(data))
    assert r.status == "NO" and r.code == "TRYCREATE", r


def test_append_to_the_selected_mailbox_is_announced(sb, user):
    c = user.login()
    c.ok("SELECT INBOX")
    d = user.login()
    append_msg(d, "INBOX", "hello from d")
    r = c.ok("NOOP")
    assert [x.num for x in r.of("EXISTS")] == [1], r
    data, _ = message("hello from c")
    r1 = c.ok("APPEND INBOX", Lit(data))
    r2 = c.ok("NOOP")
    exists = [x.num for x in r1.of("EXISTS") + r2.of("EXISTS")]
    assert exists and exists[-1] == 2, "own APPEND to the selected mailbox not announced"
    assert len(uids_of(c)) == 2


def mids_by_uid(c, uids):
    f = c.ok(f"UID FETCH {','.join(map(str, uids))} "
             f"(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])").fetches()
    out = {}
    for v in f.values():
        hdr = as_bytes(v["BODY[HEADER.FIELDS (MESSAGE-ID)]"]).decode()
        out[int(v["UID"])] = (hdr.split(":", 1)[1].strip(), flags_of(v))
    return out


def test_copy_with_copyuid(sb, user):
    c = user.login()
    appended = [append_msg(c, "INBOX", f"copy me {i}") for i in range(3)]
    c.ok("SELECT INBOX")
    c.ok("STORE 2 +FLAGS (\\Flagged)")
    r = c.ok("COPY 1:2 Archive")
    code = r.code_of("COPYUID")
    assert code, r
    _, uv, src, dst = code.split()
    src, dst = expand_set(src), expand_set(dst)
    assert sorted(src) == [appended[0][0], appended[1][0]] and len(dst) == 2, code
    r = c.ok(f"UID COPY {appended[2][0]} Archive")
    _, uv2, src2, dst2 = r.code_of("COPYUID").split()
    assert uv2 == uv and expand_set(src2) == [appended[2][0]]
    d = user.login()
    assert code_num(d.ok("EXAMINE Archive"), "UIDVALIDITY") == int(uv)
    copies = mids_by_uid(d, dst + expand_set(dst2))
    originals = mids_by_uid(c, src + expand_set(src2))
    for s_uid, d_uid in zip(src + expand_set(src2), dst + expand_set(dst2)):
        assert copies[d_uid][0] == originals[s_uid][0], "COPYUID maps to the wrong message"
        assert copies[d_uid][1] == originals[s_uid][1], "flags not copied"
    assert "\\flagged" in copies[dst[src.index(appended[1][0])]][1]
    assert len(uids_of(c)) == 3, "COPY removed messages from the source"
    r = c.cmd("COPY 1 NoSuchFolder")
    assert r.status == "NO" and r.code == "TRYCREATE", r


def test_move(sb, user):
    c = user.login()
    appended = [append_msg(c, "INBOX", f"move me {i}") for i in range(3)]
    c.ok("SELECT INBOX")
    r = c.ok(f"UID MOVE {appended[1][0]} Trash")
    assert [x.num for x in r.of("EXPUNGE")] == [2], r
    code = r.code_of("COPYUID")
    assert code and expand_set(code.split()[2]) == [appended[1][0]], r.codes()
    assert uids_of(c) == [appended[0][0], appended[2][0]]
    d = user.login()
    d.ok("EXAMINE Trash")
    moved = mids_by_uid(d, expand_set(code.split()[3]))
    assert [v[0] for v in moved.values()] == [appended[1][1]]
    r = c.ok("MOVE 1 Archive")
    assert [x.num for x in r.of("EXPUNGE")] == [1], r
    assert uids_of(c) == [appended[2][0]]
    r = c.cmd("MOVE 1 NoSuchFolder")
    assert r.status == "NO" and r.code == "TRYCREATE", r
    assert uids_of(c) == [appended[2][0]], "a failed MOVE lost the message"
    assert not find_file(user, appended[1][1], "INBOX")
    assert find_file(user, appended[1][1], "Trash")


def test_store_flags_and_keywords(sb, user):
    c = user.login()
    appended = [append_msg(c, "INBOX", f"flag me {i}") for i in range(3)]
    c.ok("SELECT INBOX")
    f = c.ok("STORE 1 +FLAGS (\\Flagged Work)").fetches()
    assert flags_of(f[1]) == {"\\flagged", "work"}, f
    f = c.ok("STORE 1 -FLAGS (\\Flagged)").fetches()
    assert flags_of(f[1]) == {"work"}, f
    f = c.ok("STORE 2 FLAGS (\\Seen $Important)").fetches()
    assert flags_of(f[2]) == {"\\seen", "$important"}, f
    r = c.ok("STORE 3 +FLAGS.SILENT (\\Answered)")
    assert 3 not in r.fetches(), "FLAGS.SILENT answered with FETCH"
    assert flags_of(c.ok("FETCH 3 FLAGS").fetches()[3]) == {"\\answered"}
    f = c.ok(f"UID STORE {appended[0][0]} +FLAGS (\\Deleted)").fetches()
    assert int(f[1]["UID"]) == appended[0][0], "UID STORE's FETCH must carry the UID"
    c.ok("UNSELECT")
    r = c.ok("SELECT INBOX")
    (fl,) = r.of("FLAGS")
    assert {"work", "$important"} <= {x.lower() for x in fl.args[0]}, fl
    assert {"work", "$important", "\\*"} <= permanent_flags(r), r.codes()
    d = user.login()
    d.ok("EXAMINE INBOX")
    assert flags_of(d.ok("FETCH 2 FLAGS").fetches()[2]) == {"\\seen", "$important"}
    # read-only: STORE and EXPUNGE fail or are ignored, and change nothing
    assert d.cmd("STORE 2 +FLAGS (\\Flagged)").status in ("NO", "OK")
    assert flags_of(d.ok("FETCH 2 FLAGS").fetches()[2]) == {"\\seen", "$important"}
    assert d.cmd("EXPUNGE").status in ("NO", "OK")
    assert len(uids_of(d)) == 3, "EXPUNGE in a read-only mailbox removed mail"


def apply_expunges(uids, reply):
    out = list(uids)
    for x in reply.of("EXPUNGE"):
        assert 1 <= x.num <= len(out), f"EXPUNGE {x.num} of {len(out)} messages"
        del out[x.num - 1]
    return out


def test_expunge_and_uid_expunge(sb, user):
    c = user.login()
    uids = [append_msg(c, "INBOX", f"expunge test {i}")[0] for i in range(5)]
    c.ok("SELECT INBOX")
    c.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    r = c.ok("EXPUNGE")
    assert len(r.of("EXPUNGE")) == 2, r
    left = apply_expunges(uids, r)
    assert left == [uids[0], uids[2], uids[4]]
    assert uids_of(c) == left
    assert len(user.files()) == 3
    c.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)")
    r = c.ok(f"UID EXPUNGE {uids[2]}")
    assert [x.num for x in r.of("EXPUNGE")] == [2], r
    assert uids_of(c) == [uids[0], uids[4]]
    f = c.ok("FETCH 1:* FLAGS").fetches()
    assert all("\\deleted" in flags_of(v) for v in f.values())
    assert len(user.files()) == 2


def test_close_expunges_and_unselect_does_not(sb, user):
    c = user.login()
    for i in range(3):
        append_msg(c, "INBOX", f"close test {i}")
    c.ok("SELECT INBOX")
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    r = c.ok("UNSELECT")
    assert not r.of("EXPUNGE")
    assert c.cmd("NOOP").status == "OK" and c.cmd("FETCH 1 FLAGS").status == "BAD"
    r = c.ok("SELECT INBOX")
    assert [x.num for x in r.of("EXISTS")] == [3], "UNSELECT expunged"
    # read-only: CLOSE must not expunge
    d = user.login()
    d.ok("EXAMINE INBOX")
    d.ok("CLOSE")
    assert [x.num for x in d.ok("EXAMINE INBOX").of("EXISTS")] == [3], \
        "CLOSE after EXAMINE expunged"
    r = c.ok("CLOSE")
    assert not r.of("EXPUNGE"), "CLOSE must expunge silently"
    assert c.cmd("FETCH 1 FLAGS").status == "BAD", "still selected after CLOSE"
    r = c.ok("SELECT INBOX")
    assert [x.num for x in r.of("EXISTS")] == [2], "CLOSE did not expunge"
    assert len(user.files()) == 2


# ---- SEARCH --------------------------------------------------------------------------------

GRUSS = "Grüße aus Köln"
KUEHL = "Der Kühlschrank ist leer.\nPlease buy milk.\n" + "Lorem ipsum dolor sit amet.\n" * 100


def search_corpus(to):
    """Five messages: (bytes, APPEND flags, internal date)."""
    kuehl_b64 = base64.encodebytes(KUEHL.encode()).decode().replace("\n", "\r\n")
    big = ("x" * 75 + "\r\n") * 300
    alice = '"Alice Example" <alice@example.org>'
    return [
        (message("Quarterly report", "The numbers look good.\r\n", frm=alice, to=to,
                 date="Thu, 01 Feb 2024 11:00:00 +0000")[0],
         "\\Seen", "01-Feb-2024 12:00:00 +0000"),
        (message(f"=?UTF-8?B?{b64(GRUSS)}?=", "Greetings from Cologne.\r\n",
                 frm="Bob <bob@example.net>", to=to, extra="Cc: boss@example.com\r\n",
                 date="Fri, 15 Mar 2024 10:00:00 +0000")[0],
         "\\Flagged", "15-Mar-2024 12:00:00 +0000"),
        (message("=?ISO-8859-1?Q?Einkaufsliste_f=FCr_heute?=", kuehl_b64,
                 frm="Carol <carol@example.com>", to=to,
                 extra="MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                       "Content-Transfer-Encoding: base64\r\n",
                 date="Wed, 20 Mar 2024 08:00:00 +0000")[0],
         "\\Draft $Todo", "20-Mar-2024 09:00:00 +0000"),
        (message("Re: Quarterly report", "> The numbers look good.\r\nAgreed, thanks.\r\n",
                 frm=alice, to=to, extra="X-Priority: 1\r\n",
                 date="Wed, 20 Mar 2024 14:00:00 +0000")[0],
         "\\Seen \\Answered", "20-Mar-2024 15:00:00 +0000"),
        (message("Big attachment", big, frm="Dave <dave@example.org>", to=to,
                 date="Mon, 01 Apr 2024 11:00:00 +0000")[0],
         "\\Deleted", "01-Apr-2024 12:00:00 +0000"),
    ]


@pytest.fixture(scope="module")
def searchbox(sb):
    u = make_user(sb, "searcher")
    c = u.login()
    u.uids = []
    for data, flags, date in search_corpus(u.addr):
        r = c.ok(f'APPEND INBOX ({flags}) "{date}"', Lit(data))
        u.uids.append(int(r.code_of("APPENDUID").split()[2]))
    c.logout()
    return u


def run_searches(c, cases):
    """cases: (command parts, expected numbers); every mismatch is reported at once."""
    wrong = []
    for parts, want in cases:
        parts = parts if isinstance(parts, tuple) else (parts,)
        r = c.cmd(*parts)
        got = r.search() if r.status == "OK" else f"{r.status} {r.text}"
        if got != want and not (isinstance(got, list) and sorted(got) == want):
            wrong.append(f"{' '.join(p if isinstance(p, str) else '{literal}' for p in parts)}:"
                         f" got {got}, want {want}")
    assert not wrong, "\n".join(wrong)


def test_search_flags_sizes_and_dates(sb, searchbox):
    c = searchbox.login()
    c.ok("EXAMINE INBOX")
    run_searches(c, [
        ("SEARCH ALL", [1, 2, 3, 4, 5]),
        ("SEARCH SEEN", [1, 4]), ("SEARCH UNSEEN", [2, 3, 5]),
        ("SEARCH FLAGGED", [2]), ("SEARCH UNFLAGGED", [1, 3, 4, 5]),
        ("SEARCH ANSWERED", [4]), ("SEARCH UNANSWERED", [1, 2, 3, 5]),
        ("SEARCH DELETED", [5]), ("SEARCH UNDELETED", [1, 2, 3, 4]),
        ("SEARCH DRAFT", [3]), ("SEARCH UNDRAFT", [1, 2, 4, 5]),
        ("SEARCH KEYWORD $Todo", [3]), ("SEARCH UNKEYWORD $Todo", [1, 2, 4, 5]),
        ("SEARCH KEYWORD NoSuchKeyword", []),
        ("SEARCH LARGER 2500", [3, 5]), ("SEARCH LARGER 10000", [5]),
        ("SEARCH SMALLER 1000", [1, 2, 4]),
        ("SEARCH BEFORE 15-Mar-2024", [1]), ("SEARCH ON 20-Mar-2024", [3, 4]),
        ("SEARCH SINCE 20-Mar-2024", [3, 4, 5]),
        ("SEARCH SINCE 15-Mar-2024 BEFORE 1-Apr-2024", [2, 3, 4]),
        ("SEARCH SENTBEFORE 15-Mar-2024", [1]), ("SEARCH SENTON 20-Mar-2024", [3, 4]),
        ("SEARCH SENTSINCE 1-Apr-2024", [5]),
    ])


def test_search_addresses_text_and_encodings(sb, searchbox):
    c = searchbox.login()
    c.ok("EXAMINE INBOX")
    raw_b64 = base64.encodebytes(KUEHL.encode()).decode()[:20]
    run_searches(c, [
        ("SEARCH FROM alice", [1, 4]), ('SEARCH FROM "Alice Example"', [1, 4]),
        ("SEARCH FROM example.net", [2]), ("SEARCH TO searcher", [1, 2, 3, 4, 5]),
        ("SEARCH CC boss", [2]), ("SEARCH BCC boss", []),
        ("SEARCH SUBJECT quarterly", [1, 4]), ('SEARCH SUBJECT "RE: QUARTERLY"', [4]),
        ("SEARCH BODY numbers", [1, 4]), ("SEARCH BODY Quarterly", []),
        ("SEARCH TEXT Quarterly", [1, 4]), ("SEARCH TEXT agreed", [4]),
        ("SEARCH BODY MILK", [3]), (f"SEARCH BODY {raw_b64}", []),
        ("SEARCH HEADER X-Priority 1", [4]), ('SEARCH HEADER X-Priority ""', [4]),
        ("SEARCH HEADER Cc boss@example.com", [2]),
        ("SEARCH CHARSET US-ASCII SUBJECT report", [1, 4]),
        (("SEARCH CHARSET UTF-8 SUBJECT", Lit("köln".encode())), [2]),
        (("SEARCH CHARSET UTF-8 SUBJECT", Lit("Grüße".encode())), [2]),
        (("SEARCH CHARSET utf-8 SUBJECT", Lit("liste für heute".encode())), [3]),
        (("SEARCH CHARSET UTF-8 BODY", Lit("kühlschrank".encode())), [3]),
        (("SEARCH CHARSET UTF-8 TEXT", Lit("Kühlschrank ist".encode())), [3]),
        (("SEARCH CHARSET UTF-8 SUBJECT", Lit("{quarterly}".encode())), []),
    ])
    r = c.cmd("SEARCH CHARSET X-NO-SUCH-CHARSET SUBJECT a")
    assert r.status == "NO" and r.code and r.code.upper().startswith("BADCHARSET"), r
    assert c.cmd("SEARCH FROBNICATE").status == "BAD"
    assert c.cmd("SEARCH SINCE 31-Foo-2024").status == "BAD"


def test_search_or_not_nesting_and_sets(sb, searchbox):
    u = searchbox.uids
    c = searchbox.login()
    c.ok("EXAMINE INBOX")
    run_searches(c, [
        ("SEARCH OR FROM bob FROM carol", [2, 3]),
        ("SEARCH NOT SEEN", [2, 3, 5]),
        ("SEARCH OR (FROM alice SEEN) FLAGGED", [1, 2, 4]),
        ("SEARCH NOT (OR SEEN FLAGGED)", [3, 5]),
        ("SEARCH OR OR SEEN FLAGGED DELETED", [1, 2, 4, 5]),
        ("SEARCH NOT NOT SEEN", [1, 4]),
        ("SEARCH (SEEN FLAGGED)", []),
        ("SEARCH FROM alice NOT ANSWERED", [1]),
        ("SEARCH OR NOT SEEN DELETED LARGER 2500", [3, 5]),
        ("SEARCH 2:4", [2, 3, 4]), ("SEARCH 4:2", [2, 3, 4]), ("SEARCH 2,5:*", [2, 5]),
        ("SEARCH *", [5]), ("SEARCH *:4", [4, 5]), ("SEARCH 1:* SEEN", [1, 4]),
        (f"SEARCH UID {u[1]}:{u[3]}", [2, 3, 4]), (f"SEARCH UID {u[4]}", [5]),
        ("SEARCH UID *", [5]), (f"SEARCH NOT UID {u[0]},{u[4]}", [2, 3, 4]),
        ("UID SEARCH SEEN", [u[0], u[3]]), ("UID SEARCH 1:2", [u[0], u[1]]),
        (f"UID SEARCH UID {u[2]}:*", [u[2], u[3], u[4]]),
    ])


def test_esearch_return_options(sb, searchbox):
    u = searchbox.uids
    c = searchbox.login()
    c.ok("EXAMINE INBOX")
    r = c.ok("SEARCH RETURN (MIN MAX COUNT ALL) SEEN")
    e = r.esearch()
    assert e.get("TAG") == r.tag, e
    assert (int(e["MIN"]), int(e["MAX"]), int(e["COUNT"])) == (1, 4, 2), e
    assert expand_set(e["ALL"]) == [1, 4], e
    assert not r.of("SEARCH"), "ESEARCH and SEARCH both sent"
    e = c.ok("UID SEARCH RETURN (COUNT ALL) UNSEEN").esearch()
    assert e.get("UID") and int(e["COUNT"]) == 3, e
    assert expand_set(e["ALL"]) == [u[1], u[2], u[4]], e
    e = c.ok("SEARCH RETURN () FLAGGED").esearch()
    assert expand_set(e["ALL"]) == [2], e
    e = c.ok("SEARCH RETURN (COUNT MIN MAX ALL) KEYWORD NoSuchKeyword").esearch()
    assert int(e["COUNT"]) == 0 and not {"MIN", "MAX", "ALL"} & set(e), e
    e = c.ok("SEARCH RETURN (MAX) 1:3").esearch()
    assert int(e["MAX"]) == 3 and "MIN" not in e and "COUNT" not in e, e


# ---- CONDSTORE, QRESYNC --------------------------------------------------------------------

def modseqs(reply):
    return {seq: int(v["MODSEQ"][0]) for seq, v in reply.fetches().items() if "MODSEQ" in v}


def test_condstore_modseqs_are_kept(sb, user):
    c = user.login()
    for i in range(3):
        append_msg(c, "INBOX", f"condstore {i}")
    (en,) = c.ok("ENABLE CONDSTORE").of("ENABLED")
    assert [a.upper() for a in en.args] == ["CONDSTORE"]
    r = c.ok("SELECT INBOX")
    hms = code_num(r, "HIGHESTMODSEQ")
    before = modseqs(c.ok("FETCH 1:* (MODSEQ)"))
    assert set(before) == {1, 2, 3} and max(before.values()) <= hms, before
    after1 = modseqs(c.ok("STORE 1 +FLAGS (\\Flagged)"))
    assert after1.get(1, 0) > hms, f"STORE did not raise the MODSEQ: {after1}"
    r = c.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms})")
    assert set(r.fetches()) == {1}, f"CHANGEDSINCE {hms}: {r.fetches()}"
    assert "MODSEQ" in r.fetches()[1], "CHANGEDSINCE implies MODSEQ"
    assert c.ok(f"SEARCH MODSEQ {hms + 1}").search() == [1]
    r = c.ok(f"STORE 2 (UNCHANGEDSINCE {max(before[2] - 1, 0)}) +FLAGS (\\Seen)")
    assert r.code and r.code.upper() == "MODIFIED 2", r
    assert "\\seen" not in flags_of(c.ok("FETCH 2 FLAGS").fetches()[2])
    now3 = modseqs(c.ok("FETCH 3 (MODSEQ)"))[3]
    r = c.ok(f"STORE 3 (UNCHANGEDSINCE {now3}) +FLAGS (\\Seen)")
    assert not r.code or not r.code.upper().startswith("MODIFIED"), r
    final = modseqs(c.ok("FETCH 1:* (MODSEQ)"))
    d = user.login()
    highest = d.ok("STATUS INBOX (HIGHESTMODSEQ)").status_items()["INBOX"]["HIGHESTMODSEQ"]
    assert highest == max(final.values()), (highest, final)
    c.logout()
    d.logout()
    e = user.login()
    r = e.ok("SELECT INBOX (CONDSTORE)")
    assert code_num(r, "HIGHESTMODSEQ") == highest, "HIGHESTMODSEQ not kept across sessions"
    assert modseqs(e.ok("FETCH 1:* (MODSEQ)")) == final, "MODSEQs not kept across sessions"


def test_qresync(sb, user):
    c = user.login()
    uids = [append_msg(c, "INBOX", f"qresync {i}")[0] for i in range(3)]
    (cap,) = c.ok("CAPABILITY").of("CAPABILITY")
    assert "QRESYNC" in {a.upper() for a in cap.args}, "QRESYNC not announced"
    (en,) = c.ok("ENABLE QRESYNC").of("ENABLED")
    assert "QRESYNC" in {a.upper() for a in en.args}, en
    r = c.ok("SELECT INBOX")
    uv, hms = code_num(r, "UIDVALIDITY"), code_num(r, "HIGHESTMODSEQ")
    c.ok("UNSELECT")
    d = user.login()
    d.ok("SELECT INBOX")
    d.ok("STORE 1 +FLAGS (\\Seen)")
    d.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    d.ok("EXPUNGE")
    r = c.ok(f"SELECT INBOX (QRESYNC ({uv} {hms}))")
    vanished = [v for v in r.of("VANISHED")]
    assert vanished, f"no VANISHED (EARLIER) for the expunged UID: {r.untagged}"
    assert [a.upper() for a in vanished[0].args[0]] == ["EARLIER"]
    assert expand_set(vanished[0].args[1]) == [uids[1]]
    f = r.fetches()
    assert [int(v["UID"]) for v in f.values()] == [uids[0]], f
    assert "\\seen" in flags_of(list(f.values())[0])
    c.ok(f"UID STORE {uids[2]} +FLAGS.SILENT (\\Deleted)")
    r = c.ok("EXPUNGE")
    assert not r.of("EXPUNGE"), "EXPUNGE sent in a QRESYNC session"
    assert [expand_set(v.args[0]) for v in r.of("VANISHED")] == [[uids[2]]], r.untagged


# ---- several sessions, deliveries and IDLE -------------------------------------------------

def test_two_sessions_see_each_others_changes(sb, user):
    a, b = user.login(), user.login()
    uids = [append_msg(a, "INBOX", f"shared {i}")[0] for i in range(3)]
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    a.ok("STORE 1 +FLAGS (\\Flagged)")
    f = b.ok("NOOP").fetches()
    assert 1 in f and "\\flagged" in flags_of(f[1]), f"flag change not reported: {f}"
    a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    r = b.ok("SEARCH ALL")
    assert not r.of("EXPUNGE"), "EXPUNGE sent during SEARCH (RFC 3501 §7.4.1)"
    r = b.ok("NOOP")
    assert [x.num for x in r.of("EXPUNGE")] == [2], r.untagged
    assert uids_of(b) == [uids[0], uids[2]]
    data, mid = message("delivered while selected")
    deliver(sb, user, data, mid)
    r = b.ok("NOOP")
    assert [x.num for x in r.of("EXISTS")] == [3], r.untagged
    append_msg(a, "INBOX", "appended by a")
    r = b.ok("NOOP")
    assert [x.num for x in r.of("EXISTS")] == [4], r.untagged
    assert len(set(uids_of(b))) == 4


def test_concurrent_appends_and_deliveries_get_distinct_uids(sb, user):
    a, b = user.login(), user.login()
    got, errors = {}, []

    def appender(client, who):
        try:
            for i in range(15):
                uid, mid, _ = append_msg(client, "INBOX", f"{who} {i}")
                got[uid] = got.get(uid, []) + [mid]
        except Exception as e:         # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=appender, args=(a, "a")),
               threading.Thread(target=appender, args=(b, "b"))]
    for t in threads:
        t.start()
    mids = []
    for i in range(5):
        data, mid = message(f"smtp {i}")
        smtp_send(sb, user.addr, data)
        mids.append(mid)
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert all(len(v) == 1 for v in got.values()), f"one UID given twice: {got}"
    assert len(got) == 30
    wait_until(lambda: all(find_file(user, m) for m in mids), 30, what="the deliveries")
    c = user.login()
    c.ok("SELECT INBOX")
    seen = mids_by_uid(c, ["1:*"])
    assert len(seen) == 35, f"{len(seen)} messages"
    for uid, (mid,) in got.items():
        assert seen[uid][0] == mid, f"APPENDUID {uid} names another message"
    with open(os.path.join(user.maildir, "dovecot-uidlist")) as fh:
        lines = fh.read().splitlines()[1:]
    listed = [int(x.split()[0]) for x in lines if x.strip()]
    assert sorted(listed) == sorted(seen) and len(set(listed)) == len(listed), listed


def read_untagged_until(c, pred, timeout):
    """Untagged responses read until pred(resp) holds; (responses, time of the match)."""
    deadline = time.monotonic() + timeout
    out = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"nothing matching within {timeout} s; got {out}")
        c.sock.settimeout(left)
        try:
            raw = c.read_response()
        except (socket.timeout, TimeoutError):
            raise AssertionError(f"nothing matching within {timeout} s; got {out}") from None
        resp = Resp(raw) if raw.startswith(b"* ") else raw
        out.append(resp)
        if isinstance(resp, Resp) and pred(resp):
            return out, time.monotonic()


def resp_flags(resp):
    items = resp.args[0]
    d = {k.upper(): v for k, v in zip(items[0::2], items[1::2])}
    return {f.lower() for f in d.get("FLAGS", [])}


class ArrivalWatch(threading.Thread):
    """Notes when a new file first appears in a Maildir's new/ or cur/."""

    def __init__(self, user):
        super().__init__(daemon=True)
        self.user = user
        self.before = set(n.split(":")[0] for n in user.files())
        self.at = None
        self.stop = False

    def run(self):
        while not self.stop and self.at is None:
            now = {n.split(":")[0] for n in self.user.files()}
            if now - self.before:
                self.at = time.monotonic()
            time.sleep(0.005)


def test_idle_pushes_new_mail_flag_changes_and_expunges(sb, user):
    c = user.login()
    c.ok("SELECT INBOX")
    c.send(b"i1 IDLE\r\n")
    cont = c.read_response()
    assert cont.startswith(b"+"), cont
    watch = ArrivalWatch(user)
    watch.start()
    data, mid = message("pushed")
    smtp_send(sb, user.addr, data)
    _, at = read_untagged_until(c, lambda r: r.kind == "EXISTS" and r.num == 1, 30)
    watch.stop = True
    watch.join()
    assert watch.at is not None
    assert at - watch.at <= 2.0, f"EXISTS came {at - watch.at:.2f} s after the delivery"
    d = user.login()
    d.ok("SELECT INBOX")
    d.ok("STORE 1 +FLAGS (\\Flagged)")
    read_untagged_until(c, lambda r: r.kind == "FETCH" and r.num == 1 and
                        "\\flagged" in resp_flags(r), 5)
    d.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    d.ok("EXPUNGE")
    read_untagged_until(c, lambda r: r.kind == "EXPUNGE" and r.num == 1, 5)
    c.send(b"DONE\r\n")
    r = c.read_until_tagged("i1")
    assert r.status == "OK", r
    assert [x.num for x in c.ok("NOOP").of("EXISTS")] in ([], [0])


def test_done_and_the_next_command_in_one_packet(sb, user):
    c = user.login()
    c.ok("SELECT INBOX")
    c.send(b"i1 IDLE\r\n")
    assert c.read_response().startswith(b"+")
    c.send(b"DONE\r\ni2 NOOP\r\n")
    tagged = []
    c.sock.settimeout(10)
    while len(tagged) < 2:
        line = c.read_response()
        if not line.startswith(b"* "):
            tagged.append(line)
    assert tagged[0].startswith(b"i1 OK") and tagged[1].startswith(b"i2 OK"), tagged
    c.ok("NOOP")


# ---- the files: Dovecot-compatible storage -------------------------------------------------

def read_uidlist(folder_dir):
    with open(os.path.join(folder_dir, "dovecot-uidlist")) as fh:
        head, *lines = fh.read().splitlines()
    fields = dict((f[0], f[1:]) for f in head.split()[1:])
    assert head.split()[0] == "3", f"dovecot-uidlist is not version 3: {head!r}"
    by_uid = {}
    for line in lines:
        if line.strip():
            uid, _, rest = line.partition(" ")
            base = rest.split(":", 1)[1] if rest.startswith(":") else rest.split(" :", 1)[1]
            by_uid[int(uid)] = base.split(":2,")[0]
    return fields, by_uid


def read_keywords(folder_dir):
    path = os.path.join(folder_dir, "dovecot-keywords")
    if not os.path.exists(path):
        return {}
    out = {}
    with open(path) as fh:
        for line in fh:
            if line.strip():
                idx, name = line.rstrip("\n").split(" ", 1)
                out[name] = chr(ord("a") + int(idx))
    return out


def test_maildir_files_are_what_dovecot_would_write(sb, user):
    data, mid = message("delivered")
    deliver(sb, user, data, mid)
    c = user.login()
    append_msg(c, "INBOX", "appended")
    r = c.ok("SELECT INBOX")
    uidvalidity, uidnext = code_num(r, "UIDVALIDITY"), code_num(r, "UIDNEXT")
    c.ok("STORE 1 +FLAGS (\\Seen \\Flagged Work)")
    c.ok("STORE 2 +FLAGS ($Later \\Answered)")
    f = c.ok("FETCH 1:* (UID FLAGS RFC822.SIZE)").fetches()
    assert not [k for k in user.files() if k.startswith("new/")], "SELECT left files in new/"
    fields, by_uid = read_uidlist(user.maildir)
    assert int(fields["V"]) == uidvalidity, fields
    assert uidnext > max(by_uid) and int(fields["N"]) <= uidnext, (fields, uidnext)
    keywords = read_keywords(user.maildir)
    assert {"Work", "$Later"} <= set(keywords), keywords
    cur = {n.split(":2,")[0]: n for n in os.listdir(os.path.join(user.maildir, "cur"))}
    for seq, v in f.items():
        uid = int(v["UID"])
        assert uid in by_uid, f"UID {uid} not in dovecot-uidlist: {by_uid}"
        name = cur[by_uid[uid]]
        letters = name.split(":2,")[1]
        want = {"\\seen": "S", "\\flagged": "F", "\\answered": "R", "\\deleted": "T",
                "\\draft": "D"}
        expect = sorted(want[x] for x in flags_of(v) if x in want)
        expect += sorted(keywords[k] for k in keywords if k.lower() in flags_of(v))
        assert letters == "".join(expect), f"{name}: flags {v['FLAGS']}, keywords {keywords}"
        m = re.search(r",W=(\d+)", name)
        if m:
            assert int(m.group(1)) == int(v["RFC822.SIZE"]), name


def test_postern_index_is_rebuilt_from_the_maildir(sb, user):
    c = user.login()
    for i in range(3):
        append_msg(c, "INBOX", f"index {i}")
    c.ok("SELECT INBOX")
    c.ok("STORE 2 +FLAGS (\\Flagged Important)")
    before = mids_by_uid(c, ["1:*"])
    uv = code_num(c.ok("EXAMINE INBOX"), "UIDVALIDITY")
    c.logout()
    removed = []
    for root, _, files in os.walk(user.maildir):
        for n in files:
            if n.startswith("postern"):
                os.unlink(os.path.join(root, n))
                removed.append(n)
    d = user.login()
    assert code_num(d.ok("SELECT INBOX"), "UIDVALIDITY") == uv
    assert mids_by_uid(d, ["1:*"]) == before, f"after removing {removed}"


def test_flags_sizes_and_dates_come_from_the_index_not_the_files(sb, user):
    """Issue 6: once cached, SELECT and UID FETCH 1:* (FLAGS) do not re-read message files.
    Proved by making every file unreadable to the session (it runs as vmail, without
    CAP_DAC_OVERRIDE) between two sessions."""
    c = user.login()
    for i in range(20):
        append_msg(c, "INBOX", f"cached {i}", "\\Seen" if i % 2 else "")
    c.ok("SELECT INBOX")
    items = "(UID FLAGS RFC822.SIZE INTERNALDATE)"
    def view(reply):            # \Recent belongs to one session: left out
        return {s: (int(v["UID"]), flags_of(v), int(v["RFC822.SIZE"]), v["INTERNALDATE"])
                for s, v in reply.fetches().items()}
    before = view(c.ok(f"UID FETCH 1:* {items}"))
    c.logout()
    files = user.files()
    assert len(files) == 20
    for path in files.values():
        os.chmod(path, 0)
    try:
        d = user.login()
        r = d.ok("SELECT INBOX")
        assert [x.num for x in r.of("EXISTS")] == [20]
        assert view(d.ok(f"UID FETCH 1:* {items}")) == before
        assert d.ok("SEARCH SEEN LARGER 10").search() == list(range(2, 21, 2))
        r = d.cmd("FETCH 1 (BODY.PEEK[])")        # this one needs the file: it must fail
        assert r.eof or r.status != "OK" or not r.fetches(), \
            "the file was readable: the test proves nothing"
    finally:
        for path in files.values():
            os.chmod(path, 0o600)


def dovecot_name(t, n, data, flags=None):
    crlf_size = len(data) + data.count(b"\n")
    base = f"{t}.M{n}P4242.oldhost,S={len(data)},W={crlf_size}"
    return base, base + (f":2,{flags}" if flags is not None else "")


def test_a_dovecot_maildir_keeps_its_uids(sb):
    u = make_user(sb, "migrated")
    msgs = [message(f"old mail {i}", f"Body {i}\n")[0].replace(b"\r\n", b"\n") for i in range(3)]
    b100, f100 = dovecot_name(1700000000, 1, msgs[0], "S")
    b205, f205 = dovecot_name(1700000100, 2, msgs[1], "Fa")
    b_new, f_new = dovecot_name(1700000200, 3, msgs[2])
    for sub, fname, data, mtime in (("cur", f100, msgs[0], 1700000000),
                                    ("cur", f205, msgs[1], 1700000100),
                                    ("new", f_new, msgs[2], 1700000200)):
        path = os.path.join(u.maildir, sub, fname)
        with open(path, "wb") as fh:
            fh.write(data)
        os.utime(path, (mtime, mtime))
        chown_vmail(path)
    for name, text in (("dovecot-uidlist",
                        "3 V1234567890 N301 G0123456789abcdef0123456789abcdef\n"
                        f"100 :{b100}\n205 W{len(msgs[1]) + 1} :{b205}\n"),
                       ("dovecot-keywords", "0 $Work\n1 Project\n")):
        path = os.path.join(u.maildir, name)
        with open(path, "w") as fh:
            fh.write(text)
        chown_vmail(path)
    old = u.folder("Old")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(old, sub))
    old_data = message("in Old")[0].replace(b"\r\n", b"\n")
    ob, of = dovecot_name(1600000000, 9, old_data, "")
    with open(os.path.join(old, "cur", of), "wb") as fh:
        fh.write(old_data)
    with open(os.path.join(old, "dovecot-uidlist"), "w") as fh:
        fh.write(f"3 V1111 N10 G5f0d1c2b3a4958677685940312ab34cd\n7 :{ob}\n")
    for root, dirs, files in os.walk(old):
        for n in dirs + files:
            chown_vmail(os.path.join(root, n))
    chown_vmail(old)

    c = u.login()
    r = c.ok("SELECT INBOX")
    assert code_num(r, "UIDVALIDITY") == 1234567890
    f = c.ok("FETCH 1:* (UID FLAGS INTERNALDATE)").fetches()
    uids = [int(f[s]["UID"]) for s in sorted(f)]
    assert uids[:2] == [100, 205] and len(uids) == 3 and uids[2] >= 301, uids
    assert flags_of(f[1]) == {"\\seen"}
    assert flags_of(f[2]) == {"\\flagged", "$work"}
    assert internaldate(f[1]["INTERNALDATE"]).timestamp() == 1700000000
    assert code_num(r, "UIDNEXT") > uids[2]
    r = c.ok("EXAMINE Old")
    assert code_num(r, "UIDVALIDITY") == 1111
    assert uids_of(c) == [7]
    assert "Old" in c.ok('LIST "" "*"').lists()
    c.logout()
    fields, by_uid = read_uidlist(u.maildir)
    assert fields["V"] == "1234567890" and by_uid[100] == b100 and by_uid[205] == b205, by_uid
    assert by_uid.get(uids[2]) == b_new, by_uid


# ---- bad input -----------------------------------------------------------------------------

def test_unknown_commands_and_wrong_states_are_bad(sb, user):
    c = Imaps(sb)
    assert c.cmd("FROBNICATE now").status == "BAD"          # imap-login
    assert c.cmd("SELECT INBOX").status in ("BAD", "NO")
    c.login(user.addr, user.pw)
    assert c.cmd("FROBNICATE now").status == "BAD"          # the session
    assert c.cmd("UID FROBNICATE 1").status == "BAD"
    assert c.cmd("FETCH 1 (FLAGS)").status == "BAD"
    c.ok("SELECT INBOX")
    assert c.cmd("FETCH 1 (NOSUCHITEM)").status == "BAD"
    assert c.cmd("STORE 1 +FLAGZ (\\Seen)").status == "BAD"
    assert c.cmd("SEARCH ALL)").status == "BAD"
    c.ok("NOOP")


def test_overlong_command_lines(sb, user):
    pre = Imaps(sb)
    r = pre.cmd("LOGIN " + "x" * 100000 + " y")
    assert r.status == "BAD" or r.eof and any(u.kind == "BYE" for u in r.untagged), r
    c = user.login()
    r = c.cmd("SELECT " + "x" * 100000)
    assert r.status == "BAD" and "TOOBIG" in (r.code or "").upper(), r
    c.ok("NOOP")
    c.ok("SELECT INBOX")


def test_literal_too_big_is_refused_before_the_data(sb, user):
    c = user.login()
    tag = c._new_tag().decode()
    c.send(f"{tag} APPEND INBOX {{50000000}}\r\n".encode())
    c.sock.settimeout(10)
    line = c.read_response()
    assert not line.startswith(b"+"), "the server asked for a 50 MB literal"
    r = Reply(tag)
    r.add(line)
    while not r.done:
        r.add(c.read_response())
    assert r.status in ("NO", "BAD") and (r.code or "").upper().startswith("TOOBIG"), r
    c.ok("NOOP")
    limit = 10240000
    r = c.cmd("APPEND INBOX", Lit(b"Subject: big\r\n\r\n" + b"y" * (limit + 1000)))
    assert r.status in ("NO", "BAD") and (r.code or "").upper() in ("TOOBIG", "LIMIT"), r
    c.ok("NOOP")
    assert not user.files(), "the oversized message was stored"


def test_nul_in_a_quoted_string_is_bad(sb, user):
    c = user.login()
    c.send(b'n1 SELECT "IN\x00BOX"\r\n')
    r = c.read_until_tagged("n1")
    assert r.status == "BAD", r
    c.ok("NOOP")
    pre = Imaps(sb)
    pre.send(b'n2 LOGIN "' + user.addr.encode() + b'\x00" "' + user.pw.encode() + b'"\r\n')
    r = pre.read_until_tagged("n2")
    assert r.status == "BAD", r


def test_deep_nesting_is_bounded(sb, user):
    c = user.login()
    append_msg(c, "INBOX", "plain")
    c.ok("SELECT INBOX")
    # refused, or answered correctly: never a crash or a hang
    for line in ("SEARCH " + "NOT " * 5000 + "ALL",
                 "SEARCH " + "(" * 500 + "ALL" + ")" * 500,
                 "SEARCH " + "OR ALL " * 3000 + "ALL",
                 "FETCH 1 " + "(" * 1000 + "FLAGS" + ")" * 1000):
        r = c.cmd(line)
        assert not r.eof and r.status in ("BAD", "NO", "OK"), f"{line[:40]}...: {r}"
        if r.status == "OK":
            assert line.startswith("SEARCH") and r.search() == [1], f"{line[:40]}...: {r}"
    depth = 300
    head = "Subject: deep\r\nMIME-Version: 1.0\r\n"
    body = ""
    for i in range(depth):
        body += f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'
    body += "Content-Type: text/plain\r\n\r\ndeepest\r\n"
    for i in reversed(range(depth)):
        body += f"--b{i}--\r\n"
    data = (head + body).encode()
    r = c.ok("APPEND INBOX", Lit(data))
    t0 = time.monotonic()
    r = c.cmd("FETCH 2 (BODYSTRUCTURE BODY.PEEK[" + ".".join(["1"] * 200) + "])")
    assert r.status in ("OK", "NO", "BAD") and not r.eof, r
    assert time.monotonic() - t0 < 10
    c.ok("NOOP")
    r = c.ok("FETCH 2 (BODY.PEEK[])")
    assert as_bytes(r.fetches()[2]["BODY[]"]) == data


# ---- security ------------------------------------------------------------------------------

def vmail_ids():
    pw = pwd.getpwnam("vmail")
    return pw.pw_uid, pw.pw_gid


def test_session_runs_as_vmail_chrooted_in_the_home_without_capabilities(sb, user):
    c = user.login()
    c.ok("SELECT INBOX")
    (info,) = wait_until(lambda: session_procs(sb, user), 5, what="the session process")
    uid, gid = vmail_ids()
    assert info.uids == (uid,) * 4, info
    assert info.gids == (gid,) * 4, info
    assert set(info.groups) <= {gid}, f"supplementary groups {info.groups}"
    assert info.root == os.path.realpath(user.home), f"root {info.root}, home {user.home}"
    assert info.cap_eff == 0 and info.cap_prm == 0, \
        f"CapEff {info.cap_eff:#x} CapPrm {info.cap_prm:#x}"
    assert info.cap_inh == 0 and info.cap_amb == 0
    assert info.no_new_privs == 1
    d = user.login()
    d.ok("NOOP")
    procs = wait_until(lambda: len(session_procs(sb, user)) == 2 and session_procs(sb, user), 5,
                       what="a second session process")
    assert len({p.pid for p in procs}) == 2, "two connections share one session process"
    c.logout()
    d.logout()
    wait_until(lambda: not session_procs(sb, user), 5, what="the sessions to end after LOGOUT")


def test_login_process_runs_as_postern_in_the_empty_chroot(sb, user):
    a, b = Imaps(sb), Imap143(sb)          # one login process per listener at least
    logged = user.login()
    for c in (a, b, logged):
        c.ok("NOOP")
    empty = os.path.realpath(os.path.join(sb.spool, "empty"))
    logins = [p for p in children_of(sb.master_pid) if p.service in ("imap", "imaps")]
    assert {p.service for p in logins} == {"imap", "imaps"}, logins
    pw = pwd.getpwnam("postern")
    for p in logins:
        assert os.path.basename(p.cmdline[0]) == "postern-imap-login", p
        assert p.uids == (pw.pw_uid,) * 4 and p.gids == (pw.pw_gid,) * 4, p
        assert p.root == empty, p
        assert p.cap_eff == 0 and p.cap_prm == 0 and p.no_new_privs == 1, p
    st = os.stat(empty)
    assert os.listdir(empty) == [] and st.st_uid == 0 and not st.st_mode & 0o022, \
        "the login chroot must be empty and not writable by postern"


def test_a_crashed_session_touches_no_other_user(sb, user):
    other = make_user(sb, "bystander")
    a, b = user.login(), other.login()
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    append_msg(b, "INBOX", "still here")
    (victim,) = wait_until(lambda: session_procs(sb, user), 5, what="the session of a")
    # A crash by signal (SIGABRT: the sanitizer build would report a SIGSEGV as a finding).
    os.kill(victim.pid, signal.SIGABRT)
    r = a.cmd("NOOP")
    assert r.eof or r.status != "OK", "the killed session still answers"
    r = b.ok("NOOP")
    assert len(uids_of(b)) == 1
    again = user.login()
    again.ok("SELECT INBOX")


# ---- QUOTA ---------------------------------------------------------------------------------

def write_maildirsize(user, text):
    path = os.path.join(user.maildir, "maildirsize")
    with open(path, "w") as fh:
        fh.write(text)
    chown_vmail(path)


def test_quota_from_maildirsize(sb, user):
    write_maildirsize(user, "1048576S,100C\n2048 2\n")
    c = user.login()
    r = c.ok("GETQUOTAROOT INBOX")
    (root,) = r.of("QUOTAROOT")
    assert as_str(root.args[0]).upper() == "INBOX" and len(root.args) == 2, root
    qroot = as_str(root.args[1])
    (q,) = r.of("QUOTA")
    assert as_str(q.args[0]) == qroot
    items = q.args[1]
    got = {items[i].upper(): (int(items[i + 1]), int(items[i + 2]))
           for i in range(0, len(items), 3)}
    assert got == {"STORAGE": (2, 1024), "MESSAGE": (2, 100)}, got
    (q2,) = c.ok("GETQUOTA", f'"{qroot}"').of("QUOTA")
    assert q2.args[1] == q.args[1]
    assert c.cmd('GETQUOTA "no such root"').status == "NO"
    write_maildirsize(user, "3000S\n2900 1\n")
    r = c.cmd("APPEND INBOX", Lit(b"Subject: over\r\n\r\n" + b"z" * 1000 + b"\r\n"))
    assert r.status == "NO" and (r.code or "").upper() == "OVERQUOTA", r
    assert not user.files(), "a message over quota was stored"
    c.ok("SELECT INBOX")
    c.ok("CHECK")
