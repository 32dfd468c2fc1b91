"""test_local: postern-local from the outside (issue 5, lib/deliverproto.h).

Each test plays qmgr: it writes a queue file with build/tests/tools/qfwrite (helpers from
test_virtual), opens it read-only and sends DELIVER over $POSTERN_SPOOL/private/local with
the descriptor attached, as root. The module creates its own system users (useradd, uid >=
1000, removed at the end), a root-owned aliases file and a Debian-like mail spool (root:mail
2775) in a temporary directory, and runs its own sandbox with local_enable=yes pointing
there; the Maildir case (home_mailbox=Maildir/) runs a second sandbox.
"""

import fcntl
import grp
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import postern_ipc as ipc
from conftest import BINDIR, finish_sandbox, make_world_dir, start_sandbox, wait_until
from test_virtual import DELIVER, QFWRITE, QueueFile, request

QFCHECK = os.path.join(BINDIR, "tests", "tools", "qfcheck")
SENDER = "sender@example.org"
SUFFIX = str(os.getpid() % 100000)
NAMES = {n: f"pl{n}{SUFFIX}" for n in ("alice", "bob", "carol", "dave")}
BODY = (b"From: sender@example.org\r\nTo: someone@localhost\r\nSubject: local test\r\n\r\n"
        b"From the start of a line\r\nline two\r\n>From already quoted\r\nFrom\r\n"
        b"a bare\rcarriage return\r\nFrom x\r\nno final line end")
DATE = rb"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}"
CAP_SETGID, CAP_SETUID = 6, 7
NOBODY = pwd.getpwnam("nobody")


# ---- helpers -------------------------------------------------------------------------------

def mbox_text(body, rcpt, sender=SENDER):
    """What one delivery appends to an mbox, with the date as a regular expression."""
    text = body.replace(b"\r\n", b"\n")
    text = re.sub(rb"(?m)^From ", b">From ", text)
    if not text.endswith(b"\n"):
        text += b"\n"
    head = (f"Return-Path: <{sender}>\nDelivered-To: {rcpt}\n").encode()
    return (b"From " + re.escape((sender or "MAILER-DAEMON").encode()) + b" " + DATE + b"\n" +
            re.escape(head + text + b"\n"))


def split_mbox(data):
    """The messages of an mbox (lines starting "From " are quoted, so they separate)."""
    starts = [m.start() for m in re.finditer(rb"(?m)^From ", data)]
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]


def sock_path(sb):
    return os.path.join(sb.spool, "private", "local")


def send(sb, attrs, fds, id_=11, timeout=60):
    with ipc.connect(sock_path(sb), timeout) as s:
        frame = ipc.encode(DELIVER, id_, attrs, nfds=len(fds))
        socket.send_fds(s, [frame], fds)
        s.settimeout(timeout)
        reply = ipc.recv_msg(s)
    assert reply is not None and reply.id == id_, reply
    return reply


def deliver(sb, tmp, rcpts, body=BODY, sender=SENDER, origs=None):
    """One message to rcpts; its queue id and the (code, dsn, text) of each recipient."""
    qf = QueueFile(tmp, body=body, sender=sender, rcpts=rcpts)
    try:
        reply = send(sb, request(qf, rcpts, origs), [qf.fd])
    finally:
        qf.close()
    assert reply.status == ipc.OK, reply
    out = []
    for i in range(len(rcpts)):
        assert reply.get(f"relay{i}") == "local"
        out.append((reply.get(f"code{i}"), reply.get(f"dsn{i}"), reply.get(f"text{i}")))
    return qf.qid, out


def wait_ready(sb):
    def answers():
        try:
            with ipc.connect(sock_path(sb), 2) as s:
                r = ipc.call(s, DELIVER, {"nrcpt": 1}, 1, 2)
                return r is not None and r.status == ipc.PERMFAIL
        except OSError:
            return False
    wait_until(answers, 20, interval=0.1, what="postern-local answering")


def wait_log(sb, pattern, what):
    rx = re.compile(pattern, re.M)
    return wait_until(lambda: rx.search(sb.log_text()), 5, what=what)


class World:
    """The users, spool, homes and aliases file the sandboxes deliver into."""

    def __init__(self):
        self.dir = make_world_dir("postern-local-")
        self.spool = os.path.join(self.dir, "mail")
        self.homes = os.path.join(self.dir, "home")
        self.out = os.path.join(self.dir, "out")     # where commands and files write
        self.etc = os.path.join(self.dir, "etc")
        self.aliases = os.path.join(self.etc, "aliases")
        self.users = {}
        os.makedirs(self.spool)
        os.chown(self.spool, 0, grp.getgrnam("mail").gr_gid)
        os.chmod(self.spool, 0o2775)                  # Debian's /var/mail
        for d in (self.homes, self.etc):
            os.makedirs(d, mode=0o755)
        os.makedirs(self.out)
        os.chmod(self.out, 0o1777)

    def add_users(self):
        for short, name in NAMES.items():
            subprocess.run(["userdel", name], capture_output=True)     # a leftover
            home = os.path.join(self.homes, name)
            res = subprocess.run(["useradd", "-M", "-U", "-d", home, "-s",
                                  "/usr/sbin/nologin", name], capture_output=True, text=True)
            assert res.returncode == 0, res.stderr
            pw = pwd.getpwnam(name)
            assert pw.pw_uid >= 1000
            os.makedirs(home, mode=0o700)
            os.chown(home, pw.pw_uid, pw.pw_gid)
            self.users[short] = pw

    def remove_users(self):
        for name in NAMES.values():
            subprocess.run(["userdel", name], capture_output=True)

    def write_aliases(self, text, owner=0, mode=0o644):
        """Replace the aliases file (a new inode, as editors do)."""
        tmp = self.aliases + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.chown(tmp, owner, 0)
        os.chmod(tmp, mode)
        os.rename(tmp, self.aliases)

    def standard_aliases(self):
        a, b = NAMES["alice"], NAMES["bob"]
        out = self.out
        return (f"# aliases of test_local\n"
                f"Team: {a},\n    {b}@localhost\n"
                f"cmd: \"|id -un > {out}/cmd.who; cat > {out}/cmd.msg; env > {out}/cmd.env\"\n"
                f"tempfail: \"|exit 75\"\n"
                f"permfail: \"|echo no such luck >&2; exit 1\"\n"
                f"slow: \"|sleep 30\"\n"
                f"tofile: {out}/file.mbox\n"
                f"loopa: loopb\n"
                f"loopb: loopa\n"
                f"selfish: \\{a}, {b}\n"
                f"fwd: Someone@Remote.Example\n"
                f"both: someone@remote.example, {a}\n"
                f"inc: :include:{self.etc}/staff\n")

    def mbox(self, short):
        return os.path.join(self.spool, NAMES[short])

    def read_mbox(self, short):
        try:
            with open(self.mbox(short), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""


@pytest.fixture(scope="module")
def world():
    w = World()
    try:
        w.add_users()
        w.write_aliases(w.standard_aliases())
        with open(os.path.join(w.etc, "staff"), "w") as f:
            f.write(f"# the staff\n{NAMES['carol']}\n{NAMES['dave']}, \"|exit 0\"\n")
        yield w
    finally:
        w.remove_users()
        shutil.rmtree(w.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def lsb(world):
    if not os.access(QFWRITE, os.X_OK) or not os.access(QFCHECK, os.X_OK):
        pytest.fail("the test tools are missing: run `make all` first")
    sb = start_sandbox("postern-local-sb-", [
        "local_enable=yes", f"aliases_file={world.aliases}",
        f"mail_spool_directory={world.spool}", "local_command_timeout=3s"])
    try:
        wait_ready(sb)
    except BaseException:
        finish_sandbox(sb)
        raise
    yield sb
    finish_sandbox(sb)


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="postern-lq-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def addr(short):
    return f"{NAMES[short]}@localhost"


# ---- the process ---------------------------------------------------------------------------

def test_runs_as_root_with_two_capabilities(lsb, world, tmp):
    deliver(lsb, tmp, [addr("dave")])         # make sure a process exists
    kids = wait_until(lambda: [c for c in lsb.children() if c.service == "local"], 10,
                      what="a local child of master")
    for k in kids:
        assert k.uids == (0, 0, 0, 0)
        assert k.cap_eff == k.cap_prm == (1 << CAP_SETUID) | (1 << CAP_SETGID), k
        assert k.cap_bnd == (1 << CAP_SETUID) | (1 << CAP_SETGID), k
        assert k.no_new_privs == 1
        assert k.root == "/"


# ---- mailboxes -----------------------------------------------------------------------------

def test_mbox_byte_exact(lsb, world, tmp):
    before = world.read_mbox("alice")
    qid, res = deliver(lsb, tmp, [addr("alice")])
    assert res == [(250, "2.0.0", "delivered to mailbox")]
    data = world.read_mbox("alice")
    assert data.startswith(before)
    assert re.fullmatch(mbox_text(BODY, addr("alice")), data[len(before):]), data[len(before):]
    st = os.stat(world.mbox("alice"))
    assert st.st_uid == world.users["alice"].pw_uid    # written as the user
    assert st.st_mode & 0o777 == 0o600
    assert not os.path.exists(world.mbox("alice") + ".lock")
    wait_log(lsb, rf"postern/local\[\d+\]: {qid}: to=<{addr('alice')}>, relay=local, "
             r"delay=[\d.]+, delays=[\d.]+/[\d.]+/0/[\d.]+, dsn=2\.0\.0, "
             r"status=sent \(delivered to mailbox\)$", "the delivery log line")
    # A second message is appended after the first.
    deliver(lsb, tmp, [addr("alice")], body=b"Subject: two\r\n\r\nsecond\r\n", sender="")
    msgs = split_mbox(world.read_mbox("alice"))
    assert re.fullmatch(mbox_text(b"Subject: two\r\n\r\nsecond\r\n", addr("alice"), ""),
                        msgs[-1])


def test_extension_is_stripped(lsb, world, tmp):
    _, res = deliver(lsb, tmp, [f"{NAMES['alice'].upper()}+Lists@localhost"])
    assert res[0][0] == 250, res
    last = split_mbox(world.read_mbox("alice"))[-1]
    assert f"\nDelivered-To: {NAMES['alice']}+lists@localhost\n".encode() in last


def test_concurrent_deliveries_stay_intact(lsb, world, tmp):
    bodies = [f"Subject: {tag}\r\n\r\n".encode() + (tag.encode() * 200 + b"\r\n") * 2000
              for tag in ("one", "two")]
    results = []

    def one(body):
        results.append(deliver(lsb, tmp, [addr("carol")], body=body)[1])

    threads = [threading.Thread(target=one, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r[0][0] for r in results) == [250, 250], results
    msgs = split_mbox(world.read_mbox("carol"))
    assert len(msgs) == 2
    for body in bodies:     # each message whole, in one piece, whatever the order
        assert any(re.fullmatch(mbox_text(body, addr("carol")), m) for m in msgs)


def test_waits_for_the_fcntl_lock(lsb, world, tmp):
    deliver(lsb, tmp, [addr("dave")])
    path = world.mbox("dave")
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDWR)
    results = []
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        t = threading.Thread(target=lambda: results.append(deliver(lsb, tmp, [addr("dave")])))
        t.start()
        time.sleep(1.5)
        assert t.is_alive() and os.path.getsize(path) == size   # waiting, nothing written
    finally:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        os.close(fd)
    t.join(30)
    assert results and results[0][1][0][0] == 250
    assert os.path.getsize(path) > size


def test_waits_for_the_dotlock_and_breaks_a_stale_one(lsb, world, tmp):
    lock = world.mbox("dave") + ".lock"
    count = len(split_mbox(world.read_mbox("dave")))
    open(lock, "w").close()
    results = []
    t = threading.Thread(target=lambda: results.append(deliver(lsb, tmp, [addr("dave")])))
    t.start()
    time.sleep(1.2)
    assert t.is_alive() and len(split_mbox(world.read_mbox("dave"))) == count
    os.unlink(lock)
    t.join(30)
    assert results and results[0][1][0][0] == 250
    assert len(split_mbox(world.read_mbox("dave"))) == count + 1
    # A dotlock older than the stale time is removed and does not delay the delivery.
    open(lock, "w").close()
    os.utime(lock, (time.time() - 1000, time.time() - 1000))
    started = time.monotonic()
    _, res = deliver(lsb, tmp, [addr("dave")])
    assert res[0][0] == 250 and time.monotonic() - started < 5
    assert not os.path.exists(lock)
    assert len(split_mbox(world.read_mbox("dave"))) == count + 2


def test_root_without_alias_gets_the_spool_mailbox(lsb, world, tmp):
    _, res = deliver(lsb, tmp, ["root@localhost"])
    assert res == [(250, "2.0.0", "delivered to mailbox")]
    path = os.path.join(world.spool, "root")
    st = os.stat(path)
    assert st.st_uid == 0 and st.st_mode & 0o777 == 0o600
    with open(path, "rb") as f:
        assert re.fullmatch(mbox_text(BODY, "root@localhost"), split_mbox(f.read())[-1])


def test_unknown_user_bounces(lsb, world, tmp):
    qid, res = deliver(lsb, tmp, ["ghost-nobody-here@localhost"])
    assert res == [(550, "5.1.1", 'unknown user: "ghost-nobody-here"')]
    wait_log(lsb, rf"{qid}: to=<ghost-nobody-here@localhost>, relay=local, .*dsn=5\.1\.1, "
             r"status=bounced \(unknown user: \"ghost-nobody-here\"\)$", "the bounce line")


def test_system_account_below_minimum_uid_refused(lsb, world, tmp):
    _, res = deliver(lsb, tmp, ["daemon@localhost"])
    assert res[0][:2] == (550, "5.7.1"), res
    assert not os.path.exists(os.path.join(world.spool, "daemon"))


# ---- aliases -------------------------------------------------------------------------------

def test_alias_to_two_users(lsb, world, tmp):
    na, nb = (len(split_mbox(world.read_mbox(u))) for u in ("alice", "bob"))
    qid, res = deliver(lsb, tmp, ["team@localhost"])
    assert res == [(250, "2.0.0", "delivered to mailbox")]
    assert len(split_mbox(world.read_mbox("alice"))) == na + 1
    assert len(split_mbox(world.read_mbox("bob"))) == nb + 1
    last = split_mbox(world.read_mbox("bob"))[-1]
    assert re.fullmatch(mbox_text(BODY, addr("bob")), last)
    assert os.stat(world.mbox("bob")).st_uid == world.users["bob"].pw_uid
    for short in ("alice", "bob"):
        wait_log(lsb, rf"{qid}: to=<{addr(short)}>, orig_to=<team@localhost>, relay=local, "
                 r".*status=sent \(delivered to mailbox\)$", f"the line for {short}")


def test_duplicates_within_a_request_are_delivered_once(lsb, world, tmp):
    na = len(split_mbox(world.read_mbox("alice")))
    _, res = deliver(lsb, tmp, [addr("alice"), "team@localhost", "selfish@localhost"])
    assert [r[0] for r in res] == [250, 250, 250], res
    assert len(split_mbox(world.read_mbox("alice"))) == na + 1


def test_backslash_user_is_not_expanded_again(lsb, world, tmp):
    na, nb = (len(split_mbox(world.read_mbox(u))) for u in ("alice", "bob"))
    _, res = deliver(lsb, tmp, ["selfish@localhost"])
    assert res[0][0] == 250, res
    assert len(split_mbox(world.read_mbox("alice"))) == na + 1
    assert len(split_mbox(world.read_mbox("bob"))) == nb + 1


def test_command_runs_as_default_privs_with_the_message(lsb, world, tmp):
    for f in ("cmd.who", "cmd.msg", "cmd.env"):
        if os.path.exists(os.path.join(world.out, f)):
            os.unlink(os.path.join(world.out, f))
    qid, res = deliver(lsb, tmp, ["cmd@localhost"])
    assert res[0][:2] == (250, "2.0.0"), res
    assert res[0][2].startswith(f"delivered to command: id -un > {world.out}/cmd.who")
    with open(os.path.join(world.out, "cmd.who")) as f:
        assert f.read().strip() == "nobody"
    msg = os.path.join(world.out, "cmd.msg")
    assert os.stat(msg).st_uid == NOBODY.pw_uid
    with open(msg, "rb") as f:
        data = f.read()
    text = BODY.replace(b"\r\n", b"\n") + b"\n"     # no >From quoting for commands
    assert re.fullmatch(b"From " + re.escape(SENDER.encode()) + b" " + DATE + b"\n" +
                        re.escape(f"Return-Path: <{SENDER}>\nDelivered-To: cmd@localhost\n"
                                  .encode() + text), data), data
    with open(os.path.join(world.out, "cmd.env")) as f:
        env = dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)
    assert env["RECIPIENT"].strip() == "cmd@localhost"
    assert env["SENDER"].strip() == SENDER
    assert env["USER"].strip() == "nobody"
    assert "POSTERN_CONF" not in env
    wait_log(lsb, rf"{qid}: to=<cmd@localhost>, relay=local, .*status=sent \(delivered to "
             r"command: id -un", "the command line")


def test_command_exit_status(lsb, world, tmp):
    _, res = deliver(lsb, tmp, ["tempfail@localhost", "permfail@localhost"])
    assert res[0][:2] == (451, "4.3.0"), res
    assert "status 75" in res[0][2]
    assert res[1][:2] == (550, "5.3.0"), res
    assert "status 1" in res[1][2] and "Command output: no such luck" in res[1][2]


def test_command_time_limit_is_temporary(lsb, world, tmp):
    started = time.monotonic()
    _, res = deliver(lsb, tmp, ["slow@localhost"])
    assert res[0][:2] == (451, "4.3.0"), res
    assert "time limit" in res[0][2]
    assert time.monotonic() - started < 20      # local_command_timeout = 3s


def test_file_target(lsb, world, tmp):
    path = os.path.join(world.out, "file.mbox")
    if os.path.exists(path):
        os.unlink(path)
    _, res = deliver(lsb, tmp, ["tofile@localhost"])
    assert res == [(250, "2.0.0", f"delivered to file: {path}")]
    with open(path, "rb") as f:
        assert re.fullmatch(mbox_text(BODY, "tofile@localhost"), f.read())
    assert os.stat(path).st_uid == NOBODY.pw_uid


def test_include_file(lsb, world, tmp):
    nc, nd = (len(split_mbox(world.read_mbox(u))) for u in ("carol", "dave"))
    _, res = deliver(lsb, tmp, ["inc@localhost"])
    assert res[0][0] == 250, res
    assert len(split_mbox(world.read_mbox("carol"))) == nc + 1
    assert len(split_mbox(world.read_mbox("dave"))) == nd + 1


def test_alias_loop_bounces(lsb, world, tmp):
    _, res = deliver(lsb, tmp, ["loopa@localhost"])
    assert res == [(554, "5.4.6", "mail forwarding loop for loopa@localhost")]


def test_delivered_to_loop_bounces(lsb, world, tmp):
    n = len(split_mbox(world.read_mbox("bob")))
    body = f"Delivered-To: {NAMES['bob'].upper()}@LocalHost\r\n".encode() + BODY
    _, res = deliver(lsb, tmp, [addr("bob"), addr("alice")], body=body)
    assert res[0] == (554, "5.4.6", f"mail forwarding loop for {addr('bob')}")
    assert res[1][0] == 250
    assert len(split_mbox(world.read_mbox("bob"))) == n


def test_aliases_file_change_needs_no_restart(lsb, world, tmp):
    master = lsb.master_pid
    _, res = deliver(lsb, tmp, ["newname@localhost"])
    assert res[0][:2] == (550, "5.1.1")
    try:
        world.write_aliases(world.standard_aliases() + f"NewName: {NAMES['bob']}\n")
        n = len(split_mbox(world.read_mbox("bob")))
        _, res = deliver(lsb, tmp, ["newname@localhost"])
        assert res[0][0] == 250, res
        assert len(split_mbox(world.read_mbox("bob"))) == n + 1
        # Changed in place too (same inode, new size and mtime).
        with open(world.aliases, "a") as f:
            f.write(f"another: {NAMES['bob']}\n")
        _, res = deliver(lsb, tmp, ["another@localhost"])
        assert res[0][0] == 250, res
    finally:
        world.write_aliases(world.standard_aliases())
    assert lsb.master_pid == master         # nothing was restarted or reloaded
    wait_log(lsb, rf"postern/local\[\d+\]: read {re.escape(world.aliases)}: \d+ aliases",
             "the reload line")


@pytest.mark.parametrize("owner, mode", [("alice", 0o644), ("root", 0o664)])
def test_unsafe_aliases_file_refuses_commands_and_files(lsb, world, tmp, owner, mode):
    uid = world.users["alice"].pw_uid if owner == "alice" else 0
    who = os.path.join(world.out, "cmd.who")
    if os.path.exists(who):
        os.unlink(who)
    world.write_aliases(world.standard_aliases(), owner=uid, mode=mode)
    try:
        qid, res = deliver(lsb, tmp, ["cmd@localhost", "tofile@localhost", "team@localhost",
                                      "inc@localhost"])
        assert res[0][:2] == (550, "5.7.1"), res
        assert res[1][:2] == (550, "5.7.1"), res
        assert res[2][0] == 250, res            # plain addresses still work
        assert res[3][:2] == (550, "5.7.1"), res
        assert not os.path.exists(who)
        wait_log(lsb, rf"warning: {qid}: refusing command", "the refusal warning")
    finally:
        world.write_aliases(world.standard_aliases())
    _, res = deliver(lsb, tmp, ["cmd@localhost"])
    assert res[0][0] == 250, res


# ---- forwarding ----------------------------------------------------------------------------

def find_queue_file(sb, qid):
    for root, _, files in os.walk(os.path.join(sb.spool, "queue", "incoming")):
        if qid in files:
            return os.path.join(root, qid)
    return None


def qfcheck(*args):
    return subprocess.run([QFCHECK, *args], capture_output=True, timeout=30)


def test_forward_makes_a_new_queue_file(lsb, world, tmp):
    qid, res = deliver(lsb, tmp, ["fwd@localhost"], origs={"fwd@localhost": "x@example.net"})
    assert res[0][:2] == (250, "2.0.0"), res
    m = re.fullmatch(r"forwarded as ([0-9A-F]{19})", res[0][2])
    assert m, res
    new = m.group(1)
    path = wait_until(lambda: find_queue_file(lsb, new), 5, what="the new queue file")
    check = qfcheck(path)
    assert check.returncode == 0, check.stdout + check.stderr
    out = check.stdout.decode()
    assert f"qid={new}\n" in out and f"sender={SENDER}\n" in out
    assert "rcpt=pending someone@remote.example\n" in out
    assert out.count("rcpt=") == 1
    body = qfcheck("-m", path).stdout
    assert body == b"Delivered-To: fwd@localhost\r\n" + BODY
    wait_log(lsb, rf"{qid}: to=<someone@remote\.example>, orig_to=<x@example\.net>, "
             rf"relay=local, .*status=sent \(forwarded as {new}\)$", "the forward line")


def test_forward_and_mailbox_together(lsb, world, tmp):
    na = len(split_mbox(world.read_mbox("alice")))
    _, res = deliver(lsb, tmp, ["both@localhost"])
    assert res == [(250, "2.0.0", "delivered to 2 destinations")], res
    assert len(split_mbox(world.read_mbox("alice"))) == na + 1


def test_forwarded_copy_coming_back_is_a_loop(lsb, world, tmp):
    body = b"Delivered-To: fwd@localhost\r\n" + BODY
    _, res = deliver(lsb, tmp, ["fwd@localhost"], body=body)
    assert res == [(554, "5.4.6", "mail forwarding loop for fwd@localhost")]


# ---- the protocol --------------------------------------------------------------------------

def test_malformed_requests_are_permfail(lsb, world, tmp):
    qf = QueueFile(tmp, rcpts=(addr("alice"),))
    try:
        good = request(qf, [addr("alice")])
        assert send(lsb, good + [("extra", 1)], [qf.fd]).status == ipc.PERMFAIL
        assert send(lsb, good, []).status == ipc.PERMFAIL
        wfd = os.open(qf.path, os.O_RDWR)
        try:
            assert send(lsb, good, [wfd]).status == ipc.PERMFAIL
        finally:
            os.close(wfd)
    finally:
        qf.close()


# ---- Maildir (a sandbox of its own) ---------------------------------------------------------

def test_maildir_in_the_home(world, tmp):
    sb = start_sandbox("postern-local-md-", [
        "local_enable=yes", f"aliases_file={world.aliases}",
        f"mail_spool_directory={world.spool}", "home_mailbox=Maildir/"])
    try:
        wait_ready(sb)
        _, res = deliver(sb, tmp, [addr("alice"), "team@localhost"])
        assert [r[:3] for r in res] == [(250, "2.0.0", "delivered to maildir")] * 2, res
        pw = world.users["alice"]
        md = os.path.join(world.homes, NAMES["alice"], "Maildir")
        names = sorted(os.listdir(os.path.join(md, "new")))
        assert len(names) == 1          # the second recipient's copy was a duplicate
        for d in (md, os.path.join(md, "new"), os.path.join(md, "cur"),
                  os.path.join(md, "tmp")):
            st = os.stat(d)
            assert st.st_uid == pw.pw_uid and st.st_mode & 0o777 == 0o700, d
        path = os.path.join(md, "new", names[0])
        assert os.stat(path).st_uid == pw.pw_uid
        with open(path, "rb") as f:
            data = f.read()
        assert data == (f"Return-Path: <{SENDER}>\nDelivered-To: {addr('alice')}\n".encode() +
                        BODY.replace(b"\r\n", b"\n"))
        bmd = os.path.join(world.homes, NAMES["bob"], "Maildir", "new")
        assert len(os.listdir(bmd)) == 1
    finally:
        finish_sandbox(sb)
