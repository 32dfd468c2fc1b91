"""test_queue: postern-queue from the outside (issue 4, DESIGN.md §4, lib/queueproto.h).

Queue files are written and checked by build/tests/tools/qfwrite (lib/queuefile.h), never by
Python, so these tests do not duplicate the format. The descriptor CREATE returns arrives
with SCM_RIGHTS and is handed to qfwrite with pass_fds, exactly as smtpd will write into it.
Each group of tests runs its own sandbox with the queue enabled: the ordinary one, one with a
huge queue_minfree, one whose spool is a 2 MiB tmpfs (disk full), and one for the crash test
(kill -9 of the queue daemon while 20 clients commit).
"""

import glob
import os
import random
import signal
import stat
import subprocess
import threading
import time

import pytest

import postern_ipc as ipc
from conftest import (BINDIR, PYTHON, fill, finish_sandbox, sandbox_on_tmpfs,
                      service_children, start_sandbox, uid_of, wait_until)

CREATE, COMMIT, ABORT = 20, 21, 22
QFWRITE = os.path.join(BINDIR, "tests", "tools", "qfwrite")
BODY = b"From: a@example.org\r\nSubject: queue test\r\n\r\nhello\r\n"


# ---- helpers -------------------------------------------------------------------------------

def sock_path(sb):
    return os.path.join(sb.spool, "private", "queue")


def qdir(sb, *parts):
    return os.path.join(sb.spool, "queue", *parts)


def connect(sb, timeout=10.0):
    return ipc.connect(sock_path(sb), timeout)


class Client:
    """One connection to the queue daemon with a request-id counter."""

    def __init__(self, sb, timeout=10.0):
        self.sock = connect(sb, timeout)
        self.timeout = timeout
        self.next_id = 1

    def call(self, type_, attrs=()):
        self.next_id += 1
        return ipc.call(self.sock, type_, attrs, self.next_id, self.timeout)

    def create(self):
        """(reply, fd or None)"""
        reply = self.call(CREATE, {"client": "test"})
        fd = reply.fds[0] if reply is not None and reply.fds else None
        for extra in (reply.fds[1:] if reply is not None else []):
            os.close(extra)
        return reply, fd

    def commit(self, qid):
        return self.call(COMMIT, {"id": qid})

    def abort(self, qid):
        return self.call(ABORT, {"id": qid})

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def qfwrite(fd, qid, *args, body=BODY, rcpts=("rcpt@example.org",), sender="s@example.org"):
    cmd = [QFWRITE, "--fd", str(fd), "--qid", qid, "--sender", sender]
    for r in rcpts:
        cmd += ["--rcpt", r]
    cmd += list(args)
    return subprocess.run(cmd, input=body, pass_fds=(fd,), capture_output=True, timeout=30)


def qfcheck(path):
    """The fields qfwrite --check prints, as a dict; None if the file does not validate."""
    res = subprocess.run([QFWRITE, "--check", path], capture_output=True, text=True,
                         timeout=30)
    if res.returncode != 0:
        return None
    return dict(item.split("=", 1) for item in res.stdout.split())


def incoming_files(sb):
    return {os.path.basename(p): p for p in glob.glob(qdir(sb, "incoming", "*", "*", "*"))}


def listdir(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def queue_pid(sb, timeout=10):
    kids = wait_until(lambda: service_children(sb.master_pid, "queue"), timeout,
                      what="a queue child of master")
    assert len(kids) == 1, kids
    return kids[0].pid


def wait_queue_ready(sb, timeout=15):
    def answers():
        try:
            with Client(sb, timeout=2) as c:
                reply, fd = c.create()
                if fd is not None:
                    os.close(fd)
                if reply is not None and reply.status == ipc.OK:
                    c.abort(reply.get("id"))
                    return True
        except OSError:
            return False
        return False
    wait_until(answers, timeout, interval=0.1, what="the queue daemon answering")


def submit(sb, **kw):
    """CREATE, write a valid file, COMMIT; returns (qid, commit reply)."""
    with Client(sb) as c:
        reply, fd = c.create()
        assert reply.status == ipc.OK, reply
        qid = reply.get("id")
        try:
            res = qfwrite(fd, qid, **kw)
            assert res.returncode == 0, res.stderr
        finally:
            os.close(fd)
        return qid, c.commit(qid)


# ---- the ordinary sandbox ------------------------------------------------------------------

@pytest.fixture(scope="module")
def qsb():
    if not os.access(QFWRITE, os.X_OK):
        pytest.fail(f"{QFWRITE} is missing: run `make all` first")
    sb = start_sandbox("postern-queue-", ["queue_enable=yes", "queue_file_size_limit=256k",
                                          "maildrop_scan_interval=1s"])
    wait_queue_ready(sb)
    yield sb
    finish_sandbox(sb)


def test_queue_runs_as_queue_owner_chrooted(qsb):
    from conftest import ProcInfo
    info = ProcInfo.read(queue_pid(qsb))
    assert info.uids[0] == uid_of("postern-queue")
    assert info.root == os.path.realpath(qsb.spool)
    assert len(incoming_files(qsb)) >= 0
    assert len(glob.glob(qdir(qsb, "incoming", "*", "*"))) == 256


def test_create_write_commit(qsb):
    with Client(qsb) as c:
        reply, fd = c.create()
        assert reply.status == ipc.OK, reply
        qid = reply.get("id")
        assert qid and len(qid) == 19
        tmp = qdir(qsb, "tmp", qid)
        st = os.stat(tmp)
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == uid_of("postern-queue")
        assert os.fstat(fd).st_ino == st.st_ino
        res = qfwrite(fd, qid, rcpts=("a@example.org", "b@example.org"))
        os.close(fd)
        assert res.returncode == 0, res.stderr
        done = c.commit(qid)
        assert done.status == ipc.OK, done
        assert done.get("id") == qid
    path = incoming_files(qsb).get(qid)
    assert path, "committed file not in incoming/"
    # incoming/<last time digit>/<the one before>/<qid> (qid_subdir)
    assert path == qdir(qsb, "incoming", qid[12], qid[11], qid)
    assert not os.path.exists(tmp)
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == uid_of("postern-queue")
    info = qfcheck(path)
    assert info and info["qid"] == qid and info["nrcpt"] == "2"
    assert info["rcpt"] == "a@example.org,b@example.org"
    wait_until(lambda: f"{qid}: committed, size={len(BODY)}, nrcpt=2" in qsb.log_text(), 5,
               what="the committed line")


def test_commit_wrong_qid_is_permfail(qsb):
    with Client(qsb) as c:
        reply, fd = c.create()
        qid = reply.get("id")
        other = reply.get("id")[:-1] + ("0" if qid[-1] != "0" else "1")
        res = qfwrite(fd, qid, "--qid", other)   # the later --qid wins
        os.close(fd)
        assert res.returncode == 0, res.stderr
        done = c.commit(qid)
        assert done.status == ipc.PERMFAIL, done
        assert "queue id" in done.get("reason")
    assert qid not in incoming_files(qsb) and other not in incoming_files(qsb)
    assert qid not in listdir(qdir(qsb, "tmp"))
    wait_until(lambda: f"{qid}: refused" in qsb.log_text(), 5, what="the warning")


@pytest.mark.parametrize("args", [("--chop", "5"), ("--truncate", "40"), ("--truncate", "0")])
def test_commit_torn_file_is_permfail(qsb, args):
    with Client(qsb) as c:
        reply, fd = c.create()
        qid = reply.get("id")
        res = qfwrite(fd, qid, *args)
        os.close(fd)
        assert res.returncode == 0, res.stderr
        done = c.commit(qid)
        assert done.status == ipc.PERMFAIL, done
        assert "invalid queue file" in done.get("reason")
    assert qid not in incoming_files(qsb)
    assert qid not in listdir(qdir(qsb, "tmp"))


def test_commit_oversized_is_permfail(qsb):
    with Client(qsb) as c:
        reply, fd = c.create()
        qid = reply.get("id")
        res = qfwrite(fd, qid, body=b"x" * (300 * 1024))
        os.close(fd)
        assert res.returncode == 0, res.stderr
        done = c.commit(qid)
        assert done.status == ipc.PERMFAIL, done
        assert "too large" in done.get("reason")
    assert qid not in incoming_files(qsb)
    assert qid not in listdir(qdir(qsb, "tmp"))


def test_abort_and_close_remove_tmp_files(qsb):
    with Client(qsb) as c:
        reply, fd = c.create()
        os.close(fd)
        qid = reply.get("id")
        assert qid in listdir(qdir(qsb, "tmp"))
        done = c.abort(qid)
        assert done.status == ipc.OK, done
        assert qid not in listdir(qdir(qsb, "tmp"))
        again = c.abort(qid)
        assert again.status == ipc.PERMFAIL
    c = Client(qsb)
    ids = []
    for _ in range(3):
        reply, fd = c.create()
        os.close(fd)
        ids.append(reply.get("id"))
        assert reply.get("id") in listdir(qdir(qsb, "tmp"))
    c.close()
    wait_until(lambda: not set(ids) & set(listdir(qdir(qsb, "tmp"))), 5,
               what="the dropped connection's files to go")
    assert not set(ids) & set(incoming_files(qsb))


def test_another_connection_cannot_commit(qsb):
    with Client(qsb) as owner, Client(qsb) as thief:
        reply, fd = owner.create()
        qid = reply.get("id")
        res = qfwrite(fd, qid)
        os.close(fd)
        assert res.returncode == 0
        stolen = thief.commit(qid)
        assert stolen.status == ipc.PERMFAIL, stolen
        assert thief.abort(qid).status == ipc.PERMFAIL
        assert qid in listdir(qdir(qsb, "tmp"))
        assert owner.commit(qid).status == ipc.OK
    assert qid in incoming_files(qsb)


def test_malformed_requests(qsb):
    with Client(qsb) as c:
        assert c.call(COMMIT, {"id": "../../etc/passwd"}).status == ipc.PERMFAIL
        assert c.call(COMMIT, {}).status == ipc.PERMFAIL
        assert c.call(CREATE, {"bogus": "x"}).status == ipc.PERMFAIL
        assert c.call(99, {}).status == ipc.PERMFAIL
        reply, fd = c.create()         # still serving this connection
        os.close(fd)
        assert reply.status == ipc.OK


def test_uncommitted_files_per_connection_bounded(qsb):
    with Client(qsb) as c:
        ids = []
        for _ in range(8):
            reply, fd = c.create()
            assert reply.status == ipc.OK
            os.close(fd)
            ids.append(reply.get("id"))
        reply, fd = c.create()
        assert reply.status == ipc.TEMPFAIL and fd is None
        assert c.abort(ids[0]).status == ipc.OK
        reply, fd = c.create()
        assert reply.status == ipc.OK
        os.close(fd)


def test_peer_not_on_allow_list(qsb):
    """postern-queue is in group postern (it may connect) but is not mail_owner or root."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import postern_ipc as ipc\n"
        "s = ipc.connect(sys.argv[2])\n"
        "r = ipc.call(s, 20, {'client': 'x'})\n"
        "print(r.status, r.get('reason'), len(r.fds))\n")
    res = subprocess.run([PYTHON, "-c", code, os.path.dirname(__file__), sock_path(qsb)],
                         user="postern-queue", group="postern", capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"{ipc.PERMFAIL} not allowed 0"


def drop(sb, name, uid, *args, body=BODY, sender="user@example.org",
         rcpts=("rcpt@example.org",), raw=None):
    """Put a file into maildrop/ the way sendmail does: write ".name", then rename."""
    md = os.path.join(sb.spool, "maildrop")
    hidden = os.path.join(md, "." + name)
    if raw is not None:
        with open(hidden, "wb") as f:
            f.write(raw)
    else:
        cmd = [QFWRITE, "--out", hidden, "--sender", sender]
        for r in rcpts:
            cmd += ["--rcpt", r]
        res = subprocess.run(cmd + list(args), input=body, capture_output=True, timeout=30)
        assert res.returncode == 0, res.stderr
    os.chmod(hidden, 0o644)
    os.chown(hidden, uid, -1)
    os.rename(hidden, os.path.join(md, name))
    return os.path.join(md, name)


def find_pickup(sb, sender):
    for qid, path in incoming_files(sb).items():
        info = qfcheck(path)
        if info and info["sender"] == f"<{sender}>":
            return qid, info
    return None


def test_maildrop_pickup(qsb):
    path = drop(qsb, "valid1", 65534, sender="nobody-sender@example.org",
                rcpts=("x@example.org", "y@example.org"))
    qid, info = wait_until(lambda: find_pickup(qsb, "nobody-sender@example.org"), 10,
                           what="the picked-up file in incoming/")
    assert not os.path.exists(path)
    assert info["auth"] == "nobody" and info["client"] == "localhost"
    assert info["rcpt"] == "x@example.org,y@example.org" and info["msglen"] == str(len(BODY))
    log = qsb.log_text()
    assert f"postern/pickup[" in log and f"]: {qid}: uid=65534 from=<nobody-sender@example.org>" in log

    drop(qsb, "valid2", 4242, sender="ghost@example.org")
    qid, info = wait_until(lambda: find_pickup(qsb, "ghost@example.org"), 10,
                           what="the second picked-up file")
    assert info["auth"] == "uid=4242"


@pytest.mark.parametrize("kind", ["garbage", "torn", "symlink"])
def test_maildrop_bad_files_go_to_corrupt(qsb, kind):
    md = os.path.join(qsb.spool, "maildrop")
    before = set(listdir(qdir(qsb, "corrupt")))
    name = f"bad-{kind}"
    if kind == "garbage":
        drop(qsb, name, 65534, raw=b"this is not a queue file\n")
    elif kind == "torn":
        drop(qsb, name, 65534, "--chop", "3", sender="torn@example.org")
    else:
        os.symlink("/etc/passwd", os.path.join(md, name))
    new = wait_until(lambda: set(listdir(qdir(qsb, "corrupt"))) - before, 10,
                     what="a file in corrupt/")
    assert not os.path.lexists(os.path.join(md, name))
    assert len(new) == 1
    wait_until(lambda: f"warning: maildrop file {name}: " in qsb.log_text(), 5,
               what="the warning")
    line = [l for l in qsb.log_text().splitlines() if f"maildrop file {name}:" in l][-1]
    assert line.endswith(f"; moved to corrupt/{new.pop()}"), line
    assert find_pickup(qsb, "torn@example.org") is None


# ---- queue_minfree ---------------------------------------------------------------------------

def test_queue_minfree_refuses_create():
    sb = start_sandbox("postern-queue-minfree-", ["queue_enable=yes", "queue_minfree=100000g"])
    try:
        def refused():
            try:
                with Client(sb, timeout=2) as c:
                    return c.create()
            except OSError:
                return None
        reply, fd = wait_until(refused, 15, interval=0.2, what="the queue daemon")
        assert reply.status == ipc.TEMPFAIL and fd is None, reply
        assert "space" in reply.get("reason")
        assert listdir(qdir(sb, "tmp")) == []
        assert "warning: not enough free space" in sb.log_text()
    finally:
        finish_sandbox(sb)


# ---- disk full: the spool on a 2 MiB tmpfs ---------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_disk_full_is_tempfail():
    with sandbox_on_tmpfs("postern-queue-full-", ["qmgr_enable=no", "message_size_limit=64k",
                                                  "maildrop_scan_interval=1s"]) as (sb, spool):
        wait_queue_ready(sb)
        pid = queue_pid(sb)
        # 1. A writer that runs out of space: its file is refused and removed.
        with Client(sb) as c:
            reply, fd = c.create()
            assert reply.status == ipc.OK, reply
            qid = reply.get("id")
            res = qfwrite(fd, qid, body=b"x" * (3 << 20))
            os.close(fd)
            assert res.returncode != 0 and b"No space left" in res.stderr
            done = c.commit(qid)
            assert done.status != ipc.OK, done
        assert listdir(qdir(sb, "tmp")) == [] and incoming_files(sb) == {}
        # 2. Nearly full: CREATE is refused before anything is written.
        filler = fill(os.path.join(spool, "filler"), 64 << 10)
        with Client(sb) as c:
            reply, fd = c.create()
            assert reply.status == ipc.TEMPFAIL and fd is None, reply
        # 3. A maildrop file waits for space instead of being lost or corrupted.
        md = drop(sb, "waiting", 65534, sender="wait@example.org")
        time.sleep(2.5)
        assert os.path.exists(md) and incoming_files(sb) == {}
        assert listdir(qdir(sb, "corrupt")) == [] and listdir(qdir(sb, "tmp")) == []
        # 4. Space comes back: everything works again, in the same process.
        os.unlink(filler)
        qid, done = submit(sb)
        assert done.status == ipc.OK, done
        assert qid in incoming_files(sb)
        wait_until(lambda: find_pickup(sb, "wait@example.org"), 10, what="the maildrop file")
        assert not os.path.exists(md)
        assert queue_pid(sb) == pid, "the queue daemon restarted"
        assert "warning: not enough free space" in sb.log_text()


# ---- crash test: kill -9 the queue daemon while 20 clients commit ------------------------------

class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = set()          # COMMIT answered OK
        self.unknown = set()     # COMMIT sent, no answer (the daemon died): either way
        self.failed = set()      # created but never committed, or COMMIT refused
        self.errors = []


def crash_client(sb, tally, stop):
    while not stop.is_set():
        try:
            c = Client(sb, timeout=10)
        except OSError:
            time.sleep(0.05)
            continue
        try:
            while not stop.is_set():
                reply, fd = c.create()
                if reply is None:
                    break
                if reply.status != ipc.OK:
                    time.sleep(0.05)
                    continue
                qid = reply.get("id")
                try:
                    res = qfwrite(fd, qid, body=BODY * random.randint(1, 200))
                finally:
                    os.close(fd)
                if res.returncode != 0:
                    with tally.lock:
                        tally.errors.append(res.stderr)
                    break
                with tally.lock:
                    tally.unknown.add(qid)
                try:
                    done = c.commit(qid)
                except OSError:
                    done = None
                with tally.lock:
                    if done is None:
                        break
                    tally.unknown.discard(qid)
                    (tally.ok if done.status == ipc.OK else tally.failed).add(qid)
                if done is not None and done.status != ipc.OK and \
                        done.status != ipc.TEMPFAIL:
                    with tally.lock:
                        tally.errors.append(repr(done))
        except (OSError, ipc.ProtocolError):
            pass
        finally:
            c.close()


def test_crash_kill9_queue_while_committing():
    sb = start_sandbox("postern-queue-crash-", ["queue_enable=yes"])
    try:
        wait_queue_ready(sb)
        tally, stop = Tally(), threading.Event()
        threads = [threading.Thread(target=crash_client, args=(sb, tally, stop))
                   for _ in range(20)]
        for t in threads:
            t.start()
        kills = 0
        deadline = time.monotonic() + 12
        try:
            while time.monotonic() < deadline:
                time.sleep(random.uniform(0.2, 0.9))
                kids = service_children(sb.master_pid, "queue")
                for k in kids:
                    os.kill(k.pid, signal.SIGKILL)
                    kills += 1
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        print(f"kills={kills} ok={len(tally.ok)} unknown={len(tally.unknown)} "
              f"failed={len(tally.failed)}")
        assert kills >= 5
        assert not tally.errors, tally.errors[:5]
        # Enough commits that kills land mid-commit; the ASan build manages ~25 in the window.
        assert len(tally.ok) > 15, f"only {len(tally.ok)} commits succeeded"
        wait_queue_ready(sb, timeout=30)
        files = incoming_files(sb)
        missing = tally.ok - set(files)
        assert not missing, f"{len(missing)} acknowledged files are not in incoming/"
        strays = set(files) - tally.ok - tally.unknown
        assert not strays, f"files in incoming/ nobody committed: {sorted(strays)[:5]}"
        for qid, path in files.items():
            info = qfcheck(path)
            assert info and info["qid"] == qid, f"{path} does not validate"
        # A fresh start swept tmp/: only files of live connections may remain, and none
        # are open now.
        wait_until(lambda: listdir(qdir(sb, "tmp")) == [], 10, what="queue/tmp to be empty")
    finally:
        finish_sandbox(sb)
