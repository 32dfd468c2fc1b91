"""test_package: the .deb installed into a Debian 12 root, used, upgraded, removed and purged;
the .rpm inspected (issue 8).

`make package-test` builds both packages first (`make deb rpm`); the test builds the upgrade
package itself (`make deb PKG_RELEASE=N+1`). The root is a cached debootstrap (rootfs.py),
unpacked fresh for each run and used in private network, PID and mount namespaces: ports
25/143 never clash with the host, every mount lives and dies with the namespace, and killing
the namespace's first process ends everything that ran in it. Nothing in there runs systemd:
Postern is started with `postern start`, and the package's init script (through invoke-rc.d)
restarts it on upgrade and stops it on removal. MariaDB runs by hand in the root.

The tests depend on each other in file order (one installation walked through its life).
"""

import glob
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest

import rootfs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PKG_DIR = os.path.join(REPO, "build", "pkg")
PYTHON = "/usr/bin/python3"

DOMAIN = "example.test"
USER = f"alice@{DOMAIN}"
PASSWORD = "correct horse battery staple"
DB_PASSWORD = "pkgtest-db-secret"
SPOOL = "/var/spool/postern"
CHROOT_ETC = {"resolv.conf", "hosts", "services", "localtime", "nsswitch.conf", "host.conf",
              "protocols", "gai.conf"}

if os.geteuid() != 0:
    pytest.skip("the package test needs root (chroot, namespaces)", allow_module_level=True)


# ---- packages ------------------------------------------------------------------------------

def version():
    with open(os.path.join(REPO, "lib", "version.h")) as f:
        return re.search(r'POSTERN_VERSION "([^"]+)"', f.read()).group(1)


def arch():
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()


def deb_path(release):
    return os.path.join(PKG_DIR, f"postern_{version()}-{release}_{arch()}.deb")


def make(*args):
    res = subprocess.run(["make", "-C", REPO, *args], capture_output=True, text=True)
    assert res.returncode == 0, f"make {' '.join(args)} failed:\n{res.stdout[-4000:]}" \
                                f"{res.stderr[-4000:]}"


@pytest.fixture(scope="module")
def debs():
    """(first, upgrade): the package `make deb` built and a rebuild one release later."""
    first = deb_path(1)
    if not os.path.exists(first):
        make("deb")
    make("deb", "PKG_RELEASE=2", "LINTIAN=no")
    return first, deb_path(2)


# ---- the namespace and the root ------------------------------------------------------------

# First process of the namespaces: loopback up, /proc /dev /run mounted into the root,
# then reap orphans (daemons that detached) until killed.
NS_INIT = r"""
import os, subprocess, sys, time
root = sys.argv[1]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["mount", "-t", "proc", "proc", root + "/proc"], check=True)
subprocess.run(["mount", "--rbind", "/dev", root + "/dev"], check=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", root + "/run"], check=True)
print("ready", flush=True)
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        time.sleep(0.2)
"""

CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
              "DEBIAN_FRONTEND": "noninteractive"}


class Host:
    """The unpacked root and the namespaces it runs in."""

    def __init__(self, root):
        self.root = root
        self.errors = tempfile.TemporaryFile(mode="w+")
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--pid", "--mount", "--fork", "--propagation", "private",
             PYTHON, "-c", NS_INIT, root],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.errors, text=True)
        line = self.holder.stdout.readline()
        if line.strip() != "ready":
            self.errors.seek(0)
            raise AssertionError("namespace set-up failed:\n" + self.errors.read())
        self.init_pid = self.ns_init_pid()

    def ns_init_pid(self):
        with open(f"/proc/{self.holder.pid}/task/{self.holder.pid}/children") as f:
            return int(f.read().split()[0])

    def nsenter(self, *what):
        return ["nsenter", f"--target={self.init_pid}", *what, "--"]

    def sh(self, script, check=True, input=None, timeout=120):
        """Run a shell script in the root, inside the namespaces."""
        res = subprocess.run(self.nsenter("--net", "--pid", "--mount") +
                             ["chroot", self.root, "/bin/sh", "-ec", script],
                             input=input, capture_output=True, text=True, env=CHROOT_ENV,
                             timeout=timeout, stdin=None if input is not None
                             else subprocess.DEVNULL)
        if check:
            assert res.returncode == 0, f"{script!r} failed ({res.returncode}):\n" \
                                        f"{res.stdout[-4000:]}{res.stderr[-4000:]}"
        return res

    def py_net(self, code, *args, **kw):
        """The host's python in the namespace's network only (clients of the server)."""
        return subprocess.Popen(self.nsenter("--net") + [PYTHON, "-c", code, *args],
                                text=True, **kw)

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def read(self, p):
        with open(self.path(p)) as f:
            return f.read()

    def processes(self):
        """{pid: (name, root inside the chroot)} of the Postern processes running in it."""
        found = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                proot = os.readlink(f"/proc/{pid}/root")
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv0 = f.read().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            if proot != self.root and not proot.startswith(self.root + "/"):
                continue
            name = os.path.basename(argv0)
            if name.startswith("postern") and proc_state(pid) not in ("Z", "X", None):
                found[pid] = (name, proot[len(self.root):] or "/")
        return found

    def close(self):
        try:
            os.kill(self.init_pid, signal.SIGKILL)    # ends every process of the PID namespace
        except ProcessLookupError:
            pass
        try:
            self.holder.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.holder.kill()
            self.holder.wait()


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()[0]


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.split()
    return out


@pytest.fixture(scope="module")
def host():
    tar = rootfs.ensure_cache()
    work = tempfile.mkdtemp(prefix="postern-pkgtest-", dir="/var/tmp")
    os.chmod(work, 0o755)
    root = os.path.join(work, "root")
    h = None
    try:
        rootfs.unpack(tar, root)
        h = Host(root)
        yield h
    finally:
        if h:
            h.close()
        with open("/proc/self/mountinfo") as f:
            leftover = [line for line in f if f" {work}/" in line]
        if os.environ.get("POSTERN_PKGTEST_KEEP") != "1":
            subprocess.run(["rm", "-rf", "--one-file-system", work])
        assert not leftover, f"mounts left behind: {leftover}"


def dpkg(host, *args):
    """dpkg in the root, never answering a question (stdin is /dev/null)."""
    return host.sh("dpkg " + " ".join(args) + " 2>&1", check=False)


def wait_until(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


# ---- the packages themselves ---------------------------------------------------------------

def rpm_file():
    found = glob.glob(os.path.join(PKG_DIR, f"postern-{version()}-1*.rpm"))
    if not found:
        make("rpm")
        found = glob.glob(os.path.join(PKG_DIR, f"postern-{version()}-1*.rpm"))
    return found[0]


def rpmq(*args):
    return subprocess.run(["rpm", "-qp", *args, rpm_file()], capture_output=True, text=True,
                          check=True).stdout


def test_rpm_contents_modes_and_scripts():
    # mode, owner, group per file (`rpm -qlv` cuts names to 8 characters)
    listing = {f[3]: f[:3] for f in (line.split() for line in rpmq(
        "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]"
        ).splitlines()) if len(f) == 4}
    for path in ["/usr/sbin/postern", "/usr/sbin/postern-master", "/usr/lib/postern/postern-smtpd",
                 "/usr/lib/postern/postern-authd", "/usr/lib/postern/postern-imap",
                 "/usr/lib/systemd/system/postern.service", "/etc/logrotate.d/postern",
                 "/usr/share/postern/schema.sql", "/usr/share/man/man8/postern.8.gz"
                 if "/usr/share/man/man8/postern.8.gz" in listing else
                 "/usr/share/man/man8/postern.8"]:
        assert path in listing, f"{path} missing from the rpm"
    assert not [p for p in listing if "testd" in p or "/tests/" in p or "bench" in p]
    assert listing["/usr/sbin/sendmail.postern"] == ["-rwxr-sr-x", "root", "postern-drop"]
    assert listing["/etc/postern/sql.conf"][:2] == ["-rw-------", "postern-auth"]
    assert listing["/var/spool/postern/maildrop"] == ["drwx-wx--T", "postern-queue",
                                                      "postern-drop"]
    assert listing["/var/spool/postern/empty"] == ["dr-xr-xr-x", "root", "root"]
    assert listing["/var/mail/vhosts"] == ["drwxr-x---", "vmail", "vmail"]
    config = rpmq("--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]")
    for path in ["/etc/postern/postern.conf", "/etc/postern/sql.conf"]:
        assert re.search(rf"^c\S*n\S* {re.escape(path)}$", config, re.M), \
            f"{path} is not %config(noreplace)"
    provides = rpmq("--provides")
    for cap in ["MTA", "server(smtp)", "smtpdaemon"]:
        assert re.search(rf"^{re.escape(cap)}( =|$)", provides, re.M), cap
    scripts = rpmq("--scripts")
    for needle in ["useradd", "groupadd -r postern-drop", "-u 5000",
                   "alternatives --install /usr/sbin/sendmail mta /usr/sbin/sendmail.postern",
                   "--slave /usr/bin/mailq mta-mailq", "alternatives --remove mta",
                   "openssl req -x509"]:
        assert needle in scripts, f"{needle!r} not in the rpm's scripts"


def test_deb_metadata(debs):
    info = subprocess.run(["dpkg-deb", "-f", debs[0]], capture_output=True, text=True,
                          check=True).stdout
    for field in ["Provides", "Conflicts", "Replaces"]:
        assert re.search(rf"^{field}: .*mail-transport-agent", info, re.M), field
    conffiles = subprocess.run(["dpkg-deb", "-I", debs[0], "conffiles"], capture_output=True,
                               text=True, check=True).stdout.split()
    for path in ["/etc/postern/postern.conf", "/etc/postern/sql.conf",
                 "/etc/logrotate.d/postern", "/etc/init.d/postern"]:
        assert path in conffiles
    files = subprocess.run(["dpkg-deb", "-c", debs[0]], capture_output=True, text=True,
                           check=True).stdout
    assert "./usr/sbin/sendmail.postern" in files
    assert "./lib/systemd/system/postern.service" in files
    assert "testd" not in files and "/bench" not in files


def test_systemd_unit_verifies():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    res = subprocess.run(["systemd-analyze", "verify", "--man=no",
                          os.path.join(REPO, "packaging", "postern.service")],
                         capture_output=True, text=True)
    # The programs are not installed on the build host: that one complaint is expected.
    problems = [line for line in (res.stdout + res.stderr).splitlines()
                if line.strip() and "is not executable: No such file" not in line]
    assert not problems, "\n".join(problems)


# ---- install, use, upgrade, remove, purge --------------------------------------------------

def test_install(host, debs):
    shutil.copy(debs[0], host.path("/tmp/postern.deb"))
    res = dpkg(host, "-i", "/tmp/postern.deb")
    assert res.returncode == 0, res.stdout
    out = host.sh("getent passwd vmail postern postern-queue postern-auth; "
                  "getent group postern-drop postern; id -nG postern-queue; id -nG vmail").stdout
    assert re.search(r"^vmail:x:5000:5000:", out, re.M)
    for user in ["postern", "postern-queue", "postern-auth"]:
        assert re.search(rf"^{user}:x:\d+:\d+:.*:/usr/sbin/nologin$", out, re.M), user
    assert "postern-drop" in out and out.count("postern") >= 6
    st = os.stat(host.path("/etc/postern/sql.conf"))
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert host.sh("stat -c %U /etc/postern/sql.conf").stdout.strip() == "postern-auth"
    assert host.sh("stat -c '%a %U %G' /usr/sbin/sendmail.postern").stdout.split() == \
        ["2755", "root", "postern-drop"]
    for link in ["/usr/sbin/sendmail", "/usr/bin/mailq", "/usr/bin/newaliases",
                 "/usr/lib/sendmail"]:
        assert host.sh(f"readlink -f {link}").stdout.strip() == "/usr/sbin/sendmail.postern"
    assert host.sh("openssl x509 -noout -subject -in /etc/postern/cert.pem").returncode == 0
    assert stat.S_IMODE(os.stat(host.path("/etc/postern/key.pem")).st_mode) == 0o600
    assert host.sh("stat -c '%a %U' /var/spool/postern/maildrop /var/mail/vhosts"
                   ).stdout.split() == ["1730", "postern-queue", "750", "vmail"]
    assert not host.processes(), "policy-rc.d forbids starting: nothing may run yet"


def start_mariadb(host):
    host.sh("mkdir -p /run/mysqld && chmod 755 /run/mysqld\n"
            "mariadb-install-db --no-defaults --datadir=/var/lib/pkgtest-db --user=root "
            "--auth-root-authentication-method=normal >/dev/null\n"
            "setsid mariadbd --no-defaults --datadir=/var/lib/pkgtest-db "
            "--socket=/run/mysqld/mysqld.sock --skip-networking --user=root "
            "--pid-file=/run/mysqld/pid --log-error=/var/log/pkgtest-db.err "
            "</dev/null >/dev/null 2>&1 &")
    wait_until(lambda: host.sh("mariadb --no-defaults -S /run/mysqld/mysqld.sock -uroot "
                               "-e 'SELECT 1'", check=False).returncode == 0, 30, "MariaDB")
    host.sh("mariadb --no-defaults -S /run/mysqld/mysqld.sock -uroot", input=(
        "CREATE DATABASE mailserver;\n"
        f"CREATE USER 'mailuser'@'localhost' IDENTIFIED BY '{DB_PASSWORD}';\n"
        "GRANT SELECT, INSERT, UPDATE, DELETE ON mailserver.* TO 'mailuser'@'localhost';\n"))
    host.sh("mariadb --no-defaults -S /run/mysqld/mysqld.sock -uroot mailserver "
            "< /usr/share/postern/schema.sql")


def test_configure_and_start(host):
    start_mariadb(host)
    # The administrator's edits, which the upgrade must keep: credentials in sql.conf, a
    # host name, a log file and a relay host (SINK_PORT) in postern.conf.
    host.sh(f"sed -i 's/^password = CHANGE-ME$/password = {DB_PASSWORD}/' "
            "/etc/postern/sql.conf")
    host.sh("printf '\\n# package test\\nmyhostname = mail.example.test\\n"
            "log_file = /var/log/postern.log\\n"
            f"relayhost = [127.0.0.1]:{SINK_PORT}\\n' >> /etc/postern/postern.conf")
    assert host.sh("stat -c '%a %U' /etc/postern/sql.conf").stdout.split() == \
        ["600", "postern-auth"]
    # From here on, act like a host running sysvinit in runlevel 2: invoke-rc.d lets the
    # maintainer scripts start and stop (policy-rc.d allows everything; minbase has no
    # /sbin/init, which invoke-rc.d would otherwise take as "no init system: block").
    host.sh("printf '#!/bin/sh\\nexit 0\\n' > /usr/sbin/policy-rc.d && "
            "printf '#!/bin/sh\\necho N 2\\n' > /sbin/runlevel && "
            "chmod 755 /usr/sbin/policy-rc.d /sbin/runlevel")
    res = host.sh("postern check && postern start")
    assert re.search(r"postern: started \(pid \d+\)", res.stdout), res.stdout + res.stderr
    res = host.sh("postern status; echo rc=$?", check=False)
    assert re.search(r"running \(pid \d+\)\nrc=0", res.stdout), res.stdout
    host.sh(f"postern admin domain add {DOMAIN} && "
            f"echo '{PASSWORD}' | postern admin user add {USER} --password-stdin")


# The relay host: takes one message over SMTP, prints GOT and its envelope, and exits.
SINK_PORT = 2525
SINK = r"""
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(1)
print("LISTENING", flush=True)
srv.settimeout(60)
conn, _ = srv.accept()
f = conn.makefile("rb")
def say(line):
    conn.sendall(line.encode() + b"\r\n")
say("220 sink ESMTP")
envelope = []
while True:
    line = f.readline()
    if not line:
        break
    cmd = line.decode(errors="replace").strip()
    verb = cmd.split(" ")[0].upper()
    if verb in ("EHLO", "HELO"):
        say("250 sink")
    elif verb in ("MAIL", "RCPT"):
        envelope.append(cmd)
        say("250 ok")
    elif verb == "DATA":
        say("354 go on")
        while f.readline() not in (b".\r\n", b""):
            pass
        say("250 queued")
        print("GOT", " ".join(envelope), flush=True)
    elif verb == "QUIT":
        say("221 bye")
        break
    else:
        say("250 ok")
"""


SMTP_CLIENT = r"""
import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "bob@remote.test"
m["To"] = sys.argv[1]
m["Subject"] = sys.argv[2]
m.set_content("Hello from the package test.\n")
with smtplib.SMTP("127.0.0.1", 25, timeout=30) as s:
    s.send_message(m)
print("sent")
"""

# Logs in over 143 + STARTTLS, waits for the message, prints READY and holds the session
# open until told to finish (the test looks at the processes meanwhile).
IMAP_CLIENT = r"""
import imaplib, ssl, sys, time
user, password, subject = sys.argv[1:4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE          # the package's certificate is self-signed
imap = imaplib.IMAP4("127.0.0.1", 143, timeout=30)
imap.starttls(ssl_context=ctx)
imap.login(user, password)
deadline = time.monotonic() + 20
while True:
    imap.select("INBOX")
    typ, data = imap.search(None, "SUBJECT", '"' + subject + '"')
    if data[0].split():
        break
    if time.monotonic() > deadline:
        print("TIMEOUT", flush=True)
        sys.exit(1)
    time.sleep(0.2)
num = data[0].split()[-1]
typ, msg = imap.fetch(num, "(RFC822)")
body = msg[0][1].decode(errors="replace")
assert "Hello from the package test." in body, body
print("READY", flush=True)
sys.stdin.readline()
imap.logout()
print("DONE", flush=True)
"""


# POP3 over 110 + STLS, logged in, held open until told to finish: its login process (the
# TLS proxy) and its session are inspected with the others.
POP3_CLIENT = r"""
import poplib, ssl, sys
user, password = sys.argv[1:3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
pop = poplib.POP3("127.0.0.1", 110, timeout=30)
pop.stls(context=ctx)
pop.user(user)
pop.pass_(password)
count, size = pop.stat()
print("READY", count, flush=True)
sys.stdin.readline()
pop.quit()
print("DONE", flush=True)
"""


def holding_pop3(host, then):
    """Run then() while a POP3 client is logged in."""
    pop = host.py_net(POP3_CLIENT, USER, PASSWORD, stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        line = pop.stdout.readline()
        assert line.startswith("READY"), line + pop.stdout.read()
        then()
        pop.stdin.write("\n")
        pop.stdin.flush()
        assert pop.stdout.readline().strip() == "DONE"
    finally:
        pop.kill()
        pop.wait()


def send_and_read(host, subject, inspect=None):
    sent = host.py_net(SMTP_CLIENT, USER, subject, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    out, _ = sent.communicate(timeout=60)
    assert sent.returncode == 0 and "sent" in out, out
    imap = host.py_net(IMAP_CLIENT, USER, PASSWORD, subject, stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        line = imap.stdout.readline()
        assert line.strip() == "READY", line + imap.stdout.read() + \
            host.sh("tail -n 30 /var/log/postern.log", check=False).stdout
        if inspect:
            inspect()
        imap.stdin.write("\n")
        imap.stdin.flush()
        assert imap.stdout.readline().strip() == "DONE"
    finally:
        imap.kill()
        imap.wait()


# DESIGN.md §1: user, root directory and effective capabilities of every daemon.
# None for a root directory: the mailbox home of the session's user.
CAP_SETGID, CAP_SETUID = 6, 7
EXPECTED = {
    "postern-master": ("root", "/", "all"),
    "postern-authd": ("postern-auth", "/", 0),
    "postern-smtpd": ("postern", SPOOL, 0),
    "postern-queue": ("postern-queue", SPOOL, 0),
    "postern-qmgr": ("postern-queue", SPOOL, 0),
    "postern-anvil": ("postern", SPOOL, 0),
    "postern-smtp": ("postern", SPOOL, 0),
    "postern-virtual": ("vmail", "/", 0),
    "postern-local": ("root", "/", (1 << CAP_SETUID) | (1 << CAP_SETGID)),
    "postern-imap-login": ("postern", SPOOL + "/empty", 0),
    "postern-pop3-login": ("postern", SPOOL + "/empty", 0),
    "postern-imap": ("vmail", None, 0),
    "postern-pop3": ("vmail", None, 0),
}


def check_daemons(host):
    uids = {}
    for line in host.read("/etc/passwd").splitlines():
        fields = line.split(":")
        uids[fields[0]] = int(fields[2])
    procs = host.processes()
    names = {name for name, _ in procs.values()}
    for needed in ["postern-master", "postern-authd", "postern-queue", "postern-qmgr",
                   "postern-smtpd", "postern-imap-login", "postern-imap",
                   "postern-pop3-login", "postern-pop3", "postern-smtp"]:
        assert needed in names, f"{needed} is not running: {sorted(names)}"
    problems = []
    for pid, (name, proot) in sorted(procs.items()):
        assert name in EXPECTED, f"unexpected program {name} (pid {pid})"
        user, want_root, caps = EXPECTED[name]
        st = proc_status(pid)
        if [int(u) for u in st["Uid"]] != [uids[user]] * 4:
            problems.append(f"{name}[{pid}] uids {st['Uid']}, want {user}")
        if want_root is None:
            if not proot.startswith(f"/var/mail/vhosts/{DOMAIN}/"):
                problems.append(f"{name}[{pid}] root {proot}, want the mailbox home")
        elif proot != want_root:
            problems.append(f"{name}[{pid}] root {proot}, want {want_root}")
        eff, prm = int(st["CapEff"][0], 16), int(st["CapPrm"][0], 16)
        bound = int(st["CapBnd"][0], 16)
        if caps == "all":
            if eff != bound or eff == 0:
                problems.append(f"{name}[{pid}] CapEff {eff:x}, want all ({bound:x})")
        elif eff != caps or prm != caps:
            problems.append(f"{name}[{pid}] CapEff {eff:x} CapPrm {prm:x}, want {caps:x}")
    assert not problems, "\n".join(problems)
    print("daemons:", ", ".join(f"{name}[{pid}] in {proot}"
                                for pid, (name, proot) in sorted(procs.items())))


def check_chroot(host):
    """The chroot holds the spool and copies of a few /etc files, nothing to run."""
    spool = host.path(SPOOL)
    assert set(os.listdir(spool)) <= {"pid", "private", "etc", "empty", "queue", "maildrop"}
    assert set(os.listdir(os.path.join(spool, "etc"))) <= CHROOT_ETC
    assert os.listdir(os.path.join(spool, "empty")) == []
    assert stat.S_IMODE(os.stat(os.path.join(spool, "empty")).st_mode) == 0o555
    bad = []
    for dirpath, dirnames, filenames in os.walk(spool):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            if kind not in (stat.S_IFDIR, stat.S_IFREG, stat.S_IFSOCK):
                bad.append(f"{path}: not a file, directory or socket")
            elif kind == stat.S_IFREG and st.st_mode & 0o7111:
                bad.append(f"{path}: executable or set-id")
    assert not bad, "\n".join(bad)


def test_sendmail_out_through_the_relayhost(host):
    """sendmail(1) of the package, pickup, qmgr and the smtp agent to the relay host."""
    sink = host.py_net(SINK, str(SINK_PORT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert sink.stdout.readline().strip() == "LISTENING"
        host.sh("printf 'Subject: out\\n\\nto the world\\n' | "
                "sendmail -f root@mail.example.test someone@remote.test")
        out, _ = sink.communicate(timeout=60)
    finally:
        sink.kill()
        sink.wait()
    assert "GOT" in out and "<someone@remote.test>" in out, out + \
        host.sh("tail -n 30 /var/log/postern.log", check=False).stdout


def test_mail_through_port_25_and_imap(host):
    # One more message, to root: local delivery (postern-local) runs too while the
    # daemons are inspected.
    sent = host.py_net(SMTP_CLIENT, "root@mail.example.test", "to root",
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = sent.communicate(timeout=60)
    assert sent.returncode == 0, out
    wait_until(lambda: os.path.exists(host.path("/var/mail/root")), 20, "local delivery")
    send_and_read(host, "package test 1",
                  inspect=lambda: holding_pop3(host, lambda: (check_daemons(host),
                                                              check_chroot(host))))
    maildir = host.path(f"/var/mail/vhosts/{DOMAIN}/alice/Maildir")
    assert os.stat(maildir).st_uid == 5000


def master_pid(host):
    m = re.search(r"running \(pid (\d+)\)", host.sh("postern status", check=False).stdout)
    return int(m.group(1)) if m else None


def test_reload(host):
    before = master_pid(host)
    res = host.sh("postern reload")
    assert f"reloading (pid {before})" in res.stdout
    time.sleep(0.5)
    assert master_pid(host) == before


def test_upgrade_keeps_changed_config(host, debs):
    sql_conf = host.read("/etc/postern/sql.conf")
    postern_conf = host.read("/etc/postern/postern.conf")
    before = master_pid(host)
    shutil.copy(debs[1], host.path("/tmp/postern-2.deb"))
    res = dpkg(host, "-i", "/tmp/postern-2.deb")
    # stdin is /dev/null: a conffile prompt would have failed the upgrade.
    assert res.returncode == 0, res.stdout
    assert "Configuration file" not in res.stdout, res.stdout
    assert host.sh("dpkg-query -W -f '${Version}' postern").stdout == f"{version()}-2"
    assert host.read("/etc/postern/sql.conf") == sql_conf
    assert f"password = {DB_PASSWORD}" in sql_conf
    assert host.read("/etc/postern/postern.conf") == postern_conf
    assert not glob.glob(host.path("/etc/postern/*.dpkg-*"))
    assert host.sh("stat -c '%a %U' /etc/postern/sql.conf").stdout.split() == \
        ["600", "postern-auth"]
    after = master_pid(host)
    assert after and after != before, "the upgrade did not restart postern:\n" + res.stdout
    send_and_read(host, "package test 2")


def test_remove_stops_and_keeps_mail(host):
    res = dpkg(host, "-r", "postern")
    assert res.returncode == 0, res.stdout
    wait_until(lambda: not host.processes(), 10, "every Postern process to end")
    assert os.path.isdir(host.path(f"/var/mail/vhosts/{DOMAIN}/alice/Maildir/cur"))
    assert glob.glob(host.path(f"/var/mail/vhosts/{DOMAIN}/alice/Maildir/*/*"))
    assert os.path.isdir(host.path(f"{SPOOL}/queue"))
    assert os.path.exists(host.path("/etc/postern/sql.conf"))
    assert not os.path.lexists(host.path("/usr/sbin/sendmail"))
    assert not os.path.exists(host.path("/usr/sbin/postern-master"))


def test_purge_says_what_it_keeps(host):
    res = dpkg(host, "-P", "postern")
    assert res.returncode == 0, res.stdout
    assert "kept the mailboxes in /var/mail/vhosts" in res.stdout, res.stdout
    assert "kept the users" in res.stdout
    assert not os.path.exists(host.path("/etc/postern"))
    assert os.path.isdir(host.path(f"/var/mail/vhosts/{DOMAIN}/alice/Maildir"))
    assert "postern" not in host.sh("dpkg-statoverride --list").stdout
    assert host.sh("dpkg-query -W -f '${Status}' postern 2>&1", check=False).stdout \
        .find("install ok") < 0
