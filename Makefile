# walship — build, test and demo.  `make demo` and `make test` install the
# Debian packages they need first (scripts/deps.sh), so both work as root on
# a fresh Debian 12 machine.
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CPPFLAGS = -std=c11 -D_GNU_SOURCE -Iinclude -Isrc
LDLIBS   = -lsqlite3 -lcurl -lexpat -ljson-c -lcrypto -lz -lmicrohttpd -lpthread -lyaml
B        = build

LIB_SRC  = $(sort $(wildcard src/*.c))
LIB_OBJ  = $(LIB_SRC:src/%.c=$(B)/src/%.o)
CLI_SRC  = $(sort $(wildcard cli/*.c))
CLI_OBJ  = $(CLI_SRC:cli/%.c=$(B)/cli/%.o)
UNIT_SRC = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
TOOL_SRC = $(sort $(wildcard tests/tools/*.c))
TOOL_BIN = $(TOOL_SRC:tests/tools/%.c=$(B)/tools/%)
HDRS     = $(wildcard include/walship/*.h src/*.h cli/*.h tests/unit/*.h)

.PHONY: all deps test demo clean unit bench
all: $(B)/walship $(UNIT_BIN) $(TOOL_BIN)

deps:
	@bash scripts/deps.sh

$(B)/src/%.o: src/%.c $(HDRS)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -fPIC -c $< -o $@

$(B)/cli/%.o: cli/%.c $(HDRS)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -c $< -o $@

$(B)/libwalship.a: $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(B)/walship: $(CLI_OBJ) $(B)/libwalship.a
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(B)/libwalship.a $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(B)/libwalship.a $(HDRS)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< $(B)/libwalship.a $(LDLIBS)

$(B)/tools/%: tests/tools/%.c $(B)/libwalship.a $(HDRS)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< $(B)/libwalship.a $(LDLIBS)

unit: all
	@bash tests/run.sh --unit-only

test: deps
	@$(MAKE) --no-print-directory all
	@bash tests/run.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@bash bench/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh

clean:
	rm -rf $(B)
