# Postern: one non-recursive Makefile. Everything builds into $(BUILD) (build/ by default,
# build-asan/ for `make asan`). Daemon directories hold their own sources; lib/ is linked
# into every program as libpostern.a.

BUILD    ?= build
CC       ?= cc
SAN      ?=
PYTHON   ?= /usr/bin/python3

MARIADB_CONFIG := $(shell command -v mariadb_config 2>/dev/null || command -v mysql_config 2>/dev/null)
MARIADB_CFLAGS := $(if $(MARIADB_CONFIG),$(shell $(MARIADB_CONFIG) --cflags))
MARIADB_LIBS   := $(if $(MARIADB_CONFIG),$(shell $(MARIADB_CONFIG) --libs),-lmariadb)

WARN := -Wall -Wextra -Werror -Wformat=2 -Wformat-security -Wshadow -Wpointer-arith \
	-Wcast-qual -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wwrite-strings \
	-Wimplicit-fallthrough -Wundef -Wold-style-definition -Wno-unused-parameter

ifeq ($(SAN),1)
OPT    := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDSAN  := -fsanitize=address,undefined
else
OPT    := -O2 -g -D_FORTIFY_SOURCE=2
LDSAN  :=
endif

CFLAGS  ?=
CPPFLAGS := -D_GNU_SOURCE -Ilib $(MARIADB_CFLAGS)
ALL_CFLAGS := -std=gnu11 $(OPT) $(WARN) -fstack-protector-strong -fstack-clash-protection \
	-fPIE -MMD -MP $(CFLAGS)
ALL_LDFLAGS := -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack -Wl,--as-needed $(LDSAN) $(LDFLAGS)
# -lresolv (res_nquery for lib/mxlookup.c) is part of glibc: no new dependency.
LIBS := -lssl -lcrypto $(MARIADB_LIBS) -lcrypt -lcap -lresolv -pthread

.PHONY: all asan check unit e2e e2e-asan deps demo clean tidy
all:

# ---- the shared library ------------------------------------------------------------------
LIB_SRC := $(wildcard lib/*.c)
LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC))
LIBPOSTERN := $(BUILD)/libpostern.a

$(LIBPOSTERN): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

# ---- programs: $(call prog,source-dir,binary-name) ---------------------------------------
PROGS :=
define prog
$(BUILD)/$(2): $$(patsubst %.c,$(BUILD)/%.o,$$(wildcard $(1)/*.c)) $$(LIBPOSTERN)
	$$(CC) $$(ALL_CFLAGS) $$(ALL_LDFLAGS) -o $$@ $$^ $$(LIBS)
PROGS += $(BUILD)/$(2)
endef

$(eval $(call prog,master,postern-master))
$(eval $(call prog,admin,postern))
$(eval $(call prog,admin/sendmail,postern-sendmail))
$(eval $(call prog,authd,postern-authd))
$(eval $(call prog,queue,postern-queue))
$(eval $(call prog,anvil,postern-anvil))
$(eval $(call prog,smtpd,postern-smtpd))
$(eval $(call prog,virtual,postern-virtual))
$(eval $(call prog,smtp,postern-smtp))
$(eval $(call prog,local,postern-local))
$(eval $(call prog,qmgr,postern-qmgr))
$(eval $(call prog,imapd/login,postern-imap-login))
$(eval $(call prog,imapd/session,postern-imap))
$(eval $(call prog,pop3d/login,postern-pop3-login))
$(eval $(call prog,pop3d/session,postern-pop3))
$(eval $(call prog,tests/testd,postern-testd))

# ---- unit tests: every tests/unit/test_*.c is one program ---------------------------------
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst %.c,$(BUILD)/%,$(UNIT_SRC))

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LIBPOSTERN)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# Small C tools the end-to-end tests run (tests/tools/NAME.c -> $(BUILD)/tests/tools/NAME).
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(patsubst %.c,$(BUILD)/%,$(TOOL_SRC))

$(BUILD)/tests/tools/%: $(BUILD)/tests/tools/%.o $(LIBPOSTERN)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

all: $(PROGS) $(UNIT_BIN) $(TOOL_BIN)

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do \
		if ./$$t >$$t.log 2>&1; then echo "PASS $$t"; \
		else echo "FAIL $$t"; cat $$t.log; fail=1; fi; \
	done; exit $$fail

e2e: all
	$(PYTHON) -m pytest -q tests/e2e

# The same end-to-end suite against the sanitizer build. Reports land in build-asan/asan-logs
# (those of chrooted daemons and sessions by way of the sandbox's master-start.err, see
# tests/sandbox); any report fails the run.
e2e-asan:
	$(MAKE) BUILD=build-asan SAN=1 all
	rm -rf build-asan/asan-logs && mkdir -p build-asan/asan-logs
	ASAN_OPTIONS=log_path=$(CURDIR)/build-asan/asan-logs/asan:detect_leaks=0 \
	UBSAN_OPTIONS=log_path=$(CURDIR)/build-asan/asan-logs/ubsan:print_stacktrace=1 \
	POSTERN_SANDBOX_SANITIZER_DIR=$(CURDIR)/build-asan/asan-logs \
	POSTERN_BUILD=$(CURDIR)/build-asan $(PYTHON) -m pytest -q tests/e2e
	@if ls build-asan/asan-logs/* >/dev/null 2>&1; then cat build-asan/asan-logs/*; exit 1; fi

deps:
	./scripts/deps.sh

# check: the whole suite on a fresh machine. Sub-makes only sequence the steps, so that
# mariadb_config exists before the flags are computed; the build itself stays one graph.
check:
	./scripts/deps.sh
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) asan
	$(MAKE) e2e
	$(MAKE) e2e-asan
	$(MAKE) fuzz-run FUZZ_TIME=20
	$(MAKE) package-test

asan:
	$(MAKE) BUILD=build-asan SAN=1 all
	$(MAKE) BUILD=build-asan SAN=1 unit

demo:
	./scripts/deps.sh
	$(MAKE) all
	./scripts/demo.sh

tidy:
	clang-tidy $(LIB_SRC) -- $(CPPFLAGS) -std=gnu11

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' -type f 2>/dev/null)

# ---- benchmarks (issue 3: authd) ---------------------------------------------------------
# bench/authd.c is a load generator for authd (build/bench/authd-bench); `make bench-authd`
# runs bench/authd.sh: a sandbox, cached and uncached rcpt lookups, a table of the results.
AUTHD_BENCH := $(BUILD)/bench/authd-bench

$(AUTHD_BENCH): $(BUILD)/bench/authd.o $(LIBPOSTERN)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

all: $(AUTHD_BENCH)

.PHONY: bench-authd
bench-authd: $(PROGS) $(AUTHD_BENCH)
	POSTERN_BUILD=$(CURDIR)/$(BUILD) ./bench/authd.sh

# ---- SMTP acceptance benchmark (issue 4) --------------------------------------------------
# Postern against Debian's Postfix, same database, both fsyncing; see bench/smtp-accept.sh.
.PHONY: bench-smtp
bench-smtp: all
	POSTERN_BUILD=$(CURDIR)/$(BUILD) ./bench/smtp-accept.sh

# ---- end-to-end delivery benchmark (issue 5) ----------------------------------------------
# smtp-source in, Maildir new/ out: Postern against Postfix's virtual(8), same MariaDB; see
# bench/deliver.sh (env MESSAGES, SIZE, SESSIONS, TIMEOUT, ONLY=postfix|postern).
.PHONY: bench-deliver
bench-deliver: all
	POSTERN_BUILD=$(CURDIR)/$(BUILD) ./bench/deliver.sh

# ---- IMAP benchmark (issue 6) ------------------------------------------------------------
# Postern against Debian's Dovecot, same MariaDB, same Maildirs; bench/imap-load.c is the
# client of both (build/bench/imap-load); see bench/imap.sh (env SIZES, LOGIN_CONNS, ONLY...).
IMAP_LOAD := $(BUILD)/bench/imap-load

$(IMAP_LOAD): $(BUILD)/bench/imap-load.o $(BUILD)/bench/loadgen.o $(LIBPOSTERN)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

.PHONY: bench-imap
bench-imap: all $(IMAP_LOAD)
	POSTERN_BUILD=$(CURDIR)/$(BUILD) ./bench/imap.sh

# ---- POP3 benchmark (issue 7) ------------------------------------------------------------
# Postern against Debian's Dovecot pop3d, same MariaDB, same Maildirs (bench/lib-dovecot.sh);
# bench/pop3-load.c is the client of both; see bench/pop3.sh (env LOGIN_CONNS, RETR_CONNS...).
POP3_LOAD := $(BUILD)/bench/pop3-load

$(POP3_LOAD): $(BUILD)/bench/pop3-load.o $(BUILD)/bench/loadgen.o $(LIBPOSTERN)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

.PHONY: bench-pop3
bench-pop3: all $(POP3_LOAD)
	POSTERN_BUILD=$(CURDIR)/$(BUILD) ./bench/pop3.sh

# ---- fuzzing (clang + libFuzzer) ---------------------------------------------------------
# One libFuzzer target per untrusted-input parser. `make fuzz` builds them all, `make fuzz-NAME`
# one; `make fuzz-run` runs each for $(FUZZ_TIME) s on its seeds in tests/fuzz/corpus_NAME/
# (read only: new inputs go to build/fuzz/corpus_NAME/, crash files to build/fuzz/NAME-*).
# UBSan findings abort, so they count as findings.
FUZZ_CC   ?= clang
FUZZ_TIME ?= 30
FUZZ_BASE := lib/util.c lib/buf.c lib/log.c

.PHONY: fuzz fuzz-run

# $(call fuzzer,NAME,SOURCES,EXTRA-LIBS)
define fuzzer
.PHONY: fuzz-$(1) fuzz-$(1)-run
fuzz: build/fuzz/fuzz_$(1)
fuzz-$(1): build/fuzz/fuzz_$(1)

build/fuzz/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(2) $(FUZZ_BASE) $$(wildcard lib/*.h)
	@mkdir -p $$(@D)
	$$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-D_GNU_SOURCE -Ilib tests/fuzz/fuzz_$(1).c $(2) $(FUZZ_BASE) $(3) -o $$@

fuzz-run: fuzz-$(1)-run
fuzz-$(1)-run: build/fuzz/fuzz_$(1)
	@mkdir -p build/fuzz/corpus_$(1)
	build/fuzz/fuzz_$(1) -max_total_time=$$(FUZZ_TIME) -artifact_prefix=build/fuzz/$(1)- \
		build/fuzz/corpus_$(1) tests/fuzz/corpus_$(1)
endef

$(eval $(call fuzzer,ipc,lib/ipc.c lib/ipc_sock.c))
$(eval $(call fuzzer,queuefile,lib/queuefile.c lib/queuefile_read.c))
$(eval $(call fuzzer,smtpcmd,lib/smtpcmd.c))
$(eval $(call fuzzer,imapcmd,lib/imapcmd.c lib/imapcmd_args.c lib/seqset.c))
$(eval $(call fuzzer,mxlookup,lib/mxlookup.c,-lresolv))
$(eval $(call fuzzer,mime,lib/mime.c lib/mime_imap.c lib/mime_section.c lib/mime_decode.c lib/base64.c))

# ---- installation and packages (issue 8) -------------------------------------------------
# `make install DESTDIR=... [PREFIX=/usr SYSCONFDIR=/etc UNITDIR=...]` is the one install
# recipe: debian/rules and packaging/postern.spec both run it. Users, the spool layout, file
# owners that need those users and the certificate are the packages' maintainer scripts'
# business (packaging/debian/postinst, the spec's %pre/%post). `make deb` and `make rpm` put
# their packages into build/pkg/ without rebuilding anything that build/ already holds;
# `make package-test` installs the .deb into a Debian 12 chroot (tests/package/).
PREFIX      ?= /usr
SYSCONFDIR  ?= /etc
UNITDIR     ?= /usr/lib/systemd/system
VERSION     ?= $(shell sed -n 's/^\#define POSTERN_VERSION "\(.*\)"/\1/p' lib/version.h)
PKG_RELEASE ?= 1
PKG_DIR     := build/pkg
LINTIAN     ?= yes

INSTALL_SBIN    := postern-master postern
INSTALL_DAEMONS := postern-authd postern-queue postern-anvil postern-smtpd postern-qmgr \
	postern-virtual postern-local postern-smtp postern-imap-login postern-imap \
	postern-pop3-login postern-pop3
SENDMAIL_BIN    := $(BUILD)/postern-sendmail
INSTALL_MAN     := $(filter-out docs/man/postern-testd.8,$(wildcard docs/man/*.[158]))

.PHONY: programs install deb rpm package-test
programs: $(addprefix $(BUILD)/,$(INSTALL_SBIN) $(INSTALL_DAEMONS)) $(SENDMAIL_BIN)

install: programs
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/lib/postern \
		$(DESTDIR)$(PREFIX)/share/postern $(DESTDIR)$(SYSCONFDIR)/postern \
		$(DESTDIR)$(SYSCONFDIR)/logrotate.d $(DESTDIR)$(UNITDIR)
	install -m 0755 $(addprefix $(BUILD)/,$(INSTALL_SBIN)) $(DESTDIR)$(PREFIX)/sbin/
	install -m 0755 $(addprefix $(BUILD)/,$(INSTALL_DAEMONS)) $(DESTDIR)$(PREFIX)/lib/postern/
	@# setgid postern-drop: set by the packages (dpkg-statoverride, %attr) once the group exists
	install -m 0755 $(SENDMAIL_BIN) $(DESTDIR)$(PREFIX)/sbin/sendmail.postern
	for page in $(INSTALL_MAN); do \
		sec=$${page##*.}; install -d $(DESTDIR)$(PREFIX)/share/man/man$$sec && \
		install -m 0644 $$page $(DESTDIR)$(PREFIX)/share/man/man$$sec/ || exit 1; \
	done
	@# sendmail.postern's page is postern-sendmail(1): a .so stub under the program's name
	printf '.so man1/postern-sendmail.1\n' > $(DESTDIR)$(PREFIX)/share/man/man1/sendmail.postern.1
	install -m 0644 packaging/schema.sql $(DESTDIR)$(PREFIX)/share/postern/schema.sql
	install -m 0644 packaging/postern.conf $(DESTDIR)$(SYSCONFDIR)/postern/postern.conf
	install -m 0600 packaging/sql.conf $(DESTDIR)$(SYSCONFDIR)/postern/sql.conf
	install -m 0644 packaging/postern.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/postern
	install -m 0644 packaging/postern.service $(DESTDIR)$(UNITDIR)/postern.service

# Packages are staged in PKG_WORK, outside the tree (dpkg-buildpackage writes its results
# into the parent of the staging directory); only the results go to build/pkg/.
PKG_WORK ?= /tmp/postern-pkg-$(shell echo '$(CURDIR)' | md5sum | cut -c1-8)

# `make deb`: a staging directory holding only debian/ (changelog version from
# lib/version.h and PKG_RELEASE); debian/rules builds and installs through this tree
# (POSTERN_SRCDIR), so nothing is rebuilt that build/ already holds.
DEB_STAGE  = $(PKG_WORK)/deb/postern-$(VERSION)
DEB_NAME   = postern_$(VERSION)-$(PKG_RELEASE)_$(shell dpkg --print-architecture 2>/dev/null).deb

deb: programs
	rm -rf $(PKG_WORK)/deb && mkdir -p $(DEB_STAGE) $(PKG_DIR)
	cp -r packaging/debian $(DEB_STAGE)/debian
	sed -i '1s/^postern ([^)]*)/postern ($(VERSION)-$(PKG_RELEASE))/' $(DEB_STAGE)/debian/changelog
	cd $(DEB_STAGE) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL POSTERN_SRCDIR=$(CURDIR) \
		POSTERN_BUILD=$(BUILD) dpkg-buildpackage -b -us -uc
	mv $(PKG_WORK)/deb/*.deb $(PKG_WORK)/deb/*.buildinfo $(PKG_WORK)/deb/*.changes $(PKG_DIR)/
	rm -rf $(PKG_WORK)/deb
	if [ "$(LINTIAN)" = yes ]; then lintian --fail-on error $(PKG_DIR)/$(DEB_NAME); fi
	@echo "built $(PKG_DIR)/$(DEB_NAME)"

# `make rpm`: rpmbuild from Debian's rpm package. --nodeps: the spec's BuildRequires name
# Fedora/RHEL packages (openssl-devel, mariadb-connector-c-devel...) that Debian's rpm
# database never holds; the build itself is this tree's (postern_srcdir), as for deb.
RPM_TOP = $(PKG_WORK)/rpm

rpm: programs
	rm -rf $(RPM_TOP) && mkdir -p $(RPM_TOP) $(PKG_DIR)
	rpmbuild -bb --nodeps --define "_topdir $(RPM_TOP)" --define "postern_srcdir $(CURDIR)" \
		--define "postern_build $(BUILD)" --define "postern_version $(VERSION)" \
		--define "postern_release $(PKG_RELEASE)" --define "debug_package %{nil}" \
		packaging/postern.spec
	mv $(RPM_TOP)/RPMS/*/postern-$(VERSION)-$(PKG_RELEASE).*.rpm $(PKG_DIR)/
	rm -rf $(RPM_TOP)
	@ls $(PKG_DIR)/postern-$(VERSION)-$(PKG_RELEASE).*.rpm

package-test: all
	$(MAKE) deb rpm
	$(PYTHON) -m pytest -q tests/package
