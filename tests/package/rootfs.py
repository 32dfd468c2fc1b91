#!/usr/bin/python3
"""rootfs.py: a Debian 12 root for the package test, built once with debootstrap and cached.

    tests/package/rootfs.py build     build the cache now (the test builds it when missing)

The cached root is a tar file /var/cache/postern-test/bookworm-HASH.tar, HASH covering the
suite, the mirror and the package list below, so changing the list builds a new one. It is a
minbase bookworm plus MariaDB's server and Postern's run-time libraries, installed with apt in
the chroot (policy-rc.d forbids starting anything; the chroot's mounts live in a private
mount namespace). Every test run unpacks a fresh copy.
Only the Python standard library is used.
"""

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
CACHE_DIR = "/var/cache/postern-test"
# What the test needs in the root besides minbase: the database, the libraries Postern links
# (dh_shlibdeps names them; installing them first saves an apt run per test) and openssl for
# the postinst's certificate.
PACKAGES = ["mariadb-server", "mariadb-client", "libssl3", "libmariadb3", "libcap2",
            "libcrypt1", "openssl", "procps", "logrotate"]
POLICY_RC_D = "#!/bin/sh\n# package test: never start services from maintainer scripts\nexit 101\n"


def cache_path():
    key = "\n".join([SUITE, MIRROR, "minbase", *sorted(PACKAGES), "v1"])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return os.path.join(CACHE_DIR, f"{SUITE}-{digest}.tar")


def run(cmd, **kw):
    res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n"
                           f"{res.stdout[-3000:]}{res.stderr[-3000:]}")
    return res.stdout


def in_root(root, *cmd):
    """Run cmd chrooted into root with /proc and /dev mounted, in a private mount namespace:
    the mounts end with the command, whatever happens to this process."""
    script = ('mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && '
              'exec chroot "$0" "$@"')
    return run(["unshare", "--mount", "--propagation", "private", "--fork",
                "/bin/sh", "-c", script, root, *cmd], env=chroot_env())


def prepare_apt(root):
    """Host apt sources and resolver, and a policy-rc.d that forbids starting services."""
    for name in ("etc/resolv.conf",):
        dst = os.path.join(root, name)
        if os.path.lexists(dst):
            os.unlink(dst)
        shutil.copy("/etc/" + os.path.basename(name), dst)
    src = "/etc/apt/sources.list.d/debian.sources"
    if os.path.exists(src):
        shutil.copy(src, os.path.join(root, "etc/apt/sources.list.d/debian.sources"))
        open(os.path.join(root, "etc/apt/sources.list"), "w").close()
    policy = os.path.join(root, "usr/sbin/policy-rc.d")
    with open(policy, "w") as f:
        f.write(POLICY_RC_D)
    os.chmod(policy, 0o755)


def chroot_env():
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
            "LANG": "C.UTF-8", "HOME": "/root"}


def build(path):
    os.makedirs(CACHE_DIR, exist_ok=True)
    work = tempfile.mkdtemp(prefix="rootfs-", dir=CACHE_DIR)
    root = os.path.join(work, "root")
    try:
        run(["debootstrap", "--variant=minbase", SUITE, root, MIRROR])
        prepare_apt(root)
        in_root(root, "apt-get", "update", "-q")
        in_root(root, "apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES)
        in_root(root, "apt-get", "clean")
        tmp = path + ".tmp"
        run(["tar", "--numeric-owner", "--xattrs", "-C", root, "-cf", tmp, "."])
        os.replace(tmp, path)
        for old in glob.glob(os.path.join(CACHE_DIR, f"{SUITE}-*.tar")):
            if old != path:
                os.unlink(old)      # a root for an older package list
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", work])


def ensure_cache():
    """The cached tar file, built first if missing; returns its path."""
    path = cache_path()
    if not os.path.exists(path):
        build(path)
    return path


def unpack(tar, root):
    """A fresh copy of the cached root, with this host's name resolvable in it (MariaDB's
    install script insists)."""
    os.makedirs(root, exist_ok=True)
    run(["tar", "--numeric-owner", "--xattrs", "-C", root, "-xf", tar])
    prepare_apt(root)
    name = os.uname().nodename
    with open(os.path.join(root, "etc/hosts"), "w") as f:
        f.write(f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n127.0.1.1\t{name}\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["build"]:
        print(ensure_cache())
    else:
        print(__doc__.strip())
        sys.exit(2)
