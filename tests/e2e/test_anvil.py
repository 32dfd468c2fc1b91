"""test_anvil: the connection count per client address (issue 4,
smtpd_client_connection_count_limit) kept by postern-anvil (lib/anvilproto.h), from the outside.

One sandbox with the limit set to 3. Outside clients come from 127.0.0.1; the sandbox's
mynetworks is 127.0.0.2/32, whose clients are never limited. Proved here: the protocol itself
(counts per socket, re-registration, forgetting on close, strict requests, the allow-list);
the 421 and Postfix's warning for the 4th connection; a closed session and a kill -9'd smtpd
both free their slot; a stopped anvil (timeouts) and a killed anvil both fail open, and master
restarts anvil, after which the limit holds again.
"""

import os
import re
import signal
import smtplib
import socket
import subprocess
import time

import pytest

import postern_ipc as ipc
from conftest import (BINDIR, PYTHON, ProcInfo, alive, finish_sandbox, service_children,
                      start_sandbox, wait_until)

CONNECT = 30
LIMIT = 3
DOMAIN = "anvil.test"
USER, USER_PW = f"carol@{DOMAIN}", "carol-secret-3"
OUTSIDE, INSIDE = "127.0.0.1", "127.0.0.2"


@pytest.fixture(scope="module")
def sb():
    box = start_sandbox("postern-e2e-anvil-", [f"smtpd_client_connection_count_limit={LIMIT}"])
    admin = [os.path.join(BINDIR, "postern"), "admin", "-c", box.conf]
    try:
        subprocess.run(admin + ["domain", "add", DOMAIN], check=True, capture_output=True)
        subprocess.run(admin + ["user", "add", USER, "--password-stdin"], input=USER_PW + "\n",
                       text=True, check=True, capture_output=True)
        wait_anvil_idle(box)
        yield box
    finally:
        finish_sandbox(box)


# ---- helpers -------------------------------------------------------------------------------

def anvil_path(sb):
    return os.path.join(sb.spool, "private", "anvil")


def register(sb, service="smtp", rip=OUTSIDE, timeout=2.0):
    """A socket registered with anvil and the count it got back."""
    s = ipc.connect(anvil_path(sb), timeout)
    r = ipc.call(s, CONNECT, {"service": service, "rip": rip}, timeout=timeout)
    assert r is not None and r.status == ipc.OK, r
    return s, r.get("count")


def anvil_count_now(sb, rip=OUTSIDE):
    """How many smtp connections from rip anvil counts (asked with a registration of our
    own, which closes at once); None while anvil does not answer."""
    try:
        s, count = register(sb, rip=rip, timeout=0.5)
    except (OSError, AssertionError):
        return None
    s.close()
    return count - 1


def wait_anvil_idle(sb, timeout=10):
    """Anvil is up and every session of earlier tests has been forgotten."""
    wait_until(lambda: anvil_count_now(sb) == 0, timeout, interval=0.1,
               what="anvil to answer with no smtp sessions from 127.0.0.1")


def myhostname(sb):
    m = re.search(r"^myhostname\s*=\s*(\S+)\s*$", open(sb.conf).read(), re.M)
    return m.group(1) if m else None


class Client:
    """A raw SMTP client that reads the first reply line."""

    def __init__(self, sb, source=OUTSIDE, service="smtp", timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", sb.ports[service]), timeout=timeout,
                                             source_address=(source, 0))
        self.buf = b""
        self.greeting = self.line()

    def line(self):
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(4096)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def at_eof(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(4096):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except (socket.timeout, TimeoutError):
            return False

    def quit(self):
        self.sock.sendall(b"QUIT\r\n")
        reply = self.line()
        self.sock.close()
        return reply

    def close(self):
        self.sock.close()


def open_clients(sb, n, **kw):
    clients = [Client(sb, **kw) for _ in range(n)]
    for c in clients:
        assert c.greeting and c.greeting.startswith("220 "), c.greeting
    return clients


def close_all(clients):
    for c in clients:
        c.close()


def refused_line(sb, addr=OUTSIDE):
    return f"421 4.7.0 {myhostname(sb)} Error: too many connections from {addr}"


def greeting_within(sb, seconds, **kw):
    """Connect until a client gets 220 (closing refused ones); that client, or fail."""
    def attempt():
        c = Client(sb, **kw)
        if c.greeting and c.greeting.startswith("220 "):
            return c
        c.close()
        return None
    return wait_until(attempt, seconds, interval=0.1, what="a 220 greeting")


def anvil_pid(sb, timeout=10):
    kids = wait_until(lambda: service_children(sb.master_pid, "anvil"), timeout,
                      what="an anvil child of master")
    assert len(kids) == 1, kids
    return kids[0].pid


def smtpd_pid_of_new_session(sb, log_offset):
    """The pid of the smtpd that logged 'connect from unknown[127.0.0.1]' after log_offset."""
    text = sb.log_text()[log_offset:]
    pids = re.findall(r"/smtpd\[(\d+)\]: connect from unknown\[127\.0\.0\.1\]", text)
    assert len(pids) == 1, text
    return int(pids[0])


def send_mail(sb):
    """One message from 127.0.0.1 to a local user; returns the 250 text."""
    with smtplib.SMTP("127.0.0.1", sb.ports["smtp"], timeout=15,
                      source_address=(OUTSIDE, 0)) as s:
        s.ehlo("client.example")
        s.mail("sender@outside.example")
        code, _ = s.rcpt(USER)
        assert code == 250
        code, text = s.data(b"Subject: anvil\r\n\r\nstill flowing\r\n")
        assert code == 250, text
        return text.decode()


# ---- the protocol --------------------------------------------------------------------------

def test_counts_follow_open_sockets(sb):
    wait_anvil_idle(sb)
    a, n1 = register(sb, rip="192.0.2.7")
    b, n2 = register(sb, rip="192.0.2.7")
    c, other = register(sb, service="submission", rip="192.0.2.7")
    d, elsewhere = register(sb, rip="192.0.2.8")
    assert (n1, n2, other, elsewhere) == (1, 2, 1, 1)
    # One registration per socket: a second CONNECT replaces the first.
    r = ipc.call(b, CONNECT, {"service": "smtp", "rip": "192.0.2.8"}, id_=2)
    assert r.status == ipc.OK and r.get("count") == 2
    r = ipc.call(a, CONNECT, {"service": "smtp", "rip": "192.0.2.7"}, id_=3)
    assert r.status == ipc.OK and r.get("count") == 1
    for s in (a, b, c, d):
        s.close()
    for rip in ("192.0.2.7", "192.0.2.8"):
        wait_until(lambda: anvil_count_now(sb, rip) == 0, 5, what="closed sockets forgotten")


@pytest.mark.parametrize("attrs, type_", [
    ({"service": "smtp"}, CONNECT),
    ({"service": "smtp", "rip": "192.0.2.1", "extra": "x"}, CONNECT),
    ({"service": "SMTP", "rip": "192.0.2.1"}, CONNECT),
    ({"service": "smtp", "rip": "a b"}, CONNECT),
    ({"service": "smtp", "rip": "1" * 64}, CONNECT),
    ({"service": "smtp", "rip": "192.0.2.1"}, 99),
])
def test_bad_requests_are_permfail(sb, attrs, type_):
    with ipc.connect(anvil_path(sb)) as s:
        r = ipc.call(s, type_, attrs)
        assert r.status == ipc.PERMFAIL and r.get("reason"), r


def test_peer_not_on_allow_list(sb):
    """postern-queue may reach the socket (group postern) but is not root or mail_owner."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import postern_ipc as ipc\n"
        "s = ipc.connect(sys.argv[2])\n"
        "r = ipc.call(s, 30, {'service': 'smtp', 'rip': '192.0.2.1'})\n"
        "print(r.status, r.get('reason'), r.get('count'))\n")
    res = subprocess.run([PYTHON, "-c", code, os.path.dirname(__file__), anvil_path(sb)],
                         user="postern-queue", group="postern", capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"{ipc.PERMFAIL} not allowed None"


# ---- smtpd ---------------------------------------------------------------------------------

def test_fourth_connection_refused_then_slot_freed(sb):
    wait_anvil_idle(sb)
    clients = open_clients(sb, LIMIT)
    try:
        fourth = Client(sb)
        assert fourth.greeting == refused_line(sb)
        assert fourth.at_eof(), "the refused client was not disconnected"
        fourth.close()
        wait_until(lambda: re.search(r"/smtpd\[\d+\]: warning: Connection concurrency limit "
                                     r"exceeded: 4 from unknown\[127\.0\.0\.1\] for service "
                                     r"smtp$", sb.log_text(), re.M), 5,
                   what="Postfix's concurrency warning")
        # Another service is counted apart.
        other = Client(sb, service="submission")
        assert other.greeting.startswith("220 "), other.greeting
        other.close()
        assert clients.pop().quit().startswith("221")
        clients.append(greeting_within(sb, 3))
    finally:
        close_all(clients)


def test_mynetworks_client_not_limited(sb):
    wait_anvil_idle(sb)
    clients = open_clients(sb, LIMIT)
    try:
        inside = open_clients(sb, LIMIT + 2, source=INSIDE)
        close_all(inside)
        fourth = Client(sb)
        assert fourth.greeting == refused_line(sb)
        fourth.close()
    finally:
        close_all(clients)


def test_killed_smtpd_frees_its_slot(sb):
    wait_anvil_idle(sb)
    clients, pids = [], []
    try:
        for _ in range(LIMIT):
            offset = len(sb.log_text())
            clients += open_clients(sb, 1)
            pids.append(smtpd_pid_of_new_session(sb, offset))
        assert Client(sb).greeting == refused_line(sb)
        os.kill(pids[0], signal.SIGKILL)
        wait_until(lambda: not alive(pids[0]), 5, what="the killed smtpd to go")
        clients.append(greeting_within(sb, 2))
        assert Client(sb).greeting == refused_line(sb)
    finally:
        close_all(clients)


def test_stopped_anvil_fails_open(sb):
    """A hung anvil costs each session its 200 ms timeout, never the mail."""
    wait_anvil_idle(sb)
    pid = anvil_pid(sb)
    os.kill(pid, signal.SIGSTOP)
    clients = []
    try:
        start = time.monotonic()
        clients = open_clients(sb, LIMIT + 2)
        assert time.monotonic() - start < 5
        assert "connection count limit not enforced" in sb.log_text()
    finally:
        close_all(clients)
        os.kill(pid, signal.SIGCONT)
    wait_anvil_idle(sb)
    assert anvil_pid(sb) == pid


def test_killed_anvil_fails_open_and_is_restarted(sb):
    wait_anvil_idle(sb)
    pid = anvil_pid(sb)
    held = open_clients(sb, LIMIT)
    try:
        os.kill(pid, signal.SIGKILL)
        # Mail flows whether anvil is gone or already back (with no counts).
        assert "queued as" in send_mail(sb)
        newpid = wait_until(lambda: [p.pid for p in service_children(sb.master_pid, "anvil")
                                     if p.pid != pid], 10, what="master to restart anvil")[0]
        info = ProcInfo.read(newpid)
        assert info and os.path.basename(info.cmdline[0]) == "postern-anvil"
    finally:
        close_all(held)
    # The new anvil enforces the limit again.
    wait_anvil_idle(sb)
    clients = open_clients(sb, LIMIT)
    try:
        assert Client(sb).greeting == refused_line(sb)
    finally:
        close_all(clients)
