# segloss - build, run and test. See README.md; `make help` lists the targets.
#
#   make            build build/libsegloss.a, build/libsegloss.so and build/seglossd
#   make install    install seglossd, the libraries, headers, segloss.pc and seglossd(1)
#                   (PREFIX=/usr/local, DESTDIR= for staging)
#   make run        install missing Debian packages, build, start the daemon on :8080
#   make check      install missing Debian packages, build, run every test
#   make check-asan the tests again under AddressSanitizer + UndefinedBehaviorSanitizer
#   make check-tsan the tests again under ThreadSanitizer
#   make soak       8 clients x 2000 mixed requests against a real daemon
#   make bench      benchmarks (not part of check)
#   make fuzz       each libFuzzer harness for FUZZ_SECONDS (clang)
#   make format     clang-format every C file in place; make format-check fails on a difference
#   make container-check  build the container image with buildah/podman (no registry) and test it

CC       ?= cc
BUILD    ?= build
OPT      ?= -O2
PORT     ?= 8080
DATA_DIR ?= $(CURDIR)/data

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
        -Wcast-qual -Wpointer-arith -Wvla -Wdouble-promotion
# Every folder of lib/ and server/ is a layer (docs/ARCHITECTURE.md §2); an include names the
# folder it reaches into ("base/log.h", "decode/decode_internal.h"), so a crossing is visible.
LIB_DIRS := lib/common lib/decode lib/loss
SRV_DIRS := server/base server/store/backend server/store server/service server/http server/api
CPPFLAGS_ALL := -Iinclude -Ilib -Iserver -I$(BUILD)/gen -I/usr/include/postgresql -D_GNU_SOURCE
CFLAGS_ALL := -std=c11 $(OPT) -g -pthread -fno-strict-aliasing $(WARN) $(SAN) $(EXTRA_CFLAGS)
ifneq ($(SEGLOSS_FORCE_SCALAR),)
CPPFLAGS_ALL += -DSEGLOSS_FORCE_SCALAR
endif
LDLIBS_ALL := -lmicrohttpd -lgnutls -lcjson -lpng -lz -lturbojpeg -lsqlite3 -lpq -lm -pthread $(SAN)

LIB_SRC  := $(sort $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
SRV_SRC  := $(sort $(foreach d,$(SRV_DIRS),$(wildcard $(d)/*.c)))
SRV_OBJ  := $(SRV_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/dashboard_assets.o
ASSETS   := $(sort $(wildcard server/dashboard/*))
# The unit tests mirror the tree (tests/unit/lib/decode/test_npy.c tests lib/decode/npy.c); their
# binaries all land in $(BUILD)/tests/.
TEST_SRC := $(sort $(shell find tests/unit -name 'test_*.c'))
TEST_BIN := $(addprefix $(BUILD)/tests/,$(notdir $(TEST_SRC:.c=)))
vpath test_%.c $(sort $(dir $(TEST_SRC)))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
REPLAY_BIN := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=$(BUILD)/tests/replay_%)
BENCH_SRC := $(sort $(wildcard tests/bench/bench_*.c))
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/tests/%)

.PHONY: all deps run check test check-asan check-tsan soak bench fuzz container-check clean help format \
        format-check install
all: $(BUILD)/libsegloss.a $(BUILD)/libsegloss.so $(BUILD)/seglossd $(BUILD)/seglossd.1

help:
	@sed -n 's/^#   //p' Makefile

deps:
	@scripts/install-deps.sh

# Each object lists the headers it includes in a .d file beside it (-MMD), so a header change
# rebuilds only what includes it; -MP keeps a deleted header from breaking the build. An edit
# of this Makefile (flags) rebuilds every object.
$(BUILD)/%.o: %.c Makefile | $(BUILD)/gen/.stamp
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

-include $(LIB_OBJ:.o=.d) $(SRV_SRC:%.c=$(BUILD)/%.d) $(BUILD)/server/main.d

$(BUILD)/gen/.stamp:
	@mkdir -p $(BUILD)/gen && touch $@

# The dashboard's files, embedded in the binary (scripts/embed_assets.sh).
$(BUILD)/gen/dashboard_assets.c: $(ASSETS) scripts/embed_assets.sh | $(BUILD)/gen/.stamp
	scripts/embed_assets.sh $@ $(ASSETS)

$(BUILD)/gen/dashboard_assets.o: $(BUILD)/gen/dashboard_assets.c server/api/assets.h
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libsegloss.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The shared library: the same sources built position-independent, a versioned soname
# (libsegloss.so.$(SO_MAJOR)); it needs only the libraries lib/ itself calls.
SO_MAJOR := 0
SO_VERSION := $(SO_MAJOR).1.0
PIC_OBJ := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
LIB_LDLIBS := -lcjson -lpng -lz -lturbojpeg -lm -pthread $(SAN)
-include $(PIC_OBJ:.o=.d)

$(BUILD)/pic/%.o: %.c Makefile | $(BUILD)/gen/.stamp
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -fPIC -MMD -MP -c $< -o $@

$(BUILD)/libsegloss.so.$(SO_VERSION): $(PIC_OBJ)
	$(CC) $(CFLAGS_ALL) -shared -Wl,-soname,libsegloss.so.$(SO_MAJOR) -Wl,-z,defs -o $@ $^ \
	    $(LIB_LDLIBS)

$(BUILD)/libsegloss.so: $(BUILD)/libsegloss.so.$(SO_VERSION)
	ln -sf libsegloss.so.$(SO_VERSION) $(BUILD)/libsegloss.so.$(SO_MAJOR)
	ln -sf libsegloss.so.$(SO_VERSION) $@

# seglossd(1): docs/seglossd.1.in with the options section written from `seglossd --help`, so
# the page lists every flag, its environment twin and its default as the binary has them.
$(BUILD)/seglossd.1: docs/seglossd.1.in scripts/gen_manpage.sh $(BUILD)/seglossd
	scripts/gen_manpage.sh $(BUILD)/seglossd docs/seglossd.1.in > $@.tmp && mv $@.tmp $@

# make install PREFIX=/usr/local DESTDIR=/staging: the daemon, both libraries, the public
# headers, segloss.pc (pkg-config) and the man page.
PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig \
	    $(DESTDIR)$(INCLUDEDIR)/segloss $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BUILD)/seglossd $(DESTDIR)$(PREFIX)/bin/seglossd
	install -m 644 $(BUILD)/libsegloss.a $(DESTDIR)$(LIBDIR)/libsegloss.a
	install -m 755 $(BUILD)/libsegloss.so.$(SO_VERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libsegloss.so.$(SO_VERSION) $(DESTDIR)$(LIBDIR)/libsegloss.so.$(SO_MAJOR)
	ln -sf libsegloss.so.$(SO_VERSION) $(DESTDIR)$(LIBDIR)/libsegloss.so
	install -m 644 include/segloss/*.h $(DESTDIR)$(INCLUDEDIR)/segloss/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e "s|@VERSION@|$$(sed -n 's/^#define SEGLOSS_VERSION \"\(.*\)\"/\1/p' include/segloss/segloss.h)|" \
	    segloss.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/segloss.pc
	install -m 644 $(BUILD)/seglossd.1 $(DESTDIR)$(MANDIR)/man1/seglossd.1

$(BUILD)/seglossd: $(BUILD)/server/main.o $(SRV_OBJ) $(BUILD)/libsegloss.a
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/test_%: test_%.c tests/testing.h $(wildcard tests/unit/*.h) $(SRV_OBJ) $(BUILD)/libsegloss.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) -Itests -Itests/unit $(CFLAGS_ALL) -o $@ $< $(SRV_OBJ) $(BUILD)/libsegloss.a $(LDLIBS_ALL)

# The fuzz harnesses, built with gcc and a driver that replays their corpus and crashers.
$(BUILD)/tests/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c $(SRV_OBJ) $(BUILD)/libsegloss.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) -Itests $(CFLAGS_ALL) -o $@ $< tests/fuzz/replay_main.c $(SRV_OBJ) $(BUILD)/libsegloss.a $(LDLIBS_ALL)

$(BUILD)/tests/bench_%: tests/bench/bench_%.c $(SRV_OBJ) $(BUILD)/libsegloss.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) -Itests $(CFLAGS_ALL) -o $@ $< $(SRV_OBJ) $(BUILD)/libsegloss.a $(LDLIBS_ALL)

test: all $(TEST_BIN) $(REPLAY_BIN)
	@BUILD=$(BUILD) tests/run_all.sh

check: deps
	@$(MAKE) --no-print-directory test

check-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" test

# gcc's TSan needs the same flags at link time; ASLR with high entropy upsets TSan's shadow
# map on some kernels, hence setarch -R around the runner.
check-tsan: deps
	@$(MAKE) --no-print-directory BUILD=build-tsan OPT=-O1 SAN="-fsanitize=thread" \
	    build-tsan/libsegloss.a build-tsan/seglossd $(TEST_BIN:$(BUILD)/%=build-tsan/%) \
	    $(REPLAY_BIN:$(BUILD)/%=build-tsan/%)
	@BUILD=build-tsan SEGLOSS_SANITIZER=thread setarch "$$(uname -m)" -R tests/run_all.sh

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p $(DATA_DIR)
	$(BUILD)/seglossd --port $(PORT) --data-dir $(DATA_DIR)

# Like check and run, the longer targets install what is missing first (clang for fuzz, ...).
bench:
	@scripts/install-deps.sh bench
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@BUILD=$(BUILD) tests/bench/run_bench.sh

FUZZ_SECONDS ?= 60
fuzz: deps
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run_fuzz.sh

# Every C file we wrote, formatted by .clang-format (clang-format 14, Debian 12's); hand-aligned
# tables sit between "clang-format off" and "clang-format on" comments.
FORMAT_SRC = include/segloss/*.h $(wildcard lib/*/*.[ch] server/*.[ch] server/*/*.[ch]) \
             $(TEST_SRC) $(wildcard tests/*.h tests/unit/*.h tests/fuzz/*.c tests/bench/*.c)

format:
	clang-format -i $(FORMAT_SRC)

format-check: deps
	@clang-format --dry-run --Werror $(FORMAT_SRC) && \
	    echo "$(words $(FORMAT_SRC)) passed, 0 failed (clang-format --dry-run over every C file)" || \
	    { echo "0 passed, 1 failed: run make format"; exit 1; }

container-check:
	@docker/build_and_check.sh

soak: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tests/e2e/soak.py

clean:
	rm -rf build build-asan build-tsan build-fuzz
