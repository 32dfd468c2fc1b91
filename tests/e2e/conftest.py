"""conftest: fixtures and helpers of Postern's end-to-end tests.

- `sandbox` (session): one whole Postern started with tests/sandbox in a fresh directory and
  stopped at the end; exposes DIR/env as a dict plus helpers (ports, master pid, children,
  stop_mysql/start_mysql for tests that take the database away). start_sandbox() and
  finish_sandbox() make and end further sandboxes with their own settings and database.
- `own_master` (function): a factory of extra postern-master instances, each with a
  hand-written configuration in its own directory (no MariaDB of its own), for the tests that
  stop, break, reload or duplicate a master. Everything it started is ended afterwards.
- Helpers to read /proc (ProcInfo, children_of, processes_under), a line client for the test
  daemon's protocol (LineClient) and wait_until().

Set POSTERN_E2E_KEEP=1 to keep the sandbox directories after the run for post-mortems.
"""

import contextlib
import grp
import importlib.machinery
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SANDBOX = os.path.join(REPO, "tests", "sandbox")
BINDIR = os.path.abspath(os.environ.get("POSTERN_BUILD") or os.path.join(REPO, "build"))
PYTHON = "/usr/bin/python3"

SERVICES = ["smtp", "submission", "smtps", "imap", "imaps", "pop3", "pop3s", "test"]
IMPLICIT_TLS = {"smtps", "imaps", "pop3s"}
CLEAR_TEXT = [s for s in SERVICES if s not in IMPLICIT_TLS]

KEEP = os.environ.get("POSTERN_E2E_KEEP") == "1"


# ---- small helpers -------------------------------------------------------------------------

def wait_until(fn, timeout, interval=0.05, what="condition"):
    """Poll fn until it returns something truthy; return that, or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def make_world_dir(prefix):
    """A fresh directory under /tmp that daemons running as other users can traverse."""
    path = tempfile.mkdtemp(dir="/tmp", prefix=prefix)
    os.chmod(path, 0o755)
    return path


def fill(path, leave):
    """Write a file until the file system has about `leave` bytes free; returns its path."""
    st = os.statvfs(os.path.dirname(path))
    size = max(0, st.f_bavail * st.f_frsize - leave)
    with open(path, "wb") as f:
        try:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
        except OSError:
            pass
    return path


@contextlib.contextmanager
def sandbox_on_tmpfs(prefix, sets, size="2m"):
    """A started Sandbox whose spool is a small tmpfs (disk-full tests; needs root)."""
    sb = Sandbox(make_world_dir(prefix), sets)
    spool = os.path.join(sb.dir, "spool")
    os.makedirs(spool)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=755", "tmpfs", spool],
                   check=True)
    try:
        sb.start()
        yield sb, spool
    finally:
        try:
            finish_sandbox(sb)
        finally:
            subprocess.run(["umount", "-l", spool], check=False)
            if not KEEP:
                shutil.rmtree(sb.dir, ignore_errors=True)


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                (item,) = shlex.split(line)
                key, _, value = item.partition("=")
                env[key] = value
    return env


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def read_pid(path):
    text = read_text(path).strip()
    return int(text) if text.isdigit() else None


def uid_of(user):
    return pwd.getpwnam(user).pw_uid


def gid_of(user):
    return pwd.getpwnam(user).pw_gid


def tls_context(ca):
    """A client context that trusts exactly the sandbox's certificate and checks the name."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class CrlfClient:
    """A client at the byte level for the CRLF line protocols (IMAP, POP3): send exact
    bytes, read lines, STARTTLS, notice the server closing. Subclasses add the commands."""

    IMPLICIT_TLS = ("imaps", "pop3s", "smtps")
    SERVICE = None		# the subclass's plain-text port

    def __init__(self, sb, service=None, timeout=15):
        service = service or self.SERVICE
        self.sb = sb
        self.raw = socket.create_connection(("127.0.0.1", sb.ports[service]), timeout=timeout)
        self.sock = self.raw
        if service in self.IMPLICIT_TLS:
            self.sock = tls_context(sb.ca).wrap_socket(self.raw, server_hostname="localhost")
        self.buf = b""
        self.greeting = self.line()

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            chunk = b""
        self.buf += chunk
        return bool(chunk)

    def line(self):
        """The next line without CRLF, or None at end of stream."""
        while b"\n" not in self.buf:
            if not self._fill():
                return None
        line, self.buf = self.buf.split(b"\n", 1)
        assert line.endswith(b"\r"), f"line without CRLF: {line!r}"
        return line[:-1].decode(errors="replace")

    def starttls(self):
        assert self.buf == b"", f"server sent bytes before the handshake: {self.buf!r}"
        self.sock = tls_context(self.sb.ca).wrap_socket(self.sock, server_hostname="localhost")

    def at_eof(self, timeout=5.0):
        """True if the server closes the connection (data before it is skipped)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError,
                ssl.SSLZeroReturnError):
            return True
        except (socket.timeout, TimeoutError):
            return False

    def close(self):
        try:
            self.sock.close()
        finally:
            self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- /proc ---------------------------------------------------------------------------------

class ProcInfo:
    """What /proc says about one process (None from read() if it is gone or a zombie)."""

    @classmethod
    def read(cls, pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/status") as f:
                status = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except (FileNotFoundError, ProcessLookupError):
            return None
        try:
            root = os.readlink(f"/proc/{pid}/root")
        except PermissionError:         # e.g. a PID 1 that even root may not ptrace-read
            root = None
        except (FileNotFoundError, ProcessLookupError):
            return None
        self = cls()
        self.pid = pid
        rest = stat[stat.rindex(")") + 2:].split()
        self.state, self.ppid = rest[0], int(rest[1])
        if self.state in ("Z", "X"):
            return None
        fields = {}
        for line in status.splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        self.status = fields
        self.name = fields.get("Name", "")
        self.uids = tuple(int(x) for x in fields["Uid"].split())
        self.gids = tuple(int(x) for x in fields["Gid"].split())
        self.groups = tuple(int(x) for x in fields.get("Groups", "").split())
        self.cap_eff = int(fields["CapEff"], 16)
        self.cap_prm = int(fields["CapPrm"], 16)
        self.cap_inh = int(fields["CapInh"], 16)
        self.cap_bnd = int(fields["CapBnd"], 16)
        self.cap_amb = int(fields.get("CapAmb", "0"), 16)
        self.no_new_privs = int(fields.get("NoNewPrivs", "0"))
        self.cmdline = cmdline
        self.root = root
        return self

    @property
    def service(self):
        """The service name from `-n SERVICE` on the command line, or None."""
        for i, arg in enumerate(self.cmdline[:-1]):
            if arg == "-n":
                return self.cmdline[i + 1]
        return None

    def __repr__(self):
        return (f"<pid {self.pid} {' '.join(self.cmdline)!r} uid={self.uids} gid={self.gids} "
                f"CapEff={self.cap_eff:#x} root={self.root}>")


def all_pids():
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def alive(pid):
    return ProcInfo.read(pid) is not None


def children_of(pid):
    """Live direct children of pid."""
    out = []
    for p in all_pids():
        info = ProcInfo.read(p)
        if info and info.ppid == pid:
            out.append(info)
    return out


def processes_under(directory):
    """Live Postern or MariaDB processes whose command line mentions directory (this test
    process and its ancestors excluded: their arguments may mention it too)."""
    spare, p = set(), os.getpid()
    while p > 0 and p not in spare:
        spare.add(p)
        info = ProcInfo.read(p)
        p = info.ppid if info else 0
    needle = directory.rstrip("/") + "/"
    out = []
    for p in all_pids():
        if p in spare:
            continue
        info = ProcInfo.read(p)
        if not info or not info.cmdline:
            continue
        prog = os.path.basename(info.cmdline[0])
        if (prog.startswith("postern") or prog in ("mariadbd", "mysqld")) and \
                any(needle in a or a == directory for a in info.cmdline):
            out.append(info)
    return out


def service_children(master_pid, service):
    return [c for c in children_of(master_pid) if c.service == service]


# ---- the test daemon's line protocol -------------------------------------------------------

BANNER = re.compile(r"^postern-testd (\S+) (\d+) ready$")


class LineClient:
    """A client of the test daemon: CRLF lines, implicit TLS or STARTTLS."""

    def __init__(self, port, tls_ctx=None, timeout=10.0):
        self.timeout = timeout
        self.raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = self.raw
        self.buf = b""
        if tls_ctx is not None:
            self.sock = tls_ctx.wrap_socket(self.raw, server_hostname="localhost")
        self.banner = None
        self.service = None
        self.pid = None

    def read_banner(self):
        line = self.readline()
        self.banner = line
        m = BANNER.match(line or "")
        assert m, f"bad banner {line!r}"
        self.service, self.pid = m.group(1), int(m.group(2))
        return line

    def readline(self):
        """The next line without CRLF, or None at end of stream."""
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        assert line.endswith(b"\r"), f"reply line without CRLF: {line!r}"
        return line[:-1].decode(errors="replace")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.readline()

    def starttls(self, ctx):
        """Switch to TLS after the server said OK; nothing may have been received beyond it."""
        assert self.buf == b"", f"server sent data before the TLS handshake: {self.buf!r}"
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def at_eof(self, timeout=5.0):
        """True if the server closes the connection (any data before the close is skipped)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return True
        except (socket.timeout, TimeoutError):
            return False
        finally:
            self.sock.settimeout(self.timeout)

    def close(self):
        try:
            self.sock.close()
        finally:
            self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class System:
    """What tests share between the sandbox and their own masters: ports, paths, clients."""

    dir: str
    ports: dict
    conf: str
    log: str
    spool: str
    ca: str

    @property
    def pid_file(self):
        return os.path.join(self.spool, "pid", "master.pid")

    @property
    def master_pid(self):
        return read_pid(self.pid_file)

    def connect(self, service, timeout=10.0, banner=True):
        ctx = tls_context(self.ca) if service in IMPLICIT_TLS else None
        client = LineClient(self.ports[service], ctx, timeout)
        if banner:
            client.read_banner()
        return client

    def children(self):
        return children_of(self.master_pid)

    def log_text(self):
        return read_text(self.log)

    def log_tail(self, n=30):
        return "".join(self.log_text().splitlines(True)[-n:])


# ---- the session sandbox -------------------------------------------------------------------

class Sandbox(System):
    def __init__(self, directory, sets=()):
        self.dir = directory
        self.sets = list(sets)
        self.env = {}

    def start(self):
        cmd = [PYTHON, SANDBOX, "start", self.dir]
        for s in self.sets:
            cmd += ["--set", s]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"tests/sandbox start failed ({res.returncode}):\n"
                               f"{res.stdout}{res.stderr}")
        self.env = read_env(os.path.join(self.dir, "env"))
        self.conf = self.env["POSTERN_CONF"]
        self.log = self.env["POSTERN_LOG"]
        self.spool = self.env["POSTERN_SPOOL"]
        self.ca = self.env["POSTERN_CA"]
        self.bindir = self.env["POSTERN_BIN"]
        self.ports = {s: int(self.env[f"POSTERN_{s.upper()}_PORT"]) for s in SERVICES}
        return res

    def stop(self):
        return subprocess.run([PYTHON, SANDBOX, "stop", self.dir], capture_output=True,
                              text=True, timeout=120)

    # The sandbox's MariaDB, for tests that take the database away and bring it back.

    @property
    def mysql_pid(self):
        return read_pid(os.path.join(self.dir, "mysql", "pid"))

    def stop_mysql(self, timeout=30):
        """SIGTERM mariadbd (via its pid file) and wait until it has exited."""
        pid = self.mysql_pid
        assert pid and alive(pid), "the sandbox's mariadbd is not running"
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not alive(pid), timeout, what=f"mariadbd (pid {pid}) to exit")

    def start_mysql(self):
        """Start mariadbd again with the very command line tests/sandbox uses; returns once
        it answers queries."""
        tool = sandbox_tool()
        tool.mysql_start(tool.Paths(self.dir))


_SANDBOX_TOOL = None


def sandbox_tool():
    """tests/sandbox loaded as a module, so tests reuse its helpers (and command lines)."""
    global _SANDBOX_TOOL
    if _SANDBOX_TOOL is None:
        loader = importlib.machinery.SourceFileLoader("postern_sandbox_tool", SANDBOX)
        spec = importlib.util.spec_from_loader(loader.name, loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
        _SANDBOX_TOOL = module
    return _SANDBOX_TOOL


def start_sandbox(prefix, sets=()):
    """A sandbox whose queue stays put: most modules inspect queue files, so qmgr is off
    unless the module asks for delivery with "qmgr_enable=yes" (later settings win)."""
    sb = Sandbox(make_world_dir(prefix), ["qmgr_enable=no", *sets])
    try:
        sb.start()
    except BaseException:
        sb.stop()
        if not KEEP:
            shutil.rmtree(sb.dir, ignore_errors=True)
        raise
    return sb


def finish_sandbox(sb):
    res = sb.stop()
    assert res.returncode == 0, f"tests/sandbox stop failed:\n{res.stdout}{res.stderr}"
    assert not processes_under(sb.dir), "tests/sandbox stop left processes running"
    if not KEEP:
        shutil.rmtree(sb.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def sandbox():
    if not os.access(os.path.join(BINDIR, "postern-master"), os.X_OK):
        pytest.fail(f"{BINDIR}/postern-master is missing: run `make all` first")
    sb = start_sandbox("postern-e2e-")
    yield sb
    finish_sandbox(sb)


# ---- extra masters with hand-written configurations ----------------------------------------

class OwnMaster(System):
    """A postern-master of its own in a fresh directory: own spool, ports and log. It shares
    the session sandbox's config_directory (certificate, sql.conf) but not its processes."""

    def __init__(self, base, settings=None):
        self.base = base
        self.dir = make_world_dir("postern-own-")
        self.conf = os.path.join(self.dir, "postern.conf")
        self.spool = os.path.join(self.dir, "spool")
        self.log = os.path.join(self.dir, "log")
        self.vhosts = os.path.join(self.dir, "vhosts")
        self.ca = base.ca
        self.ports = dict(zip(SERVICES, free_ports(len(SERVICES))))
        os.makedirs(self.vhosts)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("vmail")
            os.chown(self.vhosts, pw.pw_uid, pw.pw_gid)
        self.settings = dict(settings or {})
        self.write_config()

    def config_lines(self):
        etc = os.path.dirname(self.base.conf)
        settings = {
            "myhostname": "mail.own.test",
            "mydomain": "own.test",
            "inet_interfaces": "127.0.0.1",
            **{f"{s}_listen": str(self.ports[s]) for s in SERVICES},
            "mynetworks": "127.0.0.2/32",
            "config_directory": etc,
            "spool_directory": self.spool,
            "daemon_directory": BINDIR,
            "virtual_mailbox_base": self.vhosts,
            "log_file": self.log,
            "tls_cert_file": os.path.join(etc, "cert.pem"),
            "tls_key_file": os.path.join(etc, "key.pem"),
            "test_services": "yes",
            "max_idle": "30s",
            "service_throttle_time": "2s",
        }
        settings.update(self.settings)
        return [f"{k} = {v}" for k, v in settings.items()]

    def write_config(self, extra_lines=()):
        """Write the configuration; returns the 1-based line number of each extra line."""
        lines = ["# postern.conf of an e2e test's own master"] + self.config_lines()
        first = len(lines) + 1
        lines += list(extra_lines)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return list(range(first, first + len(extra_lines)))

    def run_master(self, *args, timeout=30):
        """Run postern-master -c CONF; it daemonizes, so this returns once it has started.
        stderr goes through a file: a pipe could be inherited by the daemon."""
        cmd = [os.path.join(BINDIR, "postern-master"), "-c", self.conf, *args]
        if os.geteuid() != 0:
            cmd.append("-u")
        with tempfile.TemporaryFile("w+") as err:
            res = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                 timeout=timeout)
            err.seek(0)
            res.output = err.read()
        return res

    def start(self, wait_for=("test",)):
        res = self.run_master()
        assert res.returncode == 0, \
            f"postern-master failed ({res.returncode}): {res.output}\n{self.log_tail()}"
        pid = wait_until(lambda: self.master_pid if self.master_pid and
                         alive(self.master_pid) else None, 5, what="master.pid")
        for service in wait_for:
            self.wait_listener(service)
        return pid

    def wait_listener(self, service, timeout=15):
        def answers():
            try:
                with self.connect(service, timeout=3):
                    return True
            except (OSError, AssertionError, ssl.SSLError):
                return False
        wait_until(answers, timeout, interval=0.1, what=f"the {service} listener")

    def stop(self):
        """End the master and everything it started, whatever state the test left."""
        pid = self.master_pid
        if pid and alive(pid) and any(self.dir in a for a in ProcInfo.read(pid).cmdline):
            os.kill(pid, signal.SIGTERM)
        try:
            wait_until(lambda: not processes_under(self.dir), 8, what="own master to stop")
        except AssertionError:
            for info in processes_under(self.dir):
                try:
                    os.kill(info.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def own_master(sandbox):
    """Factory: own_master(settings) -> OwnMaster (not started). All are stopped afterwards."""
    made = []

    def make(settings=None):
        m = OwnMaster(sandbox, settings)
        made.append(m)
        return m

    yield make
    for m in made:
        m.stop()


def postern_check(conf):
    return subprocess.run([os.path.join(BINDIR, "postern"), "check", "-c", conf],
                          capture_output=True, text=True, timeout=30)


def user_groups(user):
    """The groups initgroups() would give user: its primary group and its memberships."""
    gids = {gid_of(user)}
    gids.update(g.gr_gid for g in grp.getgrall() if user in g.gr_mem)
    return gids
