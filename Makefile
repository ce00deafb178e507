# tether — plain GNU Makefile.
#   make                      build/libtether.a, build/libtether.so, build/tether
#   make run                  tether serve on 127.0.0.1:8080 with the demo site
#   make test                 every unit and end-to-end test; last line "N passed, N failed"
#   make test SANITIZE=address,undefined   the same under sanitizers (own build dir)
#   make DEBUG=1              -O0 with assertions
#   make install PREFIX=/usr/local   headers, libraries, tether.pc, the binary
#   make certs                build/certs: test CA and certificates (scripts/mkcerts.sh)
#   make format / format-check / fuzz FUZZ_SECONDS=N / bench
#   make soak SOAK_SECONDS=600   long reliability runs (test/soak/)

VERSION := $(shell sed -n "s/^#define TT_VERSION_STRING \"\(.*\)\"/\1/p" include/tether/version.h)
CC ?= cc
PREFIX ?= /usr/local
DESTDIR ?=
SANITIZE ?=
DEBUG ?=

CCNAME := $(notdir $(firstword $(CC)))
ifneq ($(SANITIZE),)
BUILD ?= build/san-$(CCNAME)
else ifneq ($(DEBUG),)
BUILD ?= build/debug-$(CCNAME)
else ifneq ($(CCNAME),cc)
ifneq ($(CCNAME),gcc)
BUILD ?= build/$(CCNAME)
endif
endif
BUILD ?= build

WARN := -Wall -Wextra -Wshadow -Werror -Wno-unused-parameter
OPT := -O2 -DNDEBUG
ifneq ($(DEBUG)$(SANITIZE),)
OPT := -O1 -g
endif
ifneq ($(SANITIZE),)
OPT += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
SANLD := -fsanitize=$(SANITIZE)
endif
CFLAGS ?=
BASEFLAGS := -std=gnu11 -g $(OPT) $(WARN) -fPIC -fvisibility=hidden -Iinclude -Ilib \
	-DTT_VERSION='"$(VERSION)"' -D_GNU_SOURCE
ALLCFLAGS := $(BASEFLAGS) $(CFLAGS)
LDLIBS := -lssl -lcrypto -lpthread -lm
ALLLDFLAGS := $(SANLD) $(LDFLAGS)

LIB_SRC := $(sort $(shell find lib -name '*.c' 2>/dev/null))
CLI_SRC := $(sort $(shell find src -name '*.c' 2>/dev/null))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(sort $(shell find test/unit -name 'test_*.c' 2>/dev/null))
UNIT_BIN := $(UNIT_SRC:test/unit/%.c=$(BUILD)/test/%)
TESTLIB_SRC := $(sort $(wildcard test/support/*.c))
TESTLIB_OBJ := $(TESTLIB_SRC:%.c=$(BUILD)/obj/%.o)
EXAMPLE_SRC := $(sort $(wildcard examples/*.c))
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))

STATIC := $(BUILD)/libtether.a
SHARED := $(BUILD)/libtether.so
TETHER := $(BUILD)/tether

.PHONY: all run test unit e2e deps certs install uninstall format format-check fuzz bench clean examples \
	benchbin tools
.DEFAULT_GOAL := all

all: $(STATIC) $(SHARED) $(TETHER)

# Rebuild everything when the compiler or flags change.
FLAGSTAMP := $(BUILD)/.flags
$(shell mkdir -p $(BUILD) && echo '$(CC) $(ALLCFLAGS) $(ALLLDFLAGS)' | cmp -s - $(FLAGSTAMP) || \
	echo '$(CC) $(ALLCFLAGS) $(ALLLDFLAGS)' > $(FLAGSTAMP))

# Build dependencies (OpenSSL 3: scripts/builddeps.sh), checked once per build directory.
BUILDDEPS := $(BUILD)/.builddeps
$(BUILDDEPS): scripts/builddeps.sh
	@CC="$(CC)" sh scripts/builddeps.sh
	@touch $@

$(BUILD)/obj/%.o: %.c $(FLAGSTAMP) | $(BUILDDEPS)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -MMD -MP -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libtether.so.0 $(ALLLDFLAGS) -o $@ $^ $(LDLIBS)

$(TETHER): $(CLI_OBJ) $(STATIC)
	$(CC) $(ALLLDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(LDLIBS)

# Unit tests: one Criterion binary per test file; they may use internal headers (-Ilib).
$(BUILD)/test/%: test/unit/%.c $(STATIC) $(TESTLIB_OBJ) $(FLAGSTAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -DTT_SOURCE_DIR='"$(CURDIR)"' -o $@ $< $(TESTLIB_OBJ) $(STATIC) \
		$(ALLLDFLAGS) -lcriterion $(LDLIBS)

$(BUILD)/examples/%: examples/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -o $@ $< $(STATIC) $(ALLLDFLAGS) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -o $@ $< $(STATIC) $(ALLLDFLAGS) $(LDLIBS) $(BENCH_LIBS_$*)
BENCH_LIBS_clientbench := -lcurl
# bench/parser links picohttpparser (bench/peers/picohttpparser, MIT) built twice by its own rules:
# plain -O2 (symbols renamed phr_*_plain) and -O2 -msse4.2 (x86-64 only; weak in bench/parser.c).
PICO_SRC := bench/peers/picohttpparser/picohttpparser.c
PICO_OBJ := $(BUILD)/obj/bench/pico-O2.o
ifeq ($(shell uname -m),x86_64)
PICO_OBJ += $(BUILD)/obj/bench/pico-sse4.2.o
endif
$(BUILD)/obj/bench/pico-O2.o: $(PICO_SRC) $(FLAGSTAMP)
	@mkdir -p $(dir $@)
	$(CC) -O2 $(foreach f,request response headers,-Dphr_parse_$(f)=phr_parse_$(f)_plain) \
		-Dphr_decode_chunked=phr_decode_chunked_plain \
		-Dphr_decode_chunked_is_in_data=phr_decode_chunked_is_in_data_plain -c $< -o $@
$(BUILD)/obj/bench/pico-sse4.2.o: $(PICO_SRC) $(FLAGSTAMP)
	@mkdir -p $(dir $@)
	$(CC) -O2 -msse4.2 -c $< -o $@
$(BUILD)/bench/parser: $(PICO_OBJ)
BENCH_LIBS_parser := $(PICO_OBJ)

examples: $(EXAMPLE_BIN)
benchbin: $(filter-out $(BUILD)/bench/clientbench,$(BENCH_BIN))
tools: all examples benchbin

run: $(TETHER)
	$(TETHER) serve --listen 127.0.0.1:8080 --root site --status

deps:
	@CC="$(CC)" sh scripts/builddeps.sh
	@sh scripts/deps.sh

# Test certificates (scripts/mkcerts.sh): a CA, server, server2, expired, self, wronghost.
certs: build/certs/.done
build/certs/.done: scripts/mkcerts.sh
	@rm -rf build/certs
	@sh scripts/mkcerts.sh build/certs

# The test runner prints each suite and ends with exactly one line "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory tools $(UNIT_BIN) certs
	@TETHER_BIN=$(CURDIR)/$(TETHER) TETHER_BUILD=$(CURDIR)/$(BUILD) \
		python3 test/run.py --build $(BUILD) $(UNIT_BIN:$(BUILD)/test/%=%)

unit: $(UNIT_BIN) certs
	@python3 test/run.py --build $(BUILD) --unit-only $(UNIT_BIN:$(BUILD)/test/%=%)

e2e: tools certs
	@TETHER_BIN=$(CURDIR)/$(TETHER) TETHER_BUILD=$(CURDIR)/$(BUILD) \
		python3 test/run.py --build $(BUILD) --e2e-only

install: $(STATIC) $(SHARED) $(TETHER)
	install -d $(DESTDIR)$(PREFIX)/include/tether $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/bin
	install -m 644 include/tether.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/tether/*.h $(DESTDIR)$(PREFIX)/include/tether/
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/libtether.so.$(VERSION)
	ln -sf libtether.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libtether.so.0
	ln -sf libtether.so.0 $(DESTDIR)$(PREFIX)/lib/libtether.so
	install -m 755 $(TETHER) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' tether.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/tether.pc

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/tether $(DESTDIR)$(PREFIX)/include/tether.h \
		$(DESTDIR)$(PREFIX)/lib/libtether.* $(DESTDIR)$(PREFIX)/lib/pkgconfig/tether.pc \
		$(DESTDIR)$(PREFIX)/bin/tether

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

# libFuzzer targets (clang): make fuzz FUZZ_SECONDS=60
FUZZ_SECONDS ?= 30
FUZZ_BUILD := build/fuzz
FUZZ_FLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Ilib -D_GNU_SOURCE \
	-DTT_VERSION='"$(VERSION)"'
fuzz:
	@mkdir -p $(FUZZ_BUILD)
	@for f in $(FUZZ_SRC); do \
		n=$$(basename $$f .c); \
		echo "== $$n ($(FUZZ_SECONDS)s)"; \
		clang $(FUZZ_FLAGS) -o $(FUZZ_BUILD)/$$n $$f $(LIB_SRC) $(LDLIBS) || exit 1; \
		mkdir -p $(FUZZ_BUILD)/corpus-$$n; \
		dict=""; [ -f fuzz/http.dict ] && dict="-dict=fuzz/http.dict"; \
		rc=0; $(FUZZ_BUILD)/$$n $$dict -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_BUILD)/$$n- $(FUZZ_BUILD)/corpus-$$n fuzz/corpus/$$n \
			> $(FUZZ_BUILD)/$$n.log 2>&1 || rc=$$?; \
		tail -n 12 $(FUZZ_BUILD)/$$n.log; \
		if [ $$rc -ne 0 ]; then echo "fuzz: $$n failed (exit $$rc), see $(FUZZ_BUILD)/$$n.log"; exit 1; fi; \
	done

# Long reliability runs (docs/reliability.md): slowloris dribble + chaos; SOAK_SECONDS=600.
.PHONY: soak
soak: all
	@TETHER_BIN=$(CURDIR)/$(TETHER) TETHER_BUILD=$(CURDIR)/$(BUILD) sh test/soak/run.sh

bench: tools
	@echo "see bench/README.md; e.g. $(BUILD)/bench/timers"

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TESTLIB_OBJ:.o=.d)
