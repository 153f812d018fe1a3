# fpmd — plain GNU Makefile.  `make` builds build/fpmd and build/fpmctl.
# `make test` installs what the tests need (scripts/deps.sh) and runs every test.
# `make test SAN=1` (or `make asan`) builds with -fsanitize=address,undefined into build-san/.

# Recursive makes (test, php-so) print no "Entering directory": the test output ends on
# pytest's summary line.
MAKEFLAGS += --no-print-directory

CC      ?= cc
PREFIX  ?= /usr/local
SAN     ?=
PYTHON  ?= /usr/bin/python3
# Where the pid file and the default error log go without -p (php-fpm: localstatedir).
STATEDIR ?= $(if $(filter /usr,$(PREFIX)),/var,$(PREFIX)/var)

ifeq ($(SAN),1)
BUILD   ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# src/master/sanitizer.c: libphp's extensions load without RTLD_DEEPBIND under ASan.
SAN_FPMD_LDFLAGS = -Wl,--export-dynamic-symbol=dlopen
else
BUILD   ?= build
SANFLAGS =
endif

# libunwind-ptrace (Debian libunwind-dev) for slowlog stack traces.
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
UNWIND_CFLAGS = $(if $(MULTIARCH),-I/usr/include/$(MULTIARCH))
UNWIND_LIBS   = -lunwind-ptrace -lunwind-generic -lunwind

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -D_GNU_SOURCE -Iinclude -Isrc $(UNWIND_CFLAGS) $(SANFLAGS) \
           -DFPMD_DEFAULT_PREFIX='"$(PREFIX)"' -DFPMD_DEFAULT_STATEDIR='"$(STATEDIR)"' \
           -DFPMD_PHP_LIBDIR='"$(PREFIX)/lib/fpmd"'
LDFLAGS += $(SANFLAGS)

# Pure modules (no I/O): linked into both binaries and the unit tests.
PURE_SRC   := $(wildcard src/buf/*.c src/fcgi/*.c src/conf/*.c src/status/*.c src/cgi/*.c src/pathinfo/*.c src/pm/*.c) src/log/access_format.c
# The daemon's process layer.
FPMD_SRC   := $(filter-out src/log/access_format.c,$(wildcard src/log/*.c)) $(wildcard src/ev/*.c src/net/*.c src/shm/*.c src/pool/*.c src/proc/*.c src/master/*.c \
                         src/worker/*.c src/handlers/*.c)
FPMCTL_SRC := $(wildcard src/ctl/*.c)

PURE_OBJ   := $(PURE_SRC:%.c=$(BUILD)/%.o)
FPMD_OBJ   := $(FPMD_SRC:%.c=$(BUILD)/%.o)
FPMCTL_OBJ := $(FPMCTL_SRC:%.c=$(BUILD)/%.o)

# fpmd-php.so: the PHP SAPI, built only when libphp8.2-embed and php8.2-dev are
# installed (scripts/deps.sh build installs them); fpmd itself never links PHP.
# `php-so` runs a second make once the packages are in, so a fresh machine's
# first `make` builds it too (this make read the Makefile before deps.sh ran).
PHP_CONFIG ?= $(shell command -v php-config8.2 2>/dev/null)
PHP_INCLUDES := $(if $(PHP_CONFIG),$(patsubst -I%,-isystem %,$(shell $(PHP_CONFIG) --includes)))
PHP_LIB    := $(firstword $(wildcard /usr/lib/libphp8.2.so /usr/lib/$(MULTIARCH)/libphp8.2.so))
PHP_SRC    := $(wildcard src/php/*.c) src/pathinfo/pathinfo.c
PHP_OBJ    := $(PHP_SRC:%.c=$(BUILD)/pic/%.o)

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: check-layers test-deb all php-so test-php-fpm-suite clean test unit integration chaos chaos-short asan run fuzz fuzz-afl fuzz-m32 fuzz-seeds install uninstall deps deps-run deps-test deps-fuzz lint bench deps-bench image deps-image rolling
all: $(BUILD)/fpmd $(BUILD)/fpmctl php-so

php-so: | deps
	@if command -v php-config8.2 >/dev/null 2>&1 && \
	    { [ -e /usr/lib/libphp8.2.so ] || [ -e /usr/lib/$(MULTIARCH)/libphp8.2.so ]; }; then \
		$(MAKE) --no-print-directory $(BUILD)/fpmd-php.so; \
	else \
		echo "fpmd: libphp8.2-embed or php8.2-dev is missing: php pools are not built (scripts/deps.sh build)"; \
	fi

# PREFIX and STATEDIR are compiled in (default paths, where fpmd-php.so is looked
# for): objects built for another PREFIX are rebuilt, so `make` then
# `make install PREFIX=/usr` installs binaries that look in /usr.
PATHS_STAMP := $(BUILD)/.paths-$(shell printf '%s' '$(PREFIX) $(STATEDIR)' | cksum | cut -d' ' -f1)
$(PATHS_STAMP):
	@mkdir -p $(BUILD)
	@rm -f $(BUILD)/.paths-*
	@touch $@

# PHP's headers are not -Wextra clean: -isystem keeps their warnings out of -Werror.
$(BUILD)/pic/%.o: %.c $(PATHS_STAMP) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -Wno-missing-field-initializers $(PHP_INCLUDES) -MMD -MP -c $< -o $@

$(BUILD)/fpmd-php.so: $(PHP_OBJ)
	$(CC) $(LDFLAGS) -shared -o $@ $^ $(PHP_LIB) -Wl,-rpath,$(dir $(PHP_LIB)) -Wl,-z,defs -lc

# Build dependencies come first (scripts/deps.sh: a no-op when installed).
$(BUILD)/%.o: %.c $(PATHS_STAMP) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libfpmd-pure.a: $(PURE_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BUILD)/fpmd: $(FPMD_OBJ) $(BUILD)/libfpmd-pure.a
	$(CC) $(LDFLAGS) $(SAN_FPMD_LDFLAGS) -o $@ $^ -ldl $(UNWIND_LIBS)

$(BUILD)/fpmctl: $(FPMCTL_OBJ) $(BUILD)/libfpmd-pure.a
	$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libfpmd-pure.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(BUILD)/libfpmd-pure.a $(LDFLAGS) -lcmocka

# DEPS=0: the build dependencies are someone else's job (debian/control).
DEPS ?= 1
deps-fuzz:
	@scripts/deps.sh fuzz

deps:
	@$(if $(filter 1,$(DEPS)),scripts/deps.sh build,:)

deps-run:
	@scripts/deps.sh run

deps-test:
	@scripts/deps.sh test

deps-bench:
	@scripts/deps.sh bench

# fpmd against php-fpm, fcgiwrap, a libfcgi app and a bare prefork server (bench/README.md).
bench: deps-bench all
	bench/run.sh $(BUILD)

deps-image:
	@scripts/deps.sh image

# The container image, from Debian's packages only (mmdebstrap → podman import → podman build;
# docs/kubernetes.md).  IMAGE=localhost/fpmd:latest; cached by content (sources, package list).
image: deps-image
	scripts/image.sh

# A rolling update behind nginx under load, 20 times, fpmd next to php-fpm8.2 (bench/rolling.py).
rolling: deps-test all
	$(PYTHON) bench/rolling.py --build $(abspath $(BUILD)) --cycles $${CYCLES:-20}

unit: $(UNIT_BIN)
	@scripts/run-unit.sh $(UNIT_BIN)

integration: all
	FPMD_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q tests/integration

# Fault injection (tests/chaos, issue #12): each test prints a `CHAOS <n>:` line with its
# figures, also appended to $(BUILD)/chaos-results.txt.  `make test` runs the short round
# (CHAOS_SCALE=0, under 90 s); `make chaos` the full durations (20 s kill loop, 5 min soak).
chaos-short: all
	FPMD_BUILD=$(abspath $(BUILD)) CHAOS_SCALE=$${CHAOS_SCALE:-0} $(PYTHON) -m pytest -q -s tests/chaos

chaos: all
	$(MAKE) chaos-short CHAOS_SCALE=1

# The chaos round runs before the integration suite, so pytest's summary of
# the integration suite stays the last line.
test: deps-test
	$(MAKE) check-layers
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) chaos-short
	$(MAKE) integration

asan:
	$(MAKE) test SAN=1

# No include from outside src/master/ into it; pure modules include only pure ones.
check-layers:
	@scripts/check-layers.sh

# php-src's own FPM tests against fpmd (fetches Debian's php8.2 source package; ~2 min).
# Not part of `make test`.  As root; SUITE_USER=nobody runs them unprivileged.
SUITE_DIR ?= /tmp/fpmd-php-fpm-suite
test-php-fpm-suite: deps-test all
	scripts/php-fpm-suite.sh $(abspath $(BUILD))/fpmd $(SUITE_DIR)

# Only what the demo runs: the test world (web servers, chromium, ...) comes with `make test`.
run: deps-run all
	@scripts/run-demo.sh $(BUILD)

CPPCHECK = cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	   --suppress=missingIncludeSystem -Iinclude -Isrc
lint:
	$(CPPCHECK) -isrc/php src
	@# fpmd-php.so against PHP's own headers (one configuration: they have hundreds)
	@if [ -n "$(PHP_CONFIG)" ]; then \
		echo "$(CPPCHECK) --max-configs=1 ... src/php"; \
		$(CPPCHECK) --max-configs=1 -D__linux__ -D__x86_64__ $$($(PHP_CONFIG) --includes) src/php; \
	fi

# libFuzzer harnesses, built with clang (Debian: clang, libclang-rt-14-dev).
# fuzz_conn drives the worker's own connection code (it includes worker.c) and
# interposes the connection's system calls and the clock with ld's --wrap.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/%.c=%)
FUZZ_BIN := $(FUZZ_NAMES:%=build-fuzz/%)
FUZZ_TIME ?= 60
FUZZ_CFLAGS := -std=c11 -g -O1 -D_GNU_SOURCE -Iinclude -Isrc
FUZZ_SAN := -fsanitize=fuzzer,address,undefined
FUZZ_CONN_SRC := src/worker/conn.c src/worker/procmem.c src/worker/request.c src/handlers/ping.c src/shm/scoreboard.c src/net/listen.c src/net/fd_pass.c
FUZZ_LINK_fuzz_conn := $(FUZZ_CONN_SRC) \
	-Wl,--wrap=read,--wrap=recv,--wrap=write,--wrap=writev,--wrap=close,--wrap=shutdown,--wrap=poll,--wrap=ppoll,--wrap=clock_gettime
$(foreach d,build-fuzz build-fuzz/afl build-fuzz/m32,$(d)/fuzz_conn): src/worker/worker.c $(FUZZ_CONN_SRC) \
	$(wildcard src/worker/*.h src/handlers/*.h src/shm/*.h src/master/*.h)
build-fuzz/%: tests/fuzz/%.c $(PURE_SRC)
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) $(FUZZ_SAN) -o $@ $< $(PURE_SRC) $(FUZZ_LINK_$*)
fuzz: deps-test $(FUZZ_BIN)
	@tests/fuzz/run.sh libfuzzer $(FUZZ_TIME) $(FUZZ_BIN)

# The same harnesses under AFL++ (afl-clang-fast links its libFuzzer-compatible
# driver for -fsanitize=fuzzer), same corpora and dictionaries.
build-fuzz/afl/%: tests/fuzz/%.c $(PURE_SRC)
	@mkdir -p build-fuzz/afl
	AFL_QUIET=1 afl-clang-fast $(FUZZ_CFLAGS) $(FUZZ_SAN) -o $@ $< $(PURE_SRC) $(FUZZ_LINK_$*)
fuzz-afl: deps-fuzz $(FUZZ_NAMES:%=build-fuzz/afl/%)
	@tests/fuzz/run.sh afl $(FUZZ_TIME) $(FUZZ_NAMES:%=build-fuzz/afl/%)

# i386 (-m32): 32-bit size_t and long, where a length sum or a cast can wrap
# that cannot on x86-64.  Run under qemu-i386 when the kernel cannot run i386;
# there ASan's i386 allocator fails its own CHECK after a while (qemu-user's
# mmap), so UBSan only unless FUZZ_SAN_M32 says otherwise.
FUZZ_SAN_M32 ?= -fsanitize=fuzzer,undefined
build-fuzz/m32/%: tests/fuzz/%.c $(PURE_SRC)
	@mkdir -p build-fuzz/m32
	clang -m32 $(FUZZ_CFLAGS) $(FUZZ_SAN_M32) -o $@ $< $(PURE_SRC) $(FUZZ_LINK_$*)
fuzz-m32: deps-fuzz $(FUZZ_NAMES:%=build-fuzz/m32/%)
	@tests/fuzz/run.sh m32 $(FUZZ_TIME) $(FUZZ_NAMES:%=build-fuzz/m32/%)

# Seeds captured from live nginx and php-fpm (tests/fuzz/capture_seeds.py).
fuzz-seeds: deps-test
	$(PYTHON) tests/fuzz/capture_seeds.py

# PREFIX=/usr (a distribution package): the configuration in /etc, units in /lib/systemd/system.
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SYSTEMDUNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
DOCDIR ?= $(PREFIX)/share/doc/fpmd

# PREFIX is compiled in, so `make install PREFIX=X` builds for X in a directory of its own
# (build-install-X) and build/ keeps the paths it was built with.  It installs from
# $(BUILD) itself when that was built for X (`make PREFIX=X && make install PREFIX=X`)
# or is named on the command line (debian/rules: BUILD=build-deb).
INSTALL_BUILD ?= $(if $(or $(filter command line,$(origin BUILD)),$(wildcard $(PATHS_STAMP))),$(BUILD),build-install$(subst /,-,$(PREFIX)))

# What `make install` puts where; `make uninstall` removes the same list.
INSTALLED = $(PREFIX)/sbin/fpmd $(PREFIX)/bin/fpmctl $(PREFIX)/lib/fpmd/fpmd-php.so \
	$(addprefix $(PREFIX)/include/fpmd/,$(notdir $(wildcard include/fpmd/*.h))) \
	$(PREFIX)/share/pkgconfig/fpmd-module.pc $(PREFIX)/share/man/man8/fpmd.8 \
	$(PREFIX)/share/man/man5/fpmd.conf.5 $(PREFIX)/share/man/man1/fpmctl.1 \
	$(DOCDIR)/examples/fpmd.conf $(DOCDIR)/examples/fpmd-demo.conf \
	$(SYSTEMDUNITDIR)/fpmd.service $(SYSTEMDUNITDIR)/fpmd.socket

# The installed files name the installed paths: binaries, configuration directory.
INSTALL_PATHS = sed -e 's|/usr/sbin/fpmd|$(PREFIX)/sbin/fpmd|g' -e 's|/usr/bin/fpmctl|$(PREFIX)/bin/fpmctl|g' \
	-e 's|/etc/fpmd/|$(SYSCONFDIR)/fpmd/|g'

# An existing $(SYSCONFDIR)/fpmd/fpmd.conf is never overwritten.  The units name
# the installed binaries; the demo configuration goes to $(DOCDIR)/examples.
install:
	@$(MAKE) BUILD=$(INSTALL_BUILD) all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include/fpmd \
	    $(DESTDIR)$(SYSCONFDIR)/fpmd/pool.d $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSTEMDUNITDIR)
	$(if $(filter /usr,$(PREFIX)),,install -d $(DESTDIR)$(STATEDIR)/log $(DESTDIR)$(STATEDIR)/run)
	install -m 0755 $(INSTALL_BUILD)/fpmd $(DESTDIR)$(PREFIX)/sbin/fpmd
	install -m 0755 $(INSTALL_BUILD)/fpmctl $(DESTDIR)$(PREFIX)/bin/fpmctl
	install -m 0644 include/fpmd/*.h $(DESTDIR)$(PREFIX)/include/fpmd/
	if [ -f $(INSTALL_BUILD)/fpmd-php.so ]; then install -d $(DESTDIR)$(PREFIX)/lib/fpmd && \
	    install -m 0644 $(INSTALL_BUILD)/fpmd-php.so $(DESTDIR)$(PREFIX)/lib/fpmd/; fi
	install -d $(DESTDIR)$(PREFIX)/share/pkgconfig
	printf 'prefix=%s\nincludedir=$${prefix}/include\n\nName: fpmd-module\nDescription: build an fpmd app.type = module shared object\nVersion: 0.1.0\nCflags: -I$${includedir} -fPIC\nLibs: -shared\n' \
	    '$(PREFIX)' > $(DESTDIR)$(PREFIX)/share/pkgconfig/fpmd-module.pc
	install -d $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 docs/man/fpmd.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 0644 docs/man/fpmd.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 0644 docs/man/fpmctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	$(INSTALL_PATHS) contrib/fpmd.conf > $(DESTDIR)$(DOCDIR)/examples/fpmd.conf
	chmod 0644 $(DESTDIR)$(DOCDIR)/examples/fpmd.conf
	[ -e $(DESTDIR)$(SYSCONFDIR)/fpmd/fpmd.conf ] || \
	    install -m 0644 $(DESTDIR)$(DOCDIR)/examples/fpmd.conf $(DESTDIR)$(SYSCONFDIR)/fpmd/fpmd.conf
	install -m 0644 examples/fpmd.conf $(DESTDIR)$(DOCDIR)/examples/fpmd-demo.conf
	for u in fpmd.service fpmd.socket; do \
	    $(INSTALL_PATHS) contrib/$$u > $(DESTDIR)$(SYSTEMDUNITDIR)/$$u && \
	    chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; done

# Everything `make install` put there (same PREFIX, DESTDIR).  The configuration goes
# only when it is the one installed, unedited; pool.d only when empty.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	if [ -f $(DESTDIR)$(SYSCONFDIR)/fpmd/fpmd.conf ] && \
	    $(INSTALL_PATHS) contrib/fpmd.conf | cmp -s - $(DESTDIR)$(SYSCONFDIR)/fpmd/fpmd.conf; then \
	    rm -f $(DESTDIR)$(SYSCONFDIR)/fpmd/fpmd.conf; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/fpmd/fpmd.conf ]; then \
	    echo "fpmd: $(DESTDIR)$(SYSCONFDIR)/fpmd/fpmd.conf was edited: kept"; fi
	-rmdir $(DESTDIR)$(SYSCONFDIR)/fpmd/pool.d $(DESTDIR)$(SYSCONFDIR)/fpmd \
	    $(DESTDIR)$(PREFIX)/lib/fpmd $(DESTDIR)$(PREFIX)/include/fpmd \
	    $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null

clean:
	rm -rf build build-san build-fuzz build-deb build-install-*

# The Debian package (debian/), built with dpkg-buildpackage in a copy of the
# tree and checked (tests/integration/test_packaging.py -k deb; about a minute).
test-deb: deps-test all
	FPMD_BUILD=$(CURDIR)/$(BUILD) $(PYTHON) -m pytest -q tests/integration/test_packaging.py -k deb

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
