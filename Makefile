# walship — build, test and demo.  `make demo` and `make test` install the
# Debian packages they need first (scripts/deps.sh), so both work as root on
# a fresh Debian 12 machine.
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CPPFLAGS = -std=c11 -D_GNU_SOURCE -I$(SQLITE_DIR) -Iinclude -Isrc
LDLIBS   = -lm -ldl -lcurl -lexpat -ljson-c -lcrypto -lz -ldeflate -lmicrohttpd -lpthread -lyaml
B        = build

LIB_SRC  = $(sort $(wildcard src/*.c))
LIB_OBJ  = $(LIB_SRC:src/%.c=$(B)/src/%.o)
CLI_SRC  = $(sort $(wildcard cli/*.c))
CLI_OBJ  = $(CLI_SRC:cli/%.c=$(B)/cli/%.o)
UNIT_SRC = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
TOOL_SRC = $(sort $(wildcard tests/tools/*.c))
TOOL_BIN = $(TOOL_SRC:tests/tools/%.c=$(B)/tools/%)
PRELOAD_SRC = $(sort $(wildcard tests/preload/*.c))
PRELOAD_SO  = $(PRELOAD_SRC:tests/preload/%.c=$(B)/tools/%.so)
HDRS     = $(wildcard include/walship/*.h src/*.h cli/*.h tests/unit/*.h)

# SQLite: the amalgamation of a pinned better-sqlite3 (scripts/fetch-sqlite.sh),
# not Debian's libsqlite3 3.40, which lacks sqlite_dbpage (follow replicas).
# Compiled once into build/sqlite/sqlite3.o and archived into libwalship.a,
# so the CLI, unit tests and tools all carry this one SQLite; -I$(SQLITE_DIR)
# comes first so <sqlite3.h> is the fetched header.
SQLITE_DIR  = $(B)/sqlite
SQLITE_H    = $(SQLITE_DIR)/sqlite3.h
SQLITE_OBJ  = $(SQLITE_DIR)/sqlite3.o
SQLITE_OPTS = -DSQLITE_ENABLE_DBPAGE_VTAB -DSQLITE_THREADSAFE=1
# Its own flags, not $(CFLAGS): the asan and fuzz builds share this object
# (SQLITE_DIR=build/sqlite), and whichever build came first used to decide
# them, so an ASan-first tree then failed to link the plain build.
SQLITE_CFLAGS ?= -O2 -g

.PHONY: all deps test demo clean unit bench
all: $(B)/walship $(UNIT_BIN) $(TOOL_BIN) $(PRELOAD_SO)

deps:
	@bash scripts/deps.sh

$(SQLITE_DIR)/sqlite3.c $(SQLITE_H): scripts/fetch-sqlite.sh
	@bash scripts/fetch-sqlite.sh $(SQLITE_DIR)
	@touch $(SQLITE_DIR)/sqlite3.c $(SQLITE_H)

$(SQLITE_OBJ): $(SQLITE_DIR)/sqlite3.c $(SQLITE_H)
	@echo "  CC      $<"
	@$(CC) $(SQLITE_CFLAGS) $(SQLITE_OPTS) -fPIC -c $< -o $@

$(B)/src/%.o: src/%.c $(HDRS) $(SQLITE_H)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -fPIC -c $< -o $@

$(B)/cli/%.o: cli/%.c $(HDRS) $(SQLITE_H)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -c $< -o $@

$(B)/libwalship.a: $(LIB_OBJ) $(SQLITE_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(B)/walship: $(CLI_OBJ) $(B)/libwalship.a
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(B)/libwalship.a $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(B)/libwalship.a $(HDRS) $(SQLITE_H)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< $(B)/libwalship.a $(LDLIBS)

$(B)/tools/%: tests/tools/%.c $(B)/libwalship.a $(HDRS) $(SQLITE_H)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< $(B)/libwalship.a $(LDLIBS)

# test shims loaded with LD_PRELOAD (fault injection), no library inside
$(B)/tools/%.so: tests/preload/%.c
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(WARN) -shared -fPIC -o $@ $< -ldl

unit: all
	@bash tests/run.sh --unit-only

test: deps
	@$(MAKE) --no-print-directory all fuzz-replay
	@bash tests/run.sh

bench: deps
	@bash bench/deps.sh
	@$(MAKE) --no-print-directory all
	@bash bench/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh

clean:
	rm -rf $(B)

# ---------------------------------------------------------------- reliability
# (docs/reliability.md)  Sanitizer build: everything again under
# $(ASAN_B) with ASan+UBSan; `make asan` runs the whole suite against it.
# The fuzz replay drivers (tests/fuzz/replay.c + one target each) link that
# library, so `make test` replays the checked-in corpora under sanitizers
# with plain gcc, no libFuzzer needed.  `make fuzz` builds the libFuzzer
# targets with clang under $(FUZZ_B) and runs each for FUZZ_SECONDS.
SAN          = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ASAN_B       = $(B)/asan
FUZZ_B       = $(B)/fuzz
FUZZ_TARGETS = wal codec s3xml httplist crypt config
# targets of code outside the library compile its sources in
FUZZ_EXTRA_config = cli/config.c cli/util.c
FUZZ_SECONDS ?= 60
REPLAY_BIN   = $(FUZZ_TARGETS:%=$(ASAN_B)/fuzz/replay_%)
.PHONY: asan asan-build fuzz fuzz-replay torture valgrind FORCE

$(ASAN_B)/libwalship.a: FORCE
	@$(MAKE) --no-print-directory B=$(ASAN_B) SQLITE_DIR=$(B)/sqlite CFLAGS="-O1 -g $(SAN)" $@

$(ASAN_B)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(ASAN_B)/libwalship.a $(HDRS)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(CPPFLAGS) -Icli -O1 -g $(SAN) $(WARN) -o $@ tests/fuzz/fuzz_$*.c tests/fuzz/replay.c \
	  $(FUZZ_EXTRA_$*) $(ASAN_B)/libwalship.a $(LDLIBS)

fuzz-replay: $(REPLAY_BIN)

asan-build:
	@$(MAKE) --no-print-directory B=$(ASAN_B) SQLITE_DIR=$(B)/sqlite CFLAGS="-O1 -g $(SAN)" all
	@$(MAKE) --no-print-directory fuzz-replay

asan: deps asan-build
	@WS_BUILD=$(ASAN_B) bash tests/run.sh

$(FUZZ_B)/libwalship.a: FORCE
	@$(MAKE) --no-print-directory B=$(FUZZ_B) SQLITE_DIR=$(B)/sqlite CC=clang \
	  CFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined" $@

$(FUZZ_B)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_B)/libwalship.a $(HDRS)
	@echo "  LD      $@"
	@clang $(CPPFLAGS) -Icli -O1 -g -fsanitize=fuzzer,address,undefined $(WARN) -o $@ $< \
	  $(FUZZ_EXTRA_$*) $(FUZZ_B)/libwalship.a $(LDLIBS)

fuzz: $(FUZZ_TARGETS:%=$(FUZZ_B)/fuzz_%)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh $(FUZZ_TARGETS)

# The long torture run (hundreds of kill -9 trials; SEED=N reruns one) and
# a valgrind leak check of replicate -> ls -> restore (docs/reliability.md).
torture: all
	@bash tests/torture/torture.sh --long
	@bash tests/torture/big_db.sh
	@if command -v gdb >/dev/null; then bash tests/torture/repro_reset_after_attach.sh; \
	 else echo "torture: gdb missing, repro_reset_after_attach.sh skipped"; fi

valgrind: all
	@bash tests/torture/valgrind.sh
