"""postern_ipc: Postern's internal IPC frames (DESIGN.md §3, lib/ipc.h) for the Python tests.

A frame is one SOCK_SEQPACKET record: a 16-byte header
    'P' 'N' version(=1) nfds(u8) type(u16) status(u16) id(u32) length(u32)    (big-endian)
and `length` bytes of attributes, each
    kind(u8: 1 string, 2 int64, 3 bytes) keylen(u8, 1..32) key([a-z0-9_]) vlen(u32) value.
Strings hold no NUL, ints are exactly 8 bytes, a key appears at most once. File descriptors
travel as SCM_RIGHTS with the record and the header's nfds counts them.

encode()/decode() are as strict as the C side, so a test can build a correct frame, check a
reply to the byte, or build a deliberately broken frame with encode_raw()/attr_raw().
"""

import array
import re
import socket
import struct
import time

VERSION = 1
HDR = struct.Struct(">2sBBHHII")
HDR_LEN = HDR.size                  # 16
MAX_FRAME = 65536
MAX_KEY = 32
MAX_FDS = 4

OK, PERMFAIL, TEMPFAIL = 0, 1, 2
STR, INT, BYTES = 1, 2, 3

# Request types of the test daemon (tests/testd).
TESTD_PING = 1

_KEY = re.compile(rb"[a-z0-9_]{1,32}\Z")


class ProtocolError(ValueError):
    """A frame that the strict decoder refuses."""


class Msg:
    """A decoded frame: header fields and the attributes as an ordered dict key -> value
    (str for strings, int for int64, bytes for bytes)."""

    def __init__(self, type_, id_, status=OK, attrs=None, nfds=0, kinds=None):
        self.type = type_
        self.id = id_
        self.status = status
        self.attrs = dict(attrs or {})
        self.nfds = nfds
        self.kinds = dict(kinds or {})
        self.fds = []

    def __repr__(self):
        return (f"Msg(type={self.type}, id={self.id}, status={self.status}, "
                f"attrs={self.attrs!r}, nfds={self.nfds})")

    def get(self, key, default=None):
        return self.attrs.get(key, default)


# ---- encoding ------------------------------------------------------------------------------

def attr_raw(kind, key, value):
    """One attribute from raw parts, without any checks (for building bad frames)."""
    if isinstance(key, str):
        key = key.encode()
    return struct.pack(">BB", kind, len(key)) + key + struct.pack(">I", len(value)) + value


def encode_attr(key, value):
    """One well-formed attribute; the kind follows the Python type of value."""
    kbytes = key.encode()
    if not _KEY.match(kbytes):
        raise ValueError(f"bad attribute key {key!r}")
    if isinstance(value, bool):
        raise TypeError("booleans have no IPC kind; use an int")
    if isinstance(value, int):
        return attr_raw(INT, kbytes, struct.pack(">q", value))
    if isinstance(value, str):
        data = value.encode()
        if b"\0" in data:
            raise ValueError("strings may not contain NUL")
        return attr_raw(STR, kbytes, data)
    if isinstance(value, (bytes, bytearray)):
        return attr_raw(BYTES, kbytes, bytes(value))
    raise TypeError(f"no IPC kind for {type(value).__name__}")


def encode_raw(type_, id_, payload, status=OK, nfds=0, magic=b"PN", version=VERSION,
               length=None):
    """A frame from a ready payload; every header field can be forced (for bad frames)."""
    if length is None:
        length = len(payload)
    return HDR.pack(magic, version, nfds, type_, status, id_, length) + payload


def encode(type_, id_, attrs=(), status=OK, nfds=0):
    """A well-formed frame; attrs is a dict or a sequence of (key, value) pairs."""
    items = attrs.items() if isinstance(attrs, dict) else attrs
    seen = set()
    payload = b""
    for key, value in items:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen.add(key)
        payload += encode_attr(key, value)
    frame = encode_raw(type_, id_, payload, status=status, nfds=nfds)
    if len(frame) > MAX_FRAME:
        raise ValueError("frame too large")
    return frame


# ---- decoding ------------------------------------------------------------------------------

def decode(frame, nfds_received=0):
    """Strictly decode one frame; raise ProtocolError on anything the C side would refuse."""
    if len(frame) < HDR_LEN:
        raise ProtocolError(f"short frame ({len(frame)} bytes)")
    if len(frame) > MAX_FRAME:
        raise ProtocolError("frame too large")
    magic, version, nfds, type_, status, id_, length = HDR.unpack_from(frame)
    if magic != b"PN" or version != VERSION:
        raise ProtocolError(f"bad magic/version {magic!r}/{version}")
    if length != len(frame) - HDR_LEN:
        raise ProtocolError(f"length {length} but {len(frame) - HDR_LEN} payload bytes")
    if nfds != nfds_received or nfds > MAX_FDS:
        raise ProtocolError(f"header says {nfds} fds, {nfds_received} arrived")
    if status not in (OK, PERMFAIL, TEMPFAIL):
        raise ProtocolError(f"bad status {status}")
    attrs, kinds = {}, {}
    pos, end = HDR_LEN, len(frame)
    while pos < end:
        if end - pos < 2:
            raise ProtocolError("truncated attribute header")
        kind, keylen = frame[pos], frame[pos + 1]
        pos += 2
        if end - pos < keylen + 4:
            raise ProtocolError("truncated attribute key")
        key = bytes(frame[pos:pos + keylen])
        pos += keylen
        if not _KEY.match(key):
            raise ProtocolError(f"bad key {key!r}")
        (vlen,) = struct.unpack_from(">I", frame, pos)
        pos += 4
        if vlen > end - pos:
            raise ProtocolError(f"value of {key!r} overruns the frame")
        value = bytes(frame[pos:pos + vlen])
        pos += vlen
        name = key.decode()
        if name in attrs:
            raise ProtocolError(f"duplicate key {name!r}")
        if kind == STR:
            if b"\0" in value:
                raise ProtocolError(f"NUL in string {name!r}")
            try:
                attrs[name] = value.decode()
            except UnicodeDecodeError:
                attrs[name] = value.decode("latin-1")
        elif kind == INT:
            if vlen != 8:
                raise ProtocolError(f"int {name!r} of {vlen} bytes")
            attrs[name] = struct.unpack(">q", value)[0]
        elif kind == BYTES:
            attrs[name] = value
        else:
            raise ProtocolError(f"unknown kind {kind} of {name!r}")
        kinds[name] = kind
    return Msg(type_, id_, status, attrs, nfds, kinds)


# ---- sockets -------------------------------------------------------------------------------

def connect(path, timeout=5.0):
    """A SOCK_SEQPACKET connection to a private socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except BaseException:
        s.close()
        raise
    return s


def send_frame(sock, frame):
    sock.send(frame)


def recv_frame(sock):
    """(frame bytes, fds) of one record; (b"", []) on EOF. Raises ProtocolError if the record
    was truncated (larger than MAX_FRAME)."""
    fds = array.array("i")
    data, anc, flags, _ = sock.recvmsg(MAX_FRAME + 1, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
    for level, type_, cdata in anc:
        if level == socket.SOL_SOCKET and type_ == socket.SCM_RIGHTS:
            fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        for fd in fds:
            socket.close(fd)
        raise ProtocolError("truncated record")
    return data, list(fds)


def recv_msg(sock):
    """The next decoded message, or None on EOF. Received fds are in msg.fds (caller closes)."""
    data, fds = recv_frame(sock)
    if not data and not fds:
        return None
    try:
        msg = decode(data, len(fds))
    except ProtocolError:
        for fd in fds:
            socket.close(fd)
        raise
    msg.fds = fds
    return msg


def call(sock, type_, attrs=(), id_=1, timeout=5.0):
    """Send a request and return the reply with the same id (None if the peer closed)."""
    sock.settimeout(timeout)
    send_frame(sock, encode(type_, id_, attrs))
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        msg = recv_msg(sock)
        if msg is None or msg.id == id_:
            return msg


def ping(path, text="ping", id_=1, timeout=5.0):
    """One PING to a test daemon on a fresh connection."""
    with connect(path, timeout) as s:
        return call(s, TESTD_PING, {"text": text}, id_, timeout)


def wait_eof(sock, timeout=5.0):
    """True if the peer closes the connection within timeout (data before EOF is skipped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, fds = recv_frame(sock)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        except ProtocolError:
            continue
        for fd in fds:
            socket.close(fd)
        if not data and not fds:
            return True
    return False
