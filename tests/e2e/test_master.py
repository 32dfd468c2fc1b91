"""test_master: postern-master as a supervisor, proved from the outside (issue 2, "Done means").

Everything here is observed, not trusted: users, capabilities, root directories and
no_new_privs come from /proc; restarts from pids; protocol behaviour from real TCP, TLS and
SOCK_SEQPACKET clients. The session sandbox serves the read-only checks; tests that kill,
reload, break or duplicate a master get their own master (conftest.OwnMaster) or sandbox.
"""

import os
import pathlib
import pwd
import shutil
import subprocess
import re
import signal
import socket
import ssl
import struct
import tempfile
import time

import pytest

import postern_ipc as ipc
from conftest import (BINDIR, CLEAR_TEXT, IMPLICIT_TLS, SERVICES, ProcInfo, alive, children_of,
                      finish_sandbox, free_ports, gid_of, postern_check, processes_under, read_text,
                      service_children, start_sandbox, tls_context, uid_of, user_groups,
                      wait_until)

CAP_SETGID, CAP_SETUID = 6, 7
SETID_CAPS = (1 << CAP_SETGID) | (1 << CAP_SETUID)      # 0xc0

# DESIGN.md §1 for the processes master runs today: service -> (user, root directory relative
# to spool_directory, or "/" for none). A new child of master must be added here to pass.
POOL_USER = "postern"
EXPECTED = {
    "smtp": (POOL_USER, "."),
    "submission": (POOL_USER, "."),
    "smtps": (POOL_USER, "."),
    "test": (POOL_USER, "."),
    "imap": (POOL_USER, "empty"),
    "imaps": (POOL_USER, "empty"),
    "pop3": (POOL_USER, "empty"),
    "pop3s": (POOL_USER, "empty"),
    "testd-single": ("postern-queue", "."),
    "testd-privileged": ("root", "/"),
    "authd": ("postern-auth", "/"),
    "queue": ("postern-queue", "."),
    "anvil": ("postern", "."),
    # the delivery agents: pools on private sockets, started when qmgr connects
    "virtual": ("vmail", "/"),
    "local": ("root", "/"),
    "smtp-agent": (POOL_USER, "."),
    "qmgr": ("postern-queue", "."),
}
PRIVILEGED = {"testd-privileged", "local"}
SINGLE = ["testd-single", "testd-privileged", "authd", "queue", "anvil"]
# The SMTP ports are served by postern-smtpd (issue 4), the IMAP ones by postern-imap-login
# (issue 6), the POP3 ones by postern-pop3-login (issue 7), the others still by postern-testd.
SMTP_SERVICES = ["smtp", "submission", "smtps"]
IMAP_SERVICES = ["imap", "imaps"]
POP3_SERVICES = ["pop3", "pop3s"]
TESTD_SERVICES = [s for s in SERVICES if s not in SMTP_SERVICES + IMAP_SERVICES + POP3_SERVICES]

SYSLOG_LINE = re.compile(r"^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \S+ "
                         r"(?:postern|postfix-postern)/[A-Za-z0-9_./-]+\[(\d+)\]: \S")
# Lines written under Dovecot's program names, for fail2ban's dovecot filter (authd's
# "auth: sql(USER,RIP): Password mismatch", "imap-login: Info: Login: ...", a session's
# "imap(USER)<PID>: ...").
DOVECOT_LINE = re.compile(r"^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \S+ "
                          r"(auth|dovecot|(?:imap|pop3)(?:-login)?(?:\([^)]*\))?(?:<\d+>)*): \S")


def expected_root(sandbox, rel):
    return "/" if rel == "/" else os.path.realpath(os.path.join(sandbox.spool, rel))


def private_socket(system, name="testd"):
    return os.path.join(system.spool, "private", name)


def single_pid(system, service, timeout=5):
    kids = wait_until(lambda: service_children(system.master_pid, service), timeout,
                      what=f"a {service} child of master")
    assert len(kids) == 1, f"more than one {service}: {kids}"
    return kids[0].pid


# ---- privileges, from /proc ----------------------------------------------------------------

def check_child(sandbox, info):
    service = info.service
    assert service in EXPECTED, f"child of master not in DESIGN.md's table: {info}"
    user, rel = EXPECTED[service]
    uid, gid = uid_of(user), gid_of(user)
    assert info.uids == (uid,) * 4, f"{service}: Uid {info.uids}, want {user} ({uid})"
    assert info.gids == (gid,) * 4, f"{service}: Gid {info.gids}, want {gid}"
    if uid != 0:
        assert set(info.groups) <= user_groups(user), \
            f"{service}: supplementary groups {info.groups} beyond {user}'s"
    assert info.no_new_privs == 1, f"{service}: NoNewPrivs {info.no_new_privs}"
    assert info.root == expected_root(sandbox, rel), f"{service}: root {info.root}"
    assert info.cap_amb == 0 and info.cap_inh == 0, f"{service}: inheritable/ambient caps"
    if service in PRIVILEGED:
        assert info.cap_eff == SETID_CAPS, f"{service}: CapEff {info.cap_eff:#x}"
        assert info.cap_bnd == SETID_CAPS, f"{service}: CapBnd {info.cap_bnd:#x}"
        assert info.cap_prm & ~SETID_CAPS == 0, f"{service}: CapPrm {info.cap_prm:#x}"
    else:
        assert info.cap_eff == 0, f"{service}: CapEff {info.cap_eff:#x}"
        assert info.cap_prm == 0, f"{service}: CapPrm {info.cap_prm:#x} (root regainable)"


def smtp_client(system, service):
    """A connection to an SMTP port, past the 220 greeting (implicit TLS on smtps)."""
    raw = socket.create_connection(("127.0.0.1", system.ports[service]), timeout=10)
    sock = tls_context(system.ca).wrap_socket(raw, server_hostname="localhost") \
        if service in IMPLICIT_TLS else raw
    greeting = sock.recv(4096)
    assert greeting.startswith(b"220 ") and greeting.endswith(b"\r\n"), greeting
    return sock


def imap_client(system, service):
    """A connection to an IMAP port, past the "* OK" greeting (implicit TLS on imaps)."""
    raw = socket.create_connection(("127.0.0.1", system.ports[service]), timeout=10)
    sock = tls_context(system.ca).wrap_socket(raw, server_hostname="localhost") \
        if service in IMPLICIT_TLS else raw
    greeting = sock.recv(4096)
    assert greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ") and greeting.endswith(b"\r\n"), \
        greeting
    return sock


def pop3_client(system, service):
    """A connection to a POP3 port, past the "+OK" greeting (implicit TLS on pop3s)."""
    raw = socket.create_connection(("127.0.0.1", system.ports[service]), timeout=10)
    sock = tls_context(system.ca).wrap_socket(raw, server_hostname="localhost") \
        if service in IMPLICIT_TLS else raw
    greeting = sock.recv(4096)
    assert greeting == b"+OK Postern ready.\r\n", greeting
    return sock


def sock_at_eof(sock, timeout):
    """True if the server closes the connection within timeout."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
        return True
    except (ConnectionResetError, ssl.SSLError, OSError) as e:
        return not isinstance(e, (socket.timeout, TimeoutError))


def test_every_child_runs_as_its_design_user(sandbox):
    # Pool processes start on demand: hold one connection per listener so each has a process.
    clients = [sandbox.connect(s) for s in TESTD_SERVICES]
    smtp = [smtp_client(sandbox, s) for s in SMTP_SERVICES]
    smtp += [imap_client(sandbox, s) for s in IMAP_SERVICES]
    smtp += [pop3_client(sandbox, s) for s in POP3_SERVICES]
    try:
        master = sandbox.master_pid
        for c in clients:
            info = ProcInfo.read(c.pid)
            assert info is not None, f"{c.service}: banner pid {c.pid} is not running"
            assert info.ppid == master, f"{c.service}: pid {c.pid} is not a child of master"
        for s in SINGLE:
            single_pid(sandbox, s)
        kids = children_of(master)
        seen = {k.service for k in kids}
        assert seen >= set(SERVICES) | set(SINGLE), f"missing services: {kids}"
        for info in kids:
            check_child(sandbox, info)
            if info.service in SMTP_SERVICES:
                assert os.path.basename(info.cmdline[0]) == "postern-smtpd", info
            if info.service in IMAP_SERVICES:
                assert os.path.basename(info.cmdline[0]) == "postern-imap-login", info
            if info.service in POP3_SERVICES:
                assert os.path.basename(info.cmdline[0]) == "postern-pop3-login", info
        me = ProcInfo.read(master)
        assert me.uids == (0,) * 4 or os.geteuid() != 0, "master runs as root"
    finally:
        for c in clients + smtp:
            c.close()


def test_killed_single_daemon_is_restarted(sandbox):
    old = single_pid(sandbox, "testd-single")
    os.kill(old, signal.SIGKILL)

    def replaced():
        kids = [k for k in service_children(sandbox.master_pid, "testd-single") if k.pid != old]
        return kids[0] if kids else None
    new = wait_until(replaced, 8, what="a new testd-single")

    def pings():
        try:
            return ipc.ping(private_socket(sandbox), "after restart")
        except OSError:
            return None
    reply = wait_until(pings, 8, interval=0.2, what="testd-single answering again")
    assert reply.status == ipc.OK and reply.get("pid") == new.pid
    # Only now has it surely dropped its privileges (it answers after the drop).
    check_child(sandbox, ProcInfo.read(new.pid))


def test_killed_pool_child_is_replaced_on_next_connection(sandbox):
    with sandbox.connect("test") as c:
        assert c.cmd("PING") == "PONG"
        os.kill(c.pid, signal.SIGKILL)
        assert c.at_eof(5), "connection of a killed process stays open"
        killed = c.pid
    with sandbox.connect("test") as c:
        assert c.pid != killed
        assert c.cmd("PING") == "PONG"
        assert ProcInfo.read(c.pid).ppid == sandbox.master_pid


# ---- the pool listeners and the test protocol ----------------------------------------------

@pytest.mark.parametrize("service", SMTP_SERVICES)
def test_smtp_ports_greet_with_smtp(sandbox, service):
    sock = smtp_client(sandbox, service)
    try:
        sock.sendall(b"QUIT\r\n")
        assert sock.recv(4096) == b"221 2.0.0 Bye\r\n"
    finally:
        sock.close()


@pytest.mark.parametrize("service", IMAP_SERVICES)
def test_imap_ports_greet_with_imap(sandbox, service):
    sock = imap_client(sandbox, service)
    try:
        sock.sendall(b"a LOGOUT\r\n")
        assert sock.recv(4096) == b"* BYE Logging out\r\na OK Logout completed.\r\n"
    finally:
        sock.close()


@pytest.mark.parametrize("service", TESTD_SERVICES)
def test_banner_and_commands_on_every_port(sandbox, service):
    with sandbox.connect(service) as c:
        assert c.service == service, f"banner {c.banner!r} on the {service} port"
        assert c.cmd("PING") == "PONG"
        assert c.cmd("ECHO hello  world") == "hello  world"
        tls = c.cmd("TLS")
        if service in IMPLICIT_TLS:
            assert tls.startswith("TLSv1.3 with cipher "), tls
        else:
            assert tls == "none"
        assert c.cmd("NOSUCHCOMMAND x") == "ERR unknown command"
        assert c.cmd("QUIT") == "BYE"
        assert c.at_eof(5), "QUIT does not close the connection"


@pytest.mark.parametrize("service", POP3_SERVICES)
def test_pop3_ports_greet_with_pop3(sandbox, service):
    sock = pop3_client(sandbox, service)
    try:
        sock.sendall(b"QUIT\r\n")
        assert sock.recv(4096) == b"+OK Logging out\r\n"
    finally:
        sock.close()


def test_implicit_tls_presents_the_sandbox_certificate(sandbox):
    # The one implicit-TLS port not tested with its protocol elsewhere here: pop3s.
    sock = pop3_client(sandbox, "pop3s")
    try:
        with open(sandbox.ca) as f:
            want = ssl.PEM_cert_to_DER_cert(f.read())
        assert sock.getpeercert(binary_form=True) == want
        assert sock.version() == "TLSv1.3"
        sock.sendall(b"STLS\r\n")
        assert sock.recv(4096) == b"-ERR TLS is already active.\r\n"
    finally:
        sock.close()
    # A client that does not trust the certificate must fail: proof that we verified it.
    untrusting = ssl.create_default_context()
    untrusting.load_default_certs()
    with pytest.raises(ssl.SSLCertVerificationError):
        with socket.create_connection(("127.0.0.1", sandbox.ports["pop3s"]), timeout=5) as s:
            untrusting.wrap_socket(s, server_hostname="localhost")


@pytest.mark.parametrize("service", [s for s in CLEAR_TEXT
                                     if s not in SMTP_SERVICES + IMAP_SERVICES + POP3_SERVICES])
def test_starttls_discards_pipelined_commands(sandbox, service):
    with sandbox.connect(service) as c:
        # One write: the PING travels in the same packet as STARTTLS and must be dropped.
        c.send(b"STARTTLS\r\nPING\r\n")
        assert c.readline() == "OK begin TLS"
        time.sleep(0.2)         # give a buggy server time to answer the PING in clear text
        c.sock.setblocking(False)
        try:
            early = c.sock.recv(4096)
        except BlockingIOError:
            early = b""
        c.sock.settimeout(c.timeout)
        assert early == b"", f"server answered in clear text after STARTTLS: {early!r}"
        c.starttls(tls_context(sandbox.ca))
        assert c.cmd("ECHO x") == "x", "a command pipelined with STARTTLS was executed"
        assert c.cmd("TLS").startswith("TLSv1.3 with cipher ")
        assert c.cmd("STARTTLS") == "ERR already in TLS"


def test_overlong_line_is_refused(sandbox):
    with sandbox.connect("test") as c:
        # 1000 bytes with the CRLF: within the limit however it is counted.
        assert c.cmd("ECHO " + "y" * 993) == "y" * 993
        # 1001 bytes before the CRLF: over the limit however it is counted.
        assert c.cmd("ECHO " + "y" * 996) == "ERR line too long"
        c.send("ECHO " + "z" * 5000 + "\r\nPING\r\n")
        assert c.readline() == "ERR line too long"
        # The rest of the long line must be discarded, not parsed as a new command.
        nxt = c.readline()
        assert nxt in ("PONG", None), f"after the long line: {nxt!r}"


# ---- IPC on the private sockets ------------------------------------------------------------

@pytest.mark.parametrize("name,service,user", [("testd", "testd-single", "postern-queue"),
                                               ("testd-priv", "testd-privileged", "root")])
def test_ipc_ping(sandbox, name, service, user):
    pid = single_pid(sandbox, service)
    with ipc.connect(private_socket(sandbox, name)) as s:
        for i, text in enumerate(["hello", "", "ünïcode and spaces"]):
            reply = ipc.call(s, ipc.TESTD_PING, {"text": text}, id_=1000 + i)
            assert reply is not None, "server closed the connection"
            assert (reply.type, reply.id, reply.status) == (ipc.TESTD_PING, 1000 + i, ipc.OK)
            assert reply.get("text") == text
            assert reply.kinds["pid"] == ipc.INT and reply.get("pid") == pid
            assert reply.get("uid") == uid_of(user)


def run_as(user, fn):
    """Run fn() in a child process as user (no supplementary groups beyond user's); return
    what it returned (a short string)."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(r)
            os.setgroups(list(user_groups(user)))
            os.setgid(gid_of(user))
            os.setuid(uid_of(user))
            out = fn()
        except BaseException as e:       # report, never return into pytest
            out = f"exception {type(e).__name__}: {e}"
        os.write(w, out.encode()[:4000])
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    os.waitpid(child, 0)
    return out


def ping_outcome(path):
    try:
        reply = ipc.ping(path, "who am i")
    except PermissionError:
        return "denied by the file system"
    if reply is None:
        return "closed"
    if reply.status == ipc.PERMFAIL:
        return "PERMFAIL " + str(reply.get("reason"))
    return f"status {reply.status} uid {reply.get('uid')}"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as other users")
@pytest.mark.parametrize("name,owner", [("testd", "postern-queue"), ("testd-priv", "root")])
def test_ipc_peer_credentials_are_checked(sandbox, name, owner):
    """Only root and postern may ask; everyone else is refused by SO_PEERCRED (PERMFAIL with
    a reason) or cannot reach the socket at all."""
    path = private_socket(sandbox, name)
    assert ping_outcome(path) == f"status 0 uid {uid_of(owner)}"
    assert run_as("postern", lambda: ping_outcome(path)) == f"status 0 uid {uid_of(owner)}"
    for user in ("postern-queue", "postern-auth", "nobody"):
        out = run_as(user, lambda: ping_outcome(path))
        assert out == "denied by the file system" or \
            (out.startswith("PERMFAIL ") and out != "PERMFAIL None"), f"{user}: {out}"


def bad_frames():
    good = ipc.encode_attr("text", "x")
    return {
        "short header": b"PN\x01\x00\x00\x01",
        "bad magic": ipc.encode_raw(1, 1, good, magic=b"XX"),
        "bad version": ipc.encode_raw(1, 1, good, version=9),
        "length too long": ipc.encode_raw(1, 1, good, length=len(good) + 10),
        "length too short": ipc.encode_raw(1, 1, good, length=len(good) - 1),
        "nfds without fds": ipc.encode_raw(1, 1, good, nfds=1),
        "bad key": ipc.encode_raw(1, 1, ipc.attr_raw(ipc.STR, b"Te-xt", b"x")),
        "empty key": ipc.encode_raw(1, 1, ipc.attr_raw(ipc.STR, b"", b"x")),
        "duplicate key": ipc.encode_raw(1, 1, good + good),
        "unknown kind": ipc.encode_raw(1, 1, ipc.attr_raw(9, b"text", b"x")),
        "short int": ipc.encode_raw(1, 1, ipc.attr_raw(ipc.INT, b"n", b"\0\0\0\1")),
        "NUL in string": ipc.encode_raw(1, 1, ipc.attr_raw(ipc.STR, b"text", b"a\0b")),
        "value overruns": ipc.encode_raw(1, 1, b"\x01\x04text" + struct.pack(">I", 99) + b"x"),
        "truncated attribute": ipc.encode_raw(1, 1, good[:5]),
    }


@pytest.mark.parametrize("what", list(bad_frames()))
def test_ipc_malformed_frame_closes_connection(sandbox, what):
    before = single_pid(sandbox, "testd-single")
    with ipc.connect(private_socket(sandbox)) as s:
        s.send(bad_frames()[what])
        assert ipc.wait_eof(s, 5), f"{what}: connection still open"
    # The daemon itself survives and still answers.
    reply = ipc.ping(private_socket(sandbox), "still there")
    assert reply.status == ipc.OK and reply.get("pid") == before


# ---- logging and configuration -------------------------------------------------------------

def test_log_lines_have_syslog_format(sandbox):
    lines = [ln for ln in sandbox.log_text().splitlines() if ln.strip()]
    assert lines, "empty log"
    bad = [ln for ln in lines if not SYSLOG_LINE.match(ln) and not DOVECOT_LINE.match(ln)]
    assert not bad, f"lines not in syslog format: {bad[:5]}"
    master = sandbox.master_pid
    mine = [ln for ln in lines if f" postern/master[{master}]: " in ln]
    assert mine, f"no line from postern/master[{master}]"


def test_postern_check_accepts_the_sandbox_config(sandbox):
    res = postern_check(sandbox.conf)
    assert (res.returncode, res.stdout) == (0, ""), res.stdout + res.stderr


BAD_LINES = {
    "unknown parameter": "no_such_parameter = 1",
    "bad integer": "max_use = lots",
    "out of range": "max_use = 0",
    "bad boolean": "test_services = perhaps",
    "bad time": "max_idle = 10 fortnights",
}


@pytest.mark.parametrize("what", list(BAD_LINES))
def test_config_error_names_file_and_line(own_master, what):
    m = own_master()
    (line,) = m.write_config([BAD_LINES[what]])
    t0 = time.monotonic()
    res = m.run_master("-f", timeout=15)
    assert res.returncode != 0, f"postern-master accepted {BAD_LINES[what]!r}"
    assert time.monotonic() - t0 < 10
    assert f"{m.conf}:{line}:" in res.output, res.output
    assert not processes_under(m.dir), "a master with a bad config left processes"

    chk = postern_check(m.conf)
    assert chk.returncode == 1
    assert any(ln.startswith(f"{m.conf}:{line}:") for ln in chk.stdout.splitlines()), \
        chk.stdout + chk.stderr


def test_postern_check_reports_every_problem(own_master):
    m = own_master()
    lines = m.write_config(["no_such_parameter = 1", "# a comment", "max_use = lots"])
    chk = postern_check(m.conf)
    assert chk.returncode == 1
    out = chk.stdout.splitlines()
    for n in (lines[0], lines[2]):
        assert sum(ln.startswith(f"{m.conf}:{n}:") for ln in out) == 1, chk.stdout


def test_postern_check_reports_sql_conf_problems(own_master, tmp_path):
    """sql.conf readable by others, with an unknown parameter and a bad query template."""
    sql = tmp_path / "sql.conf"
    sql.write_text("hosts = unix:/nonexistent.sock\nno_such_thing = 1\n")
    os.chmod(sql, 0o644)
    m = own_master()
    m.write_config([f"sql_config = {sql}"])
    chk = postern_check(m.conf)
    assert chk.returncode == 1, chk.stdout
    assert "must not be accessible by group or others" in chk.stdout, chk.stdout
    os.chmod(sql, 0o600)
    chk = postern_check(m.conf)
    assert chk.returncode == 1, chk.stdout
    assert any(ln.startswith(f"{sql}:2:") for ln in chk.stdout.splitlines()), chk.stdout
    sql.write_text("hosts = unix:/nonexistent.sock\n"
                   "user_query = SELECT 1 FROM t WHERE a='%q'\n")
    chk = postern_check(m.conf)
    assert chk.returncode == 1, chk.stdout
    assert any(ln.startswith(f"{sql}:2:") for ln in chk.stdout.splitlines()), chk.stdout


# ---- masters of their own ------------------------------------------------------------------

def test_two_masters_cannot_run_at_once(own_master):
    m = own_master()
    first = m.start()
    res = m.run_master(timeout=15)
    assert res.returncode != 0, "a second master started"
    assert f"another master is running (pid {first})" in res.output, res.output
    assert m.master_pid == first and alive(first)
    with m.connect("test") as c:               # the second attempt broke nothing
        assert c.cmd("PING") == "PONG"


def test_sigterm_leaves_no_process_behind(own_master):
    m = own_master()
    master = m.start(wait_for=("test",))
    imaps = wait_until(lambda: imap_client(m, "imaps"), 15, what="the imaps listener")
    busy = [m.connect("test")]   # live connections must not hold it up
    single_pid(m, "testd-single")
    single_pid(m, "testd-privileged")
    everything = {master} | {k.pid for k in children_of(master)}
    assert len(everything) >= 5
    t0 = time.monotonic()
    os.kill(master, signal.SIGTERM)
    wait_until(lambda: not any(alive(p) for p in everything) and not processes_under(m.dir),
               5, what="every process of the master to end")
    elapsed = time.monotonic() - t0
    assert elapsed < 5
    for c in busy:
        assert c.at_eof(2)
        c.close()
    assert sock_at_eof(imaps, 2)
    imaps.close()


def test_sighup_reload_keeps_live_connections(own_master):
    m = own_master()
    master = m.start()
    with m.connect("test") as live:
        assert live.cmd("ECHO before") == "before"
        m.settings["max_idle"] = "20s"          # something changed, so a restart is due
        m.write_config()
        os.kill(master, signal.SIGHUP)
        time.sleep(1.0)
        assert live.cmd("ECHO after reload") == "after reload"
        with m.connect("test") as fresh:
            assert fresh.cmd("PING") == "PONG"
        assert live.cmd("PING") == "PONG"
    assert m.master_pid == master and alive(master)
    single_pid(m, "testd-single")


def test_sighup_applies_a_changed_listener(own_master):
    m = own_master()
    master = m.start()
    old_port = m.ports["test"]
    (new_port,) = free_ports(1)
    m.ports["test"] = new_port
    m.write_config()
    os.kill(master, signal.SIGHUP)
    m.wait_listener("test", timeout=5)

    def old_port_closed():
        try:
            socket.create_connection(("127.0.0.1", old_port), timeout=1).close()
            return False
        except ConnectionRefusedError:
            return True
    wait_until(old_port_closed, 5, what=f"the old test port {old_port} to close")
    assert m.master_pid == master and alive(master)


def test_failing_service_is_throttled(own_master):
    m = own_master({"tls_cert_file": "/nonexistent", "service_throttle_time": "1s"})
    master = m.start(wait_for=())
    port = m.ports["smtps"]
    seen = set()
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:      # keep asking, so master keeps wanting a process
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.recv(1)
        except OSError:
            pass
        seen.update(k.pid for k in service_children(master, "smtps"))
        time.sleep(0.02)
    wanted = re.compile(rf" postern/master\[{master}\]: .*warning.*throttl", re.I)
    lines = wait_until(lambda: [ln for ln in m.log_text().splitlines() if wanted.search(ln)],
                       5, what="a master warning about throttling")
    assert lines
    assert alive(master), "master died because a service failed"
    failed = {int(p) for p in re.findall(r" postern/smtps(?:/smtpd)?\[(\d+)\]: ", m.log_text())}
    assert len(seen | failed) <= 10, \
        f"{len(seen | failed)} smtps processes in 4 s: not throttled"


# ---- a second sandbox: --set, max_use and stop ---------------------------------------------

@pytest.fixture(scope="module")
def sandbox_max_use(sandbox):
    sb = start_sandbox("postern-e2e-set-", ["max_use=2"])
    yield sb
    finish_sandbox(sb)


def test_sandbox_set_overrides(sandbox_max_use):
    lines = read_text(sandbox_max_use.conf).splitlines()
    assert lines[-1] == "max_use = 2"
    assert "max_use = 100" not in lines


def test_max_use_retires_pool_processes(sandbox_max_use):
    pids = []
    for _ in range(5):
        with sandbox_max_use.connect("test") as c:
            pids.append(c.pid)
            assert c.cmd("QUIT") == "BYE"
            assert c.at_eof(5)
    assert len(set(pids)) >= 3, pids
    assert all(pids.count(p) <= 2 for p in pids), f"a process served > max_use: {pids}"


def test_sandbox_stop_leaves_nothing_running(sandbox_max_use):
    sb = sandbox_max_use
    assert processes_under(sb.dir)
    res = sb.stop()
    assert res.returncode == 0, res.stdout + res.stderr
    assert not processes_under(sb.dir)
    assert not os.path.exists(os.path.join(sb.dir, "env"))
    assert sb.stop().returncode == 0, "stop is not idempotent"


def test_sandbox_env_and_files(sandbox):
    env = sandbox.env
    for key in ["POSTERN_CONF", "POSTERN_MYSQL_SOCKET", "POSTERN_MAIL_ROOT", "POSTERN_SPOOL",
                "POSTERN_CA", "POSTERN_LOG", "POSTERN_DIR", "POSTERN_BIN",
                "POSTERN_MASTER_PID", "POSTERN_DB"] + \
            [f"POSTERN_{s.upper()}_PORT" for s in SERVICES]:
        assert env.get(key), f"{key} missing from env"
    assert int(env["POSTERN_MASTER_PID"]) == sandbox.master_pid
    etc = os.path.dirname(sandbox.conf)
    modes = {"cert.pem": 0o644, "key.pem": 0o600, "sql.conf": 0o600}
    for name, mode in modes.items():
        st = os.stat(os.path.join(etc, name))
        assert st.st_mode & 0o777 == mode, f"{name}: mode {st.st_mode & 0o777:o}"
    if os.geteuid() == 0:
        assert os.stat(os.path.join(etc, "sql.conf")).st_uid == uid_of("postern-auth")
        assert os.stat(env["POSTERN_MAIL_ROOT"]).st_uid == uid_of("vmail")


# ---- root, and the unprivileged developer mode ----------------------------------------------

@pytest.fixture
def dev_dir():
    """A directory every user can reach (pytest's own tmp_path is root-only)."""
    d = tempfile.mkdtemp(prefix="postern-dev-", dir="/tmp")
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def dev_setup(tmp_path):
    """A config a non-root user can run: everything under a directory nobody owns."""
    nobody = pwd.getpwnam("nobody")
    root = tmp_path / "dev"
    (root / "etc").mkdir(parents=True)
    (port,) = free_ports(1)
    sql = root / "etc" / "sql.conf"
    sql.write_text("hosts = unix:/nonexistent.sock\n")
    os.chmod(sql, 0o600)
    conf = root / "etc" / "postern.conf"
    empty = ["submission", "smtps", "imap", "imaps", "pop3", "pop3s"]
    conf.write_text("\n".join([
        "inet_interfaces = 127.0.0.1", f"smtp_listen = {port}",
        *[f"{s}_listen =" for s in empty],
        f"spool_directory = {root}/spool", f"config_directory = {root}/etc",
        f"daemon_directory = {BINDIR}", f"log_file = {root}/log",
        f"sql_config = {sql}", "tls_cert_file =", "tls_key_file =", ""]))
    for dirpath, dirs, files in os.walk(tmp_path):
        for name in [dirpath] + [os.path.join(dirpath, f) for f in dirs + files]:
            os.chown(name, nobody.pw_uid, nobody.pw_gid)
    os.chmod(tmp_path, 0o755)
    return nobody, str(conf), port, root


def as_user(pw):
    def drop():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return drop


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_master_refuses_non_root_without_u(dev_dir):
    nobody, conf, _, _ = dev_setup(dev_dir)
    r = subprocess.run([os.path.join(BINDIR, "postern-master"), "-c", conf, "-f"],
                       preexec_fn=as_user(nobody), capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "must run as root" in r.stderr and "-u" in r.stderr, r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_developer_mode_runs_unprivileged(dev_dir):
    nobody, conf, port, root = dev_setup(dev_dir)
    r = subprocess.run([os.path.join(BINDIR, "postern-master"), "-c", conf, "-u"],
                       preexec_fn=as_user(nobody), capture_output=True, text=True, timeout=15)
    assert r.returncode == 0, r.stderr
    pid = int((root / "spool" / "pid" / "master.pid").read_text())
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        banner = s.makefile("rb").readline()
        assert banner.startswith(b"220 "), banner
        kids = [k for k in children_of(pid) if k.service == "smtp"]
        assert len(kids) >= 1, children_of(pid)
        child = kids[0].pid
        with open(f"/proc/{child}/status") as f:
            uid_line = next(ln for ln in f if ln.startswith("Uid:"))
        assert uid_line.split()[1:] == [str(nobody.pw_uid)] * 4, uid_line
        assert os.readlink(f"/proc/{child}/root") == "/", "no chroot in developer mode"
        s.close()
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}/status") or
                   "State:\tZ" in open(f"/proc/{pid}/status").read(), 10, what="master to stop")
