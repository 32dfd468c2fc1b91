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
$(eval $(call prog,authd,postern-authd))
$(eval $(call prog,queue,postern-queue))
$(eval $(call prog,anvil,postern-anvil))
$(eval $(call prog,smtpd,postern-smtpd))
$(eval $(call prog,virtual,postern-virtual))
$(eval $(call prog,smtp,postern-smtp))
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

# The same end-to-end suite against the sanitizer build. Reports of processes that are not
# chrooted land in build-asan/asan-logs; any report fails the run.
e2e-asan:
	$(MAKE) BUILD=build-asan SAN=1 all
	rm -rf build-asan/asan-logs && mkdir -p build-asan/asan-logs
	ASAN_OPTIONS=log_path=$(CURDIR)/build-asan/asan-logs/asan:detect_leaks=0 \
	UBSAN_OPTIONS=log_path=$(CURDIR)/build-asan/asan-logs/ubsan:print_stacktrace=1 \
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

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- fuzzing (clang + libFuzzer) ---------------------------------------------------------
# `make fuzz` builds the IPC decoder fuzzer; `make fuzz-run` runs it for 30 s on the seed
# corpus tests/fuzz/corpus_ipc/ (read only: new inputs go to build/fuzz/corpus_ipc/, crash
# files to build/fuzz/). UBSan findings abort, so they count as findings.
FUZZ_CC  ?= clang
FUZZ_TIME ?= 30
FUZZ_SRC := tests/fuzz/fuzz_ipc.c lib/ipc.c lib/ipc_sock.c lib/util.c lib/buf.c lib/log.c

.PHONY: fuzz fuzz-run
fuzz: build/fuzz/fuzz_ipc

build/fuzz/fuzz_ipc: $(FUZZ_SRC) $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-D_GNU_SOURCE -Ilib $(FUZZ_SRC) -o $@

fuzz-run: build/fuzz/fuzz_ipc
	@mkdir -p build/fuzz/corpus_ipc
	build/fuzz/fuzz_ipc -max_total_time=$(FUZZ_TIME) -artifact_prefix=build/fuzz/ \
		build/fuzz/corpus_ipc tests/fuzz/corpus_ipc

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

# ---- fuzzing the queue-file reader (lib/queuefile*.c) -------------------------------------
# `make fuzz-queuefile` builds it; `make fuzz-run` also runs it for $(FUZZ_TIME) s on the seeds
# in tests/fuzz/corpus_queuefile/ (read only; new inputs go to build/fuzz/corpus_queuefile/,
# crash files to build/fuzz/queuefile-*). `test_queuefile --seeds DIR` rewrites the seeds.
FUZZ_QF_SRC := tests/fuzz/fuzz_queuefile.c $(wildcard lib/queuefile*.c) lib/util.c lib/buf.c \
	lib/log.c

.PHONY: fuzz-queuefile fuzz-queuefile-run
fuzz: build/fuzz/fuzz_queuefile
fuzz-queuefile: build/fuzz/fuzz_queuefile

build/fuzz/fuzz_queuefile: $(FUZZ_QF_SRC) $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-D_GNU_SOURCE -Ilib $(FUZZ_QF_SRC) -o $@

fuzz-run: fuzz-queuefile-run
fuzz-queuefile-run: build/fuzz/fuzz_queuefile
	@mkdir -p build/fuzz/corpus_queuefile
	build/fuzz/fuzz_queuefile -max_total_time=$(FUZZ_TIME) -artifact_prefix=build/fuzz/queuefile- \
		build/fuzz/corpus_queuefile tests/fuzz/corpus_queuefile

# ---- fuzzing the SMTP command parser (lib/smtpcmd.c) -------------------------------------
# `make fuzz-smtpcmd` builds it; `make fuzz-run` also runs it for $(FUZZ_TIME) s on the seeds
# in tests/fuzz/corpus_smtpcmd/ (read only; new inputs go to build/fuzz/corpus_smtpcmd/,
# crash files to build/fuzz/smtpcmd-*).
FUZZ_SMTPCMD_SRC := tests/fuzz/fuzz_smtpcmd.c lib/smtpcmd.c lib/util.c lib/buf.c lib/log.c

.PHONY: fuzz-smtpcmd fuzz-smtpcmd-run
fuzz: build/fuzz/fuzz_smtpcmd
fuzz-smtpcmd: build/fuzz/fuzz_smtpcmd

build/fuzz/fuzz_smtpcmd: $(FUZZ_SMTPCMD_SRC) $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-D_GNU_SOURCE -Ilib $(FUZZ_SMTPCMD_SRC) -o $@

fuzz-run: fuzz-smtpcmd-run
fuzz-smtpcmd-run: build/fuzz/fuzz_smtpcmd
	@mkdir -p build/fuzz/corpus_smtpcmd
	build/fuzz/fuzz_smtpcmd -max_total_time=$(FUZZ_TIME) -artifact_prefix=build/fuzz/smtpcmd- \
		build/fuzz/corpus_smtpcmd tests/fuzz/corpus_smtpcmd

# ---- fuzzing the DNS answer parser (lib/mxlookup.c) ---------------------------------------
# `make fuzz-mxlookup` builds it; `make fuzz-run` also runs it for $(FUZZ_TIME) s on the seeds
# in tests/fuzz/corpus_mxlookup/ (read only; new inputs go to build/fuzz/corpus_mxlookup/,
# crash files to build/fuzz/mxlookup-*).
FUZZ_MX_SRC := tests/fuzz/fuzz_mxlookup.c lib/mxlookup.c lib/util.c lib/buf.c lib/log.c

.PHONY: fuzz-mxlookup fuzz-mxlookup-run
fuzz: build/fuzz/fuzz_mxlookup
fuzz-mxlookup: build/fuzz/fuzz_mxlookup

build/fuzz/fuzz_mxlookup: $(FUZZ_MX_SRC) $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-D_GNU_SOURCE -Ilib $(FUZZ_MX_SRC) -lresolv -o $@

fuzz-run: fuzz-mxlookup-run
fuzz-mxlookup-run: build/fuzz/fuzz_mxlookup
	@mkdir -p build/fuzz/corpus_mxlookup
	build/fuzz/fuzz_mxlookup -max_total_time=$(FUZZ_TIME) -artifact_prefix=build/fuzz/mxlookup- \
		build/fuzz/corpus_mxlookup tests/fuzz/corpus_mxlookup
