# vram - build, install and test.
#
#   make                      libvram (shared + static), the vram command, tests, benches
#   make SAN=asan             the same under AddressSanitizer + UBSan, in build-asan/
#   make SAN=tsan             the same under ThreadSanitizer, in build-tsan/
#   make check                build and run the test suite (tests/run.sh)
#   make install PREFIX=DIR   bin/ lib/ include/ lib/pkgconfig/ share/vram/profiles/
#
# Every .c file under src/<module>/ belongs to libvram except src/cli/ (the
# command).  Every tests/<module>/test_*.c is one test binary.

VERSION_MAJOR := 0
VERSION_MINOR := 1
VERSION_PATCH := 0
VERSION       := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

PREFIX  ?= /usr/local
# systemd looks for units of a /usr/local install in /usr/local/lib/systemd.
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
CC      ?= cc
SAN     ?=

ifeq ($(SAN),)
  BUILD   ?= build
  SANFLAGS :=
else ifeq ($(SAN),asan)
  BUILD   ?= build-asan
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(SAN),tsan)
  BUILD   ?= build-tsan
  SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else
  $(error SAN must be empty, asan or tsan, not '$(SAN)')
endif

OPT      ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS   += -std=c11 $(OPT) $(WARN) -D_GNU_SOURCE -fPIC -fvisibility=hidden $(SANFLAGS) \
            -Iinclude -Isrc -DVRAM_BUILDING_LIBRARY
# Where the library looks for the shipped model profiles: the source tree's
# profiles/ when it runs from this tree's build, else the installed copy.
# Defines every compile of the library's sources needs (also the fuzzers').
DEFS     := -DVRAM_VERSION_STRING='"$(VERSION)"' -DVRAM_SOURCE_DIR='"$(CURDIR)"' \
            -DVRAM_DATA_DIR='"$(PREFIX)/share/vram"'
CFLAGS   += $(DEFS)
LDFLAGS  += $(SANFLAGS)
LIBS     := -ldl -lpthread -lm
# Debian-packaged libraries libvram links, by pkg-config name.
LIB_PKGS := inih
LIB_EXTRA_LIBS := $(if $(strip $(LIB_PKGS)),$(shell pkg-config --libs $(LIB_PKGS)))
CFLAGS += $(if $(strip $(LIB_PKGS)),$(shell pkg-config --cflags $(LIB_PKGS)))
# Headers only: dlopened where they are used, so that no client command loads
# them: libmicrohttpd and its TLS chain when the daemon's HTTP server starts
# (src/daemon/http.c), SQLite when the job store or the history opens
# (src/core/sqlite.c).  Tests and benches call SQLite themselves.
DLOPEN_PKGS := libmicrohttpd sqlite3
TEST_EXTRA_LIBS := $(LIB_EXTRA_LIBS) $(shell pkg-config --libs sqlite3)
CFLAGS += $(shell pkg-config --cflags $(DLOPEN_PKGS))

LIB_SRC   := $(sort $(wildcard src/core/*.c src/device/*.c src/monitor/*.c src/plan/*.c \
                               src/sched/*.c src/wire/*.c src/runner/*.c src/daemon/*.c))
CLI_SRC   := $(sort $(wildcard src/cli/*.c))
TEST_SRC  := $(sort $(wildcard tests/*/test_*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))
STUB_SRC  := $(sort $(wildcard tests/stubs/*.c))
HELPER_SRC:= $(sort $(wildcard tests/helpers/*.c))

# The dashboard's files, embedded into libvram by tools/embed.c (see below).
WEB_FILES := $(sort $(wildcard web/*))
WEB_GEN   := $(BUILD)/gen/web_assets.c
EMBED     := $(BUILD)/tools/embed

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/web_assets.o
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
HELPER_BIN:= $(HELPER_SRC:tests/helpers/%.c=$(BUILD)/tests/helpers/%)

SONAME    := libvram.so.$(VERSION_MAJOR)
SHARED    := $(BUILD)/lib/libvram.so.$(VERSION)
STATIC    := $(BUILD)/lib/libvram.a
CLI       := $(BUILD)/bin/vram
STUB_NVML := $(BUILD)/stubs/libnvidia-ml.so.1 $(BUILD)/stubs-old/libnvidia-ml.so.1 \
             $(BUILD)/stubs-broken/libnvidia-ml.so.1
# The enforcement layer, the stub driver it is tested on, and the programs
# that reach the stub each way real software does (rules further down).
SHIM_SRC  := $(sort $(wildcard src/shim/*.c))
SHIM_OBJ  := $(SHIM_SRC:%.c=$(BUILD)/obj/%.o)
SHIM      := $(BUILD)/lib/libvram_shim.so
STUB_CUDA := $(BUILD)/stubs/cuda/libcuda.so.1
SHIM_PROG_SRC := $(sort $(wildcard tests/shim/prog_*.c))
SHIM_PROG := $(SHIM_PROG_SRC:tests/shim/prog_%.c=$(BUILD)/tests/shim/prog/%)

# V=1 shows the whole command lines.
Q := $(if $(V),,@)

.PHONY: all lib cli docs tests bench check install uninstall clean fuzz shim
all: lib cli shim docs tests bench

lib: $(SHARED) $(STATIC)
cli: $(CLI)
tests: $(TEST_BIN) $(STUB_NVML) $(HELPER_BIN) $(STUB_CUDA) $(SHIM_PROG)
bench: $(BENCH_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The generator runs on the build machine, so it is built without sanitizers.
$(EMBED): tools/embed.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TOOL    $@")
	$(Q)$(CC) -std=c11 -O2 $(WARN) -o $@ $<

$(WEB_GEN): $(EMBED) $(WEB_FILES)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  EMBED   $@")
	$(Q)$(EMBED) $@ web $(notdir $(WEB_FILES))

$(BUILD)/obj/gen/web_assets.o: $(WEB_GEN)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(SHARED): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined $(LDFLAGS) -o $@ $^ $(LIB_EXTRA_LIBS) $(LIBS)
	$(Q)ln -sf libvram.so.$(VERSION) $(BUILD)/lib/$(SONAME)
	$(Q)ln -sf $(SONAME) $(BUILD)/lib/libvram.so

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  AR      $@")
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

# The command links the static library, and inih statically too where its
# archive is installed (Debian's -dev package ships it): finding and
# relocating shared libraries was a third of a command's start (bench/tsp
# compares it with task-spooler's).  SQLite is dlopened by the commands that
# open a store (src/core/sqlite.c), not linked.
comma := ,
CLI_STATIC_LIBS := $(foreach l,inih,$(if $(filter /%,$(shell $(CC) -print-file-name=lib$(l).a)),-l$(l)))
CLI_LIBS  := $(if $(CLI_STATIC_LIBS),-Wl$(comma)-Bstatic $(CLI_STATIC_LIBS) -Wl$(comma)-Bdynamic) \
             $(filter-out $(CLI_STATIC_LIBS),$(LIB_EXTRA_LIBS))
$(CLI): $(CLI_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) -Wl,--as-needed $(CLI_LIBS) $(LIBS)

# Man pages and shell completion, written by the command from the tables its
# --help prints (src/cli/docgen.c), so the three never drift apart.
MAN_STAMP := $(BUILD)/share/man/.stamp
BASH_COMP := $(BUILD)/share/bash-completion/completions/vram
ZSH_COMP  := $(BUILD)/share/zsh/vendor-completions/_vram
docs: $(MAN_STAMP) $(BASH_COMP) $(ZSH_COMP)
$(MAN_STAMP): $(CLI)
	@mkdir -p $(BUILD)/share/man/man1 $(BUILD)/share/man/man8
	@$(if $(V),,echo "  MAN     $(BUILD)/share/man")
	$(Q)rm -f $(BUILD)/share/man/man1/*.1 $(BUILD)/share/man/man8/*.8
	$(Q)$(CLI) --generate man-all $(BUILD)/share/man
	$(Q)touch $@
$(BASH_COMP): $(CLI)
	@mkdir -p $(dir $@)
	$(Q)$(CLI) --generate bash >$@
$(ZSH_COMP): $(CLI)
	@mkdir -p $(dir $@)
	$(Q)$(CLI) --generate zsh >$@

# Tests and benches link the static library so that they see vram__ internals.
# Tests print into fixed buffers on purpose; gcc's truncation warning (which
# clang does not have) is off for them.
TEST_WARN := $(shell $(CC) -Werror -Wno-format-truncation -E -x c /dev/null >/dev/null 2>&1 && echo -Wno-format-truncation)
$(BUILD)/tests/%: tests/%.c $(STATIC) tests/test.h
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(TEST_WARN) -Itests -MMD -MP -o $@ $< $(STATIC) $(TEST_EXTRA_LIBS) $(LDFLAGS) $(LIBS)

$(BUILD)/bench/%: bench/%.c $(STATIC)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  BENCH   $@")
	$(Q)$(CC) $(CFLAGS) -Ibench -MMD -MP -o $@ $< $(STATIC) $(TEST_EXTRA_LIBS) $(LDFLAGS) $(LIBS)

# Stand-ins for NVIDIA's libnvidia-ml.so.1, scripted by the tests: a recent
# driver, an old one (v1 calls only) and a broken one (a required call missing).
STUB_FLAGS_stubs :=
STUB_FLAGS_stubs-old := -DSTUB_OLD_DRIVER
STUB_FLAGS_stubs-broken := -DSTUB_BROKEN
$(BUILD)/%/libnvidia-ml.so.1: tests/stubs/nvml_stub.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  STUB    $@")
	$(Q)$(CC) $(CFLAGS) -Wno-missing-prototypes $(STUB_FLAGS_$*) -shared -Wl,-soname,libnvidia-ml.so.1 -o $@ $< $(LDFLAGS)

# The enforcement layer (src/shim/): its own shared library, never part of
# libvram, exporting only the entry points it interposes.  LD_PRELOAD puts
# it into jobs, so it links nothing but libc (and libdl, libpthread);
# -Bsymbolic keeps the addresses of its own hooks its own, even when it is
# loaded after a driver that exports the same names (bench/shim does).
shim: $(SHIM)
$(SHIM): $(SHIM_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,libvram_shim.so -Wl,-Bsymbolic -Wl,--no-undefined $(LDFLAGS) -o $@ $^ -ldl -lpthread

# A stand-in libcuda.so.1 for the shim's tests (tests/stubs/cuda_stub.c says
# what it does), and the programs that reach it each way real software does.
$(STUB_CUDA): tests/stubs/cuda_stub.c src/shim/cuda_types.h
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  STUB    $@")
	$(Q)$(CC) $(CFLAGS) -Wno-missing-prototypes -shared -Wl,-soname,libcuda.so.1 -Wl,-Bsymbolic -o $@ $< $(LDFLAGS)
	$(Q)ln -sf libcuda.so.1 $(dir $@)libcuda.so
$(BUILD)/tests/shim/prog/%: tests/shim/prog_%.c $(STUB_CUDA) $(STATIC) tests/shim/prog.h
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  PROG    $@")
	$(Q)$(CC) $(CFLAGS) -Itests -MMD -MP -o $@ $< $(if $(findstring linked,$*),-L$(dir $(STUB_CUDA)) -lcuda -Wl$(comma)-rpath$(comma)'$$ORIGIN/../../../stubs/cuda') \
	    $(STATIC) $(LIB_EXTRA_LIBS) $(LDFLAGS) $(LIBS)
comma := ,

# The Slurm plugin (src/slurm/): built when spank.h is there (Debian's
# libslurm-dev), with libvram linked in and kept inside (slurmstepd and srun
# see only the SPANK symbols); not in sanitizer builds, which Slurm's
# processes could not load.
SLURM_INCLUDE ?= /usr/include
SPANK_H   := $(wildcard $(SLURM_INCLUDE)/slurm/spank.h)
SPANK_SO  := $(BUILD)/lib/slurm/vram_spank.so
# Where make install puts the shim (recursive: LIBDIR may be set further down).
SHIM_PATH  = $(or $(LIBDIR),$(PREFIX)/lib)/vram/libvram_shim.so
.PHONY: slurm install-slurm
all: slurm
# What a CUDA program in a Slurm task sees (tests/slurm/test_slurm.sh).
tests: $(BUILD)/tests/slurm/cudaprobe
ifeq ($(SAN),)
ifneq ($(SPANK_H),)
slurm: $(SPANK_SO)
$(SPANK_SO): src/slurm/vram_spank.c $(STATIC) include/vram.h
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  SPANK   $@")
	$(Q)$(CC) $(CFLAGS) -fvisibility=default -I$(SLURM_INCLUDE) -DVRAM_SHIM_PATH='"$(SHIM_PATH)"' \
	    -shared -Wl,--exclude-libs,ALL -o $@ $< $(STATIC) $(LIB_EXTRA_LIBS) $(LDFLAGS) $(LIBS)
install-slurm: $(SPANK_SO)
	install -d $(DESTDIR)$(PREFIX)/lib/vram/slurm
	install -m 755 $(SPANK_SO) $(DESTDIR)$(PREFIX)/lib/vram/slurm/
else
slurm:
	@echo "  SKIP    the Slurm plugin: $(SLURM_INCLUDE)/slurm/spank.h is missing (Debian: libslurm-dev)"
install-slurm: slurm
endif
else
slurm:
install-slurm:
endif
install: install-slurm

# libFuzzer targets (clang): tests/fuzz/fuzz_*.c over the library's sources.
FUZZ_CC   ?= clang
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
fuzz: $(FUZZ_BIN)
build-fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(WEB_GEN) $(wildcard src/*/*.h) include/vram.h
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
	    -DVRAM_BUILDING_LIBRARY $(DEFS) -Iinclude -Isrc \
	    $< $(LIB_SRC) $(WEB_GEN) -o $@ $(LIB_EXTRA_LIBS) $(LIBS)

check: all
	tests/run.sh $(BUILD)

# vram.pc is written at install time: it names PREFIX, which changes.
install: lib cli docs
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(strip $(LIB_EXTRA_LIBS) $(LIBS))|' vram.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/vram.pc
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/vram
	ln -sf vram $(DESTDIR)$(PREFIX)/bin/vramd
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libvram.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libvram.so
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/vram.h $(DESTDIR)$(PREFIX)/include/
	install -d $(DESTDIR)$(PREFIX)/share/vram/profiles
	install -m 644 profiles/*.ini $(DESTDIR)$(PREFIX)/share/vram/profiles/
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8 \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	    $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions
	install -m 644 $(BUILD)/share/man/man1/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 $(BUILD)/share/man/man8/*.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 644 $(BASH_COMP) $(DESTDIR)$(PREFIX)/share/bash-completion/completions/vram
	ln -sf vram $(DESTDIR)$(PREFIX)/share/bash-completion/completions/vramd
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	sed -e 's|@BINDIR@|$(PREFIX)/bin|' dist/systemd/vramd.service.in >$(DESTDIR)$(SYSTEMDUNITDIR)/vramd.service
	install -m 644 dist/systemd/vramd.socket $(DESTDIR)$(SYSTEMDUNITDIR)/
	install -m 644 $(ZSH_COMP) $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_vram

# The shim goes where vram run looks for it: $(LIBDIR)/vram/.
LIBDIR ?= $(PREFIX)/lib
install: install-shim
.PHONY: install-shim
install-shim: $(SHIM)
	install -d $(DESTDIR)$(LIBDIR)/vram
	install -m 755 $(SHIM) $(DESTDIR)$(LIBDIR)/vram/libvram_shim.so

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/vram $(DESTDIR)$(PREFIX)/bin/vramd $(DESTDIR)$(PREFIX)/lib/libvram.* \
	      $(DESTDIR)$(PREFIX)/include/vram.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/vram.pc
	rm -rf $(DESTDIR)$(PREFIX)/share/vram $(DESTDIR)$(LIBDIR)/vram $(DESTDIR)$(PREFIX)/lib/vram/slurm
	rm -f $(DESTDIR)$(PREFIX)/share/man/man1/vram.1 $(DESTDIR)$(PREFIX)/share/man/man1/vram-*.1 \
	      $(DESTDIR)$(PREFIX)/share/man/man8/vramd.8 \
	      $(DESTDIR)$(PREFIX)/share/bash-completion/completions/vram \
	      $(DESTDIR)$(PREFIX)/share/bash-completion/completions/vramd \
	      $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_vram \
	      $(DESTDIR)$(SYSTEMDUNITDIR)/vramd.service $(DESTDIR)$(SYSTEMDUNITDIR)/vramd.socket

clean:
	rm -rf build build-asan build-tsan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
