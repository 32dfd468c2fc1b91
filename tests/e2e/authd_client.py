"""authd_client: the authd protocol (lib/authproto.h) for the Python tests, on postern_ipc.

A client is one SOCK_SEQPACKET connection to $spool_directory/private/auth. Every request
is a frame of its request type with string/bytes/int attributes; every reply has the same
type and id and a three-way status (OK, PERMFAIL + reason, TEMPFAIL + reason).

Requests can be made as another user (connect_as): the connection is opened in a forked
child that switched to that uid/gid and handed back to the parent over a socketpair, so the
kernel records the child's credentials for SO_PEERCRED (they are taken at connect()) while
the test itself keeps running as root.

Also here: the sandbox's MariaDB as a small SQL helper (Db) and password hashing with the
tools the issue names (mkpasswd from Debian's whois package).
"""

import os
import pwd
import socket
import subprocess
import time

import postern_ipc as ipc

AUTH = 10
TICKET = 11
USER = 12
RCPT = 13
SENDER = 14


def auth_socket(system):
    return os.path.join(system.spool, "private", "auth")


class AuthClient:
    """One connection to authd; requests get increasing ids."""

    def __init__(self, path=None, sock=None, timeout=10.0):
        self.sock = sock if sock is not None else ipc.connect(path, timeout)
        self.timeout = timeout
        self.next_id = 1

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, type_, attrs, timeout=None):
        """Send one request and return the reply (None if authd closed the connection)."""
        id_ = self.next_id
        self.next_id += 1
        reply = ipc.call(self.sock, type_, attrs, id_, timeout or self.timeout)
        if reply is not None:
            assert reply.type == type_, f"reply of type {reply.type} to type {type_}"
            assert reply.status in (ipc.OK, ipc.PERMFAIL, ipc.TEMPFAIL)
        return reply

    def send_raw(self, frame):
        ipc.send_frame(self.sock, frame)

    # ---- the request types ---------------------------------------------------------------

    def rcpt(self, address, **kw):
        return self.call(RCPT, {"address": address}, **kw)

    def user(self, address, **kw):
        return self.call(USER, {"address": address}, **kw)

    def sender(self, user, address, **kw):
        return self.call(SENDER, {"user": user, "address": address}, **kw)

    def plain(self, authcid, password, authzid="", rip="192.0.2.1", service="smtp",
              ticket=None, **kw):
        """SASL PLAIN; every part may be str or bytes."""
        resp = b"\0".join(_b(x) for x in (authzid, authcid, password))
        attrs = {"service": service, "mech": "PLAIN", "rip": rip, "resp": resp}
        if ticket is not None:
            attrs["ticket"] = ticket
        return self.call(AUTH, attrs, **kw)

    def login(self, user, password, rip="192.0.2.1", service="smtp", ticket=None, **kw):
        attrs = {"service": service, "mech": "LOGIN", "rip": rip, "user": user,
                 "pass": password}
        if ticket is not None:
            attrs["ticket"] = ticket
        return self.call(AUTH, attrs, **kw)

    def redeem(self, ticket, **kw):
        return self.call(TICKET, {"ticket": ticket}, **kw)


def _b(x):
    return x if isinstance(x, bytes) else x.encode()


def targets(reply):
    """The alias targets of an rcpt reply as a list of str."""
    raw = reply.get("targets")
    assert isinstance(raw, bytes), f"targets is not bytes: {reply}"
    return [t.decode() for t in raw.split(b"\0") if t]


def connect_as(path, user=None, uid=None, gid=None, groups=None, timeout=10.0):
    """A socket connected to path by a forked child running as another user, passed back to
    the caller, so SO_PEERCRED names that user. Give a user name (its uid, gid and the groups
    initgroups() gives it, as a daemon running as that user has them) or uid, gid and an
    explicit list of supplementary groups. Raises PermissionError if the socket's permissions
    refused the child's connect()."""
    if user is not None:
        pw = pwd.getpwnam(user)
        uid, gid = pw.pw_uid, pw.pw_gid
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    pid = os.fork()
    if pid == 0:                                   # child: never returns
        try:
            parent.close()
            if user is not None:
                os.initgroups(user, gid)
            else:
                os.setgroups(list(groups or []))
            os.setgid(gid)
            os.setuid(uid)
            try:
                s = ipc.connect(path, timeout)
            except PermissionError:
                child.send(b"EACCES")
                os._exit(0)
            except OSError as e:
                child.send(f"ERR {e}".encode())
                os._exit(0)
            socket.send_fds(child, [b"OK"], [s.fileno()])
            os._exit(0)
        except BaseException:
            os._exit(1)
    child.close()
    try:
        parent.settimeout(timeout)
        msg, fds, _, _ = socket.recv_fds(parent, 256, 1)
    finally:
        parent.close()
        os.waitpid(pid, 0)
    if msg == b"EACCES":
        raise PermissionError(f"uid {uid} may not connect to {path}")
    if msg != b"OK" or not fds:
        raise OSError(f"connect as uid {uid} failed: {msg!r}")
    s = socket.socket(fileno=fds[0])
    s.settimeout(timeout)
    return s


def client_as(path, user=None, **kw):
    """An AuthClient whose peer credentials are another user's (see connect_as)."""
    timeout = kw.get("timeout", 10.0)
    return AuthClient(sock=connect_as(path, user, **kw), timeout=timeout)


# ---- the sandbox's database ----------------------------------------------------------------

class Db:
    """The sandbox's MariaDB through the mariadb client, as root, database mailserver."""

    def __init__(self, socket_path, dbname="mailserver"):
        self.socket = socket_path
        self.dbname = dbname

    def run(self, sql, timeout=30):
        """Run SQL; return the rows of the last result as lists of str (tab-separated output,
        no column names). Raises on a client error."""
        cmd = ["mariadb", "--no-defaults", "-S", self.socket, "-uroot", "--batch",
               "--skip-column-names", "--raw", self.dbname]
        res = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"mariadb failed ({res.returncode}): {res.stderr}\nSQL: {sql}")
        return [line.split("\t") for line in res.stdout.splitlines()]

    def scalar(self, sql):
        rows = self.run(sql)
        return rows[0][0] if rows else None

    def domain(self, name):
        """The id of virtual domain name, inserted if missing."""
        q = quote(name)
        self.run(f"INSERT INTO virtual_domains (name) SELECT {q} FROM DUAL "
                 f"WHERE NOT EXISTS (SELECT 1 FROM virtual_domains WHERE name={q})")
        return int(self.scalar(f"SELECT id FROM virtual_domains WHERE name={q}"))

    def add_user(self, email, password_hash):
        dom = email.rsplit("@", 1)[1]
        did = self.domain(dom)
        self.run(f"REPLACE INTO virtual_users (domain_id, password, email) "
                 f"VALUES ({did}, {quote(password_hash)}, {quote(email)})")

    def add_alias(self, source, destination):
        dom = source.rsplit("@", 1)[1]
        did = self.domain(dom)
        self.run(f"INSERT INTO virtual_aliases (domain_id, source, destination) "
                 f"VALUES ({did}, {quote(source)}, {quote(destination)})")

    def count(self, table):
        return int(self.scalar(f"SELECT COUNT(*) FROM {table}"))


def quote(s):
    """A SQL string literal (for the test's own statements, never for authd's)."""
    return "'" + s.replace("\\", "\\\\").replace("'", "''") + "'"


# ---- hashes made by other tools ------------------------------------------------------------

def mkpasswd(password, method):
    """A hash from mkpasswd (Debian's whois package): sha-512, yescrypt, bcrypt, md5crypt..."""
    res = subprocess.run(["mkpasswd", "-m", method, "--stdin"], input=password,
                         capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise RuntimeError(f"mkpasswd -m {method} failed: {res.stderr}")
    return res.stdout.strip()


def timed(fn, *args, **kw):
    """(result, seconds) of one call."""
    t0 = time.monotonic()
    r = fn(*args, **kw)
    return r, time.monotonic() - t0

