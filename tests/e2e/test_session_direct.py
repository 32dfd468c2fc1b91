"""test_session_direct: a client without TLS is handed over to its mail session.

When the connection is not encrypted the login process does not stay in between as a
proxy: master's session gets the client's own socket (and, through a pipe, whatever the
client sent after its login command), and the login process is free for the next client
(DESIGN.md §1; lib/sessionproto.h). The module runs a sandbox that allows plain-text logins
on 143 and 110, as a LAN or a test box might.
"""

import os
import re
import socket
import subprocess
import time

import pytest

from conftest import BINDIR, finish_sandbox, start_sandbox, wait_until

DOMAIN = "direct.test"
USER, PASSWORD = f"dana@{DOMAIN}", "direct-pw"


@pytest.fixture(scope="module")
def dsb():
    sb = start_sandbox("postern-direct-", ["imap_allow_plaintext_auth=yes",
                                           "pop3_allow_plaintext_auth=yes"])
    admin = [os.path.join(BINDIR, "postern"), "admin", "-c", sb.conf]
    try:
        subprocess.run(admin + ["domain", "add", DOMAIN], check=True, capture_output=True)
        subprocess.run(admin + ["user", "add", USER, "--password-stdin"], input=PASSWORD + "\n",
                       text=True, check=True, capture_output=True)
    except BaseException:
        finish_sandbox(sb)
        raise
    yield sb
    finish_sandbox(sb)


def read_until(sock, pattern, timeout=10):
    data, deadline = b"", time.monotonic() + timeout
    sock.settimeout(timeout)
    while not re.search(pattern, data):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; got {data!r}")
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def owner_of(local_port):
    """The program holding the server end of the client's TCP connection (ss -tnp)."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( dport = :{local_port} )"],
                         capture_output=True, text=True).stdout
    return re.findall(r'users:\(\("([^"]+)"', out)


def test_imap_plain_login_hands_the_socket_to_the_session(dsb):
    with socket.create_connection(("127.0.0.1", int(dsb.env["POSTERN_IMAP_PORT"]))) as s:
        read_until(s, rb"\* OK .*\r\n")
        # the login and what follows it arrive together: the session must see the rest
        s.sendall(f"a LOGIN {USER} {PASSWORD}\r\nb SELECT INBOX\r\nc NOOP\r\n".encode())
        data = read_until(s, rb"c OK [^\r]*\r\n")
        assert re.search(rb"a OK \[CAPABILITY [^\]]*\] Logged in", data), data
        assert b"b OK [READ-WRITE]" in data and b"* 0 EXISTS" in data, data
        port = s.getsockname()[1]
        owners = owner_of(port)
        assert owners == ["postern-imap"], f"connection held by {owners}"
        s.sendall(b"d LOGOUT\r\n")
        assert b"d OK" in read_until(s, rb"d OK[^\r]*\r\n")
    assert re.search(r"imap-login: Info: Login: user=<dana@direct\.test>, method=PLAIN, "
                     r"rip=127\.0\.0\.1, lip=127\.0\.0\.1, mpid=\d+, session=<", dsb.log_text())


def test_pop3_plain_login_hands_the_socket_to_the_session(dsb):
    with socket.create_connection(("127.0.0.1", int(dsb.env["POSTERN_POP3_PORT"]))) as s:
        read_until(s, rb"\+OK[^\r]*\r\n")
        s.sendall(f"USER {USER}\r\n".encode())
        read_until(s, rb"\+OK[^\r]*\r\n")
        s.sendall(f"PASS {PASSWORD}\r\nSTAT\r\n".encode())
        data = read_until(s, rb"\+OK 0 0\r\n")
        assert data.startswith(b"+OK Logged in."), data
        owners = owner_of(s.getsockname()[1])
        assert owners == ["postern-pop3"], f"connection held by {owners}"
        s.sendall(b"QUIT\r\n")
        assert read_until(s, rb"\+OK[^\r]*\r\n").startswith(b"+OK")


def test_refused_session_answers_the_client_itself(dsb):
    """With nobody in between, master's child tells the client when it refuses."""
    home = os.path.join(dsb.env["POSTERN_MAIL_ROOT"], DOMAIN, "dana")
    moved = home + ".away"
    os.rename(home, moved)          # the home vanishes: master's child refuses the session
    try:
        with socket.create_connection(("127.0.0.1", int(dsb.env["POSTERN_IMAP_PORT"]))) as s:
            read_until(s, rb"\* OK .*\r\n")
            s.sendall(f"a LOGIN {USER} {PASSWORD}\r\n".encode())
            data = read_until(s, rb"a (OK|NO)[^\r]*\r\n")
            assert data.startswith(b"a NO [UNAVAILABLE]"), data
        wait_until(lambda: "session refused: user=<dana@direct.test>" in dsb.log_text(), 10,
                   what="the refusal in the log")
    finally:
        os.rename(moved, home)
